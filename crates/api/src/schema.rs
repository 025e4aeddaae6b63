//! The OpenAPI schemas of request bodies whose rules are richer than their Rust types, written
//! from the constants the server checks (see [`crate::limits`]): a generated client or a
//! fuzzer reads exactly what is accepted.

use std::borrow::Cow;

use orchard_domain::capabilities::{MAX_SPEED_SPREAD, MAX_WORKER_TEXT, SPEED_FACTORS};
use orchard_domain::schema::{from_json, nullable, printable};
use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::limits::{MAX_FILE_NAME, MAX_RENDER_SECONDS, MAX_UPLOAD_PARTS, OUTPUT_FILE_NAME};
use crate::types::{
    CompleteRequest, CreateUploadRequest, DeliveredComposite, DeliveredFrame, OutputUrlsRequest, RegisterRequest,
};

macro_rules! named {
    ($($type:ident),*) => {$(
        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($type))
            }
        }
    )*};
}

named!(DeliveredFrame, DeliveredComposite, OutputUrlsRequest);

/// A plain file name ending in `.{extension}` (any case): no path, no control or
/// text-direction characters.
fn file_name_ending(extension: &str) -> Value {
    let any_case: String =
        extension.chars().map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())).collect();
    json!({"type": "string", "minLength": 1, "maxLength": MAX_FILE_NAME,
        "pattern": format!(r"^[^/\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*\.{any_case}$")})
}

/// Any 64-bit attempt number: the server answers 409 for one it did not grant.
fn attempt() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX,
        "description": "The attempt held (the fencing token of the claim)."})
}

impl PartialSchema for CreateUploadRequest {
    fn schema() -> RefOr<Schema> {
        // Which extension goes with which type is a rule across two fields: one variant each.
        let variant = |file_type: &str| {
            json!({
                "type": "object",
                "title": format!("A .{file_type} upload"),
                "required": ["fileName", "fileType"],
                "properties": {
                    "fileName": file_name_ending(file_type),
                    "fileType": {"type": "string", "enum": [file_type]},
                    "parts": nullable(json!({"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_PARTS,
                        "description": "Orchard extension: send the file in this many parts, each PUT to its \
                            own URL, then `POST /uploads/{slug}/complete`. For files past one PUT's limit (5 GiB \
                            on S3) or for resumable transfers. Every part but the last must be at least 5 MiB."})),
                },
            })
        };
        from_json(json!({
            "description": "`POST /uploads` body: `fileName`, the source file's name (a plain name: no path, \
                no control or text-direction characters), whose extension matches `fileType` (`blend` or `zip`).",
            "oneOf": [variant("blend"), variant("zip")],
        }))
    }
}

impl ToSchema for CreateUploadRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CreateUploadRequest")
    }
}

impl PartialSchema for RegisterRequest {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "Worker protocol: `POST /workers/register`.",
            "required": ["workerId", "name", "capabilities", "speedFactor"],
            "properties": {
                "workerId": printable(MAX_WORKER_TEXT),
                "name": printable(MAX_WORKER_TEXT),
                "capabilities": {"$ref": "#/components/schemas/WorkerCapabilities"},
                "speedFactor": {"type": "number", "minimum": SPEED_FACTORS.start(), "maximum": SPEED_FACTORS.end(),
                    "description": "Its speed relative to the reference machine (from rendering the reference \
                        scene)."},
                "speedSpread": nullable(json!({"type": "number", "minimum": 0, "maximum": MAX_SPEED_SPREAD,
                    "description": "How much the reference frames' times varied: half their range, relative \
                        to the median."})),
            },
        }))
    }
}

impl ToSchema for RegisterRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RegisterRequest")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use orchard_domain::WorkerCapabilities;
        schemas.push((WorkerCapabilities::name().into(), WorkerCapabilities::schema()));
        WorkerCapabilities::schemas(schemas);
    }
}

impl PartialSchema for DeliveredFrame {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "Worker protocol: a frame delivered.",
            "required": ["frame", "fileName"],
            "properties": {
                "frame": {"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX},
                "fileName": {"type": "string", "pattern": OUTPUT_FILE_NAME,
                    "description": "The file name it was uploaded under."},
                "blank": {"type": "boolean", "description": "Every pixel is one colour."},
            },
        }))
    }
}

