//! The OpenAPI schemas of the domain's wire types, written from the same constants their
//! parsers check, so that the document a client generator or a fuzzer reads says exactly
//! what is accepted: every enum, every range, no unknown fields.

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::capabilities::{
    BlenderBuild, MAX_CPU_THREADS, MAX_RAM_GIB, MAX_WORKER_LIST, MAX_WORKER_TEXT, WorkerCapabilities,
};
use crate::config::{
    COLOR_DEPTHS, COLOR_MODES, COMPOSITOR_DEVICES, COMPUTE_DEVICE_TYPES, DENOISERS, EXR_CODECS, INTEGER_FIELDS,
    MAX_NOTES, OUTPUT_FORMATS, OutputSettings, PERCENT, PRESETS, RENDER_ENGINES, REQUESTED_FIELDS, RESOLUTION_SIDE,
    RequestedConfig, TIFF_CODECS,
};
use crate::frames::{MAX_FRAME, MAX_RANGES};

/// A schema written as JSON. The JSON is a literal of this crate: that it is a schema is
/// checked by the tests below and by the OpenAPI document's own validation.
pub fn from_json(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("a schema literal of Orchard does not parse: {e}"))
}

/// A field that may be absent or `null`: `schema` or null.
pub fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// A string of 1 to `max` characters, not all blank, with no control characters: a name a
/// person reads.
pub fn printable(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max,
        "pattern": r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"})
}

fn one_of(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

/// A Blender version as a worker reports it: two or three numbers, then what a build appends.
pub const BLENDER_VERSION: &str = r"^[0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,4})?([-+ ][\s\S]*)?$";

/// `"7"`, `"1-250"`, `"1-250x5"`, negative frames allowed; blanks around the numbers.
const FRAME_RANGE: &str = r"^\s*[+-]?[0-9]+\s*(-\s*[+-]?[0-9]+\s*)?([xX]\s*\+?[0-9]+\s*)?$";

impl PartialSchema for OutputSettings {
    fn schema() -> RefOr<Schema> {
        let percent = |description: &str| {
            nullable(json!({"type": "integer", "minimum": PERCENT.0, "maximum": PERCENT.1, "description": description}))
        };
        from_json(json!({
            "type": "object",
            "description": "Image settings, by the Renderjuice field names. Which depths and modes a \
                format stores is checked with the format (`PNG` stores 8 or 16 bits, `JPEG` no alpha).",
            "additionalProperties": false,
            "properties": {
                "colorMode": nullable(one_of(COLOR_MODES, "Channels.")),
                "colorDepth": nullable(one_of(COLOR_DEPTHS, "Bits per channel, as a string.")),
                "exrCodec": nullable(one_of(EXR_CODECS, "OpenEXR codec.")),
                "tiffCodec": nullable(one_of(TIFF_CODECS, "TIFF codec.")),
                "compression": percent("PNG compression."),
                "quality": percent("JPEG / WebP quality."),
            },
        }))
    }
}

impl ToSchema for OutputSettings {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OutputSettings")
    }
}

impl PartialSchema for RequestedConfig {
    fn schema() -> RefOr<Schema> {
        let range = |name: &str| {
            INTEGER_FIELDS
                .iter()
                .find(|(field, ..)| *field == name)
                .map(|(_, min, max)| (*min, *max))
                .unwrap_or_else(|| panic!("{name} is not in INTEGER_FIELDS"))
        };
        let integer = |name: &str, description: &str| {
            let (min, max) = range(name);
            nullable(json!({"type": "integer", "minimum": min, "maximum": max, "description": description}))
        };
        let side = json!({"type": "integer", "minimum": RESOLUTION_SIDE.0, "maximum": RESOLUTION_SIDE.1});
        let schema = json!({
            "type": "object",
            "description": "`requestedRenderConfig`: what to render. Only `colorManagementPreset` is required; \
                every other field defaults to what validation detected in the scene. Unknown fields are refused.",
            "required": ["colorManagementPreset"],
            "additionalProperties": false,
            "properties": {
                "colorManagementPreset": one_of(PRESETS, "Colour management: Blender's default view, or ACES."),
                "frameRanges": nullable(json!({
                    "type": "array", "minItems": 1, "maxItems": MAX_RANGES,
                    "items": {"type": "string", "pattern": FRAME_RANGE},
                    "description": format!("Frame ranges (`\"1-250\"`, `\"7\"`, `\"1-250x5\"`), frames within \
                        ±{MAX_FRAME}; their union is rendered."),
                })),
                "notes": nullable(json!({"type": "string", "maxLength": MAX_NOTES, "description": "Free text for people."})),
                "renderEngine": nullable(one_of(RENDER_ENGINES, "Blender's engine identifier.")),
                "compositorDevice": nullable(one_of(COMPOSITOR_DEVICES, "Compositor device.")),
                "computeDeviceType": nullable(one_of(COMPUTE_DEVICE_TYPES, "Cycles GPU backend; `NONE` renders on CPUs.")),
                "gpuCount": integer("gpuCount", "GPUs per task."),
                "sampleCount": integer("sampleCount", "Samples of the scene's engine."),
                "denoisingEnabled": nullable(json!({"type": "boolean", "description": "Cycles denoising."})),
                "denoiserType": nullable(one_of(DENOISERS, "Cycles denoiser.")),
                "resolution": nullable(json!({"type": "array", "minItems": 2, "maxItems": 2, "items": side,
                    "description": "`[width, height]` in pixels, before the percentage."})),
                "resolutionPercentage": integer("resolutionPercentage", "Percentage applied to `resolution`; \
                    the output's sides and pixels are bounded too."),
                "outputFormat": nullable(one_of(OUTPUT_FORMATS, "Blender's `file_format`. Video (`FFMPEG`) is \
                    not rendered by a farm.")),
                "fps": integer("fps", "Frames per second."),
                "useTiling": nullable(json!({"type": "boolean", "description": "Cycles auto tiling."})),
                "tileSize": integer("tileSize", "Cycles tile size."),
                "outputSettings": nullable(json!({"$ref": "#/components/schemas/OutputSettings"})),
                "minimumRam": integer("minimumRam", "Least RAM a worker needs, in GiB."),
                "chunkSize": integer("chunkSize", "Orchard extension: frames per task (default: chosen from the \
                    frame count)."),
                "priority": integer("priority", "Orchard extension: the job's priority (50 unless set); higher \
                    goes first, `PATCH /jobs/{id}` changes it."),
                "failOnBlank": nullable(json!({"type": "boolean", "description": "Orchard extension: a frame of one \
                    colour only fails its attempt instead of being flagged (`blank_frame`)."})),
                "video": nullable(json!({"type": "boolean", "description": "Orchard extension: deliver an H.264 \
                    MP4 of the frames as `transforms.video` (with the scene's sound), made while the job is \
                    `finalizing` by a worker with ffmpeg."})),
            },
        });
        debug_assert_eq!(schema["properties"].as_object().map(|it| it.len()), Some(REQUESTED_FIELDS.len()));
        from_json(schema)
    }
}