impl PartialSchema for DeliveredComposite {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "Worker protocol: a file a compositor File Output node wrote, uploaded.",
            "required": ["frame", "fileName", "relativePath", "node"],
            "properties": {
                "frame": {"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX},
                "fileName": {"type": "string", "pattern": OUTPUT_FILE_NAME,
                    "description": "The file name it was uploaded under."},
                "relativePath": printable(crate::limits::MAX_RELATIVE_PATH),
                "node": printable(crate::limits::MAX_NODE_NAME),
                "view": {"type": "string", "maxLength": crate::limits::MAX_NODE_NAME},
            },
        }))
    }
}

impl PartialSchema for CompleteRequest {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "Worker protocol: every frame of the task is uploaded. The frames must be the \
                task's, each uploaded.",
            "required": ["attempt", "frames", "renderSeconds"],
            "properties": {
                "attempt": attempt(),
                "frames": {"type": "array", "items": {"$ref": "#/components/schemas/DeliveredFrame"}},
                "renderSeconds": {"type": "number", "minimum": 0, "maximum": MAX_RENDER_SECONDS,
                    "description": "Seconds Blender spent rendering them."},
                "claimNext": nullable(json!({"$ref": "#/components/schemas/ClaimNext"})),
                "blenderVersion": nullable(json!({"type": "string", "maxLength": MAX_WORKER_TEXT,
                    "pattern": crate::limits::BLENDER_VERSION,
                    "description": "The Blender that rendered the frames (`bpy.app.version_string`)."})),
                "log": nullable(json!({"type": "string", "maxLength": crate::limits::MAX_LOG_CHUNK,
                    "description": "Blender's output since the last heartbeat, appended to the attempt's log."})),
                "composites": {"type": "array", "maxItems": crate::limits::MAX_COMPOSITES_PER_TASK,
                    "items": {"$ref": "#/components/schemas/DeliveredComposite"}},
            },
        }))
    }
}

impl ToSchema for CompleteRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CompleteRequest")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((DeliveredFrame::name().into(), DeliveredFrame::schema()));
        schemas.push((DeliveredComposite::name().into(), DeliveredComposite::schema()));
        schemas.push((crate::types::ClaimNext::name().into(), crate::types::ClaimNext::schema()));
    }
}

impl PartialSchema for OutputUrlsRequest {
    fn schema() -> RefOr<Schema> {
        from_json(json!({
            "type": "object",
            "description": "Worker protocol: where to PUT a task's outputs.",
            "required": ["attempt", "files"],
            "properties": {
                "attempt": attempt(),
                "files": {"type": "array", "items": {"type": "string", "pattern": OUTPUT_FILE_NAME},
                    "description": "Plain file names (`0001.png`)."},
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literals survive utoipa's model: what is written is what is served.
    #[test]
    fn every_schema_literal_keeps_its_rules() {
        let upload = serde_json::to_value(CreateUploadRequest::schema()).unwrap();
        let variants = upload["oneOf"].as_array().unwrap_or_else(|| panic!("{upload}"));
        assert_eq!(variants[0]["properties"]["fileType"]["enum"], json!(["blend"]), "{upload}");
        assert!(variants[1]["properties"]["fileName"]["pattern"].as_str().unwrap().ends_with(r"\.[Zz][Ii][Pp]$"));
        let register = serde_json::to_value(RegisterRequest::schema()).unwrap();
        assert_eq!(register["properties"]["speedFactor"]["maximum"], 1000.0, "{register}");
        let complete = serde_json::to_value(CompleteRequest::schema()).unwrap();
        assert_eq!(complete["properties"]["attempt"]["minimum"], i64::MIN, "{complete}");
        // Derived schemas carry literal bounds: they must be the constants the server checks.
        for schema in [crate::HeartbeatRequest::schema(), crate::FailRequest::schema()] {
            let schema = serde_json::to_value(schema).unwrap();
            assert_eq!(schema["properties"]["log"]["maxLength"], crate::limits::MAX_LOG_CHUNK, "{schema}");
        }
    }
}