impl ToSchema for RequestedConfig {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RequestedConfig")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((OutputSettings::name().into(), OutputSettings::schema()));
    }
}

impl PartialSchema for BlenderBuild {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "One Blender a worker offers.",
            "required": ["version", "oidn", "eevee", "gpuBackends"],
            "properties": {
                "version": {"type": "string", "maxLength": MAX_WORKER_TEXT,
                    "pattern": BLENDER_VERSION,
                    "description": "`bpy.app.version_string`, such as `3.4.1` or `5.0.0 Alpha`."},
                "oidn": {"type": "boolean", "description": "Built with OpenImageDenoise."},
                "eevee": {"type": "boolean", "description": "Can render EEVEE (a GPU, or the operator allowed \
                    software rendering)."},
                "gpuBackends": {"type": "array", "maxItems": MAX_WORKER_LIST, "items": printable(MAX_WORKER_TEXT),
                    "description": "Cycles GPU backends with at least one device (`CUDA`, `OPTIX`, `HIP`, \
                        `ONEAPI`, `METAL`)."},
            },
        }))
    }
}

impl ToSchema for BlenderBuild {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BlenderBuild")
    }
}

impl PartialSchema for WorkerCapabilities {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "What a worker can render.",
            "required": ["blenders", "cpuThreads", "ramGib"],
            "properties": {
                "blenders": {"type": "array", "minItems": 1, "maxItems": MAX_WORKER_LIST,
                    "items": {"$ref": "#/components/schemas/BlenderBuild"}, "description": "The Blenders it offers."},
                "cpuThreads": {"type": "integer", "minimum": 1, "maximum": MAX_CPU_THREADS, "description": "CPU threads."},
                "ramGib": {"type": "number", "minimum": 0, "maximum": MAX_RAM_GIB, "description": "Memory, in GiB."},
                "tags": {"type": "array", "maxItems": MAX_WORKER_LIST, "items": printable(MAX_WORKER_TEXT),
                    "description": "Free-form tags set by the operator."},
                "ffmpeg": nullable(json!({"allOf": [printable(MAX_WORKER_TEXT)], "description": "The version of \
                    the ffmpeg it can run: it can make jobs' videos."})),
            },
        }))
    }
}

impl ToSchema for WorkerCapabilities {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WorkerCapabilities")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((BlenderBuild::name().into(), BlenderBuild::schema()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literals survive utoipa's model: what is written is what is served.
    #[test]
    fn every_schema_literal_keeps_its_rules() {
        let config = serde_json::to_value(RequestedConfig::schema()).unwrap();
        assert_eq!(config["additionalProperties"], false, "{config}");
        assert_eq!(config["properties"].as_object().unwrap().len(), REQUESTED_FIELDS.len());
        assert_eq!(config["properties"]["gpuCount"]["oneOf"][0]["maximum"], 16, "{config}");
        assert_eq!(config["properties"]["outputFormat"]["oneOf"][0]["enum"][0], "PNG", "{config}");
        assert!(config["properties"]["frameRanges"]["oneOf"][0]["items"]["pattern"].is_string(), "{config}");
        let build = serde_json::to_value(BlenderBuild::schema()).unwrap();
        assert!(build["properties"]["version"]["pattern"].is_string(), "{build}");
        let capabilities = serde_json::to_value(WorkerCapabilities::schema()).unwrap();
        assert_eq!(capabilities["properties"]["blenders"]["minItems"], 1, "{capabilities}");
    }
}
