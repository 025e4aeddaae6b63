//! The OpenAPI document: what utoipa derives from the handlers, made exact in one pass over
//! its JSON — every refusal an operation can answer, integer bounds of every integer, binary
//! bodies, response headers, and the links that walk upload → job → validate → render. The
//! `contract` test runs schemathesis against it; a rule the server checks and this document
//! does not state shows up there as a failure.

use std::sync::OnceLock;

use orchard_domain::JobStatus;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{control, downloads, farm, jobs, progress, uploads, webhooks, workers};
use crate::policy::{JSON_BODY_LIMIT, MAX_URI_BYTES};

/// What utoipa derives from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Orchard", description = "A self-hosted Blender render farm speaking the Renderjuice external API v1."),
    paths(
        uploads::create_upload, uploads::put_upload, uploads::put_upload_part, uploads::complete_upload,
        jobs::create_job, jobs::list_jobs, jobs::get_job, jobs::validate_job, jobs::render_job, jobs::cancel_job, jobs::list_tasks, jobs::task_log,
        control::suspend_job, control::resume_job, control::retry_job, control::patch_job, control::delete_job,
        progress::get_job_progress, progress::get_all_progress,
        downloads::get_downloads, downloads::get_file, downloads::get_archive,
        farm::list_workers, farm::drain_worker, farm::undrain_worker, farm::usage,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::delete_webhook, webhooks::rotate_secret,
        webhooks::list_deliveries, webhooks::redeliver, webhooks::events,
        workers::register_worker, workers::claim_task, workers::heartbeat, workers::get_scene,
        workers::output_urls, workers::put_output, workers::complete_task, workers::fail_task,
        workers::packaging_heartbeat, workers::packaging_scene, workers::packaging_complete, workers::packaging_fail,
        super::healthz, super::addon_zip,
    ),
    modifiers(&SecuritySchemes),
)]
struct Derived;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("RJ-…").build()),
        );
        components.add_security_scheme(
            "worker_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("OW-…").build()),
        );
    }
}

/// The served document, built once.
pub(crate) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(Derived::openapi()).unwrap_or_else(|e| panic!("OpenAPI to JSON: {e}"));
        refusals(&mut doc);
        bounds(&mut doc);
        bodies_and_headers(&mut doc);
        links(&mut doc);
        doc
    })
}

const PREFIX: &str = orchard_api::API_PREFIX;

fn error_response(description: &str) -> Value {
    json!({"description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

/// Each operation's mutable JSON with its path and method.
fn operations(doc: &mut Value) -> impl Iterator<Item = (String, &str, &mut Value)> {
    doc["paths"].as_object_mut().into_iter().flat_map(|paths| {
        paths.iter_mut().flat_map(|(path, item)| {
            let path = path.clone();
            item.as_object_mut().into_iter().flat_map(move |methods| {
                let path = path.clone();
                methods.iter_mut().map(move |(method, operation)| (path.clone(), method.as_str(), operation))
            })
        })
    })
}

/// What every operation can refuse, written once: a malformed body or query (400), a body
/// past the JSON limit (413), an unknown id in the path (404), no key (401), a rate limit
/// (429 with `Retry-After`).
fn refusals(doc: &mut Value) {
    for (_, _, operation) in operations(doc) {
        // `get`, never indexing: indexing a missing key of a mutable value inserts a null.
        let keyed = operation.get("security").and_then(Value::as_array).is_some_and(|it| !it.is_empty());
        let json_body = operation.pointer("/requestBody/content/application~1json").is_some();
        let parameters = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        let in_query = parameters.iter().any(|it| it["in"] == "query");
        let in_path = parameters.iter().any(|it| it["in"] == "path");
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        let mut add = |code: &str, response: Value| {
            responses.entry(code).or_insert(response);
        };
        if json_body || in_query {
            add(
                "400",
                error_response(
                    "refused: the body or query is not what this operation takes (the error body names the field)",
                ),
            );
        }
        if json_body {
            add("413", error_response(&format!("the body is over {JSON_BODY_LIMIT} bytes")));
        }
        if in_path {
            add("404", error_response("unknown, another workspace's, or not an id"));
        }
        add("414", error_response(&format!("the URL is over {MAX_URI_BYTES} bytes")));
        if keyed {
            add("401", error_response("no credentials, or unknown or revoked ones"));
            let mut limited =
                error_response("over a rate limit: wait for Retry-After (failed authentication counts per address)");
            limited["headers"] =
                json!({"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}});
            add("429", limited);
        }
    }
}

/// Integer bounds from their Rust types (utoipa writes the format but not the range), and the
/// status filter's grammar.
fn bounds(doc: &mut Value) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                if object
                    .get("type")
                    .is_some_and(|it| it == "integer" || it.as_array().is_some_and(|it| it.contains(&json!("integer"))))
                    && !object.contains_key("maximum")
                {
                    let unsigned = object.get("minimum").is_some_and(|it| it == 0);
                    let (min, max): (Value, Value) = match (object.get("format").and_then(Value::as_str), unsigned) {
                        (Some("int32"), true) => (0.into(), u32::MAX.into()),
                        (Some("int32"), false) => (i32::MIN.into(), i32::MAX.into()),
                        (Some("int64"), true) => (0.into(), u64::MAX.into()),
                        _ => (i64::MIN.into(), i64::MAX.into()),
                    };
                    object.entry("minimum").or_insert(min);
                    object.insert("maximum".into(), max);
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut doc["components"]["schemas"]);
    for (_, _, operation) in operations(doc) {
        if let Some(parameters) = operation.get_mut("parameters") {
            walk(parameters);
        }
    }
    let names: Vec<&str> = JobStatus::ALL.iter().map(|it| it.as_str()).collect();
    let one = format!("({})?", names.join("|"));
    let list = &mut doc["paths"][format!("{PREFIX}/jobs")]["get"]["parameters"];
    for parameter in list.as_array_mut().into_iter().flatten() {
        if parameter["name"] == "status" {
            parameter["schema"]["pattern"] = json!(format!(r"^\s*{one}\s*(,\s*{one}\s*)*$"));
        }
    }
}

/// Raw bytes as binary strings, and the headers operations answer with.
fn bodies_and_headers(doc: &mut Value) {
    // An empty body is refused (400 `empty_body`): an empty scene or frame is a mistake.
    let binary = json!({"required": true, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary", "minLength": 1}}}});
    let paths = &mut doc["paths"];
    for path in [
        "/blobs/uploads/{slug}",
        "/blobs/uploads/{slug}/parts/{part_number}",
        "/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}",
    ] {
        paths[path]["put"]["requestBody"] = binary.clone();
    }
    paths["/blobs/uploads/{slug}/parts/{part_number}"]["put"]["responses"]["200"]["headers"] = json!({"ETag": {"description": "send it back with the part in `POST /uploads/{slug}/complete`",
            "schema": {"type": "string"}}});
    paths[format!("{PREFIX}/jobs/{{id}}/render")]["post"]["responses"]["200"]["headers"] = json!({"X-Idempotent-Replay": {"description": "`true` when the render had already started: nothing new was started",
            "schema": {"type": "string", "enum": ["true"]}}});
    paths["/blobs/files/{key}"]["get"]["responses"]["200"]["content"] =
        json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
}

/// How the flow walks: an upload's slug makes a job; a job's id is what every job operation
/// takes.
fn links(doc: &mut Value) {
    // `GET /jobs/{id}` wraps its job in `data`; the actions answer the bare job.
    let job_links = |pointer: &str| {
        let by_id = |operation: &str| json!({"operationId": operation, "parameters": {"id": format!("$response.body#{pointer}")}});
        json!({
            "GetJob": by_id("get_job"),
            "ValidateJob": by_id("validate_job"),
            "RenderJob": by_id("render_job"),
            "CancelJob": by_id("cancel_job"),
            "GetJobProgress": by_id("get_job_progress"),
            "GetDownloads": by_id("get_downloads"),
            "ListTasks": by_id("list_tasks"),
        })
    };
    let paths = &mut doc["paths"];
    paths[format!("{PREFIX}/uploads")]["post"]["responses"]["200"]["links"] = json!({
        "CreateJob": {"operationId": "create_job", "requestBody": {"slug": "$response.body#/slug"},
            "description": "once the file is PUT to uploadUrl"},
        "CompleteUpload": {"operationId": "complete_upload", "parameters": {"slug": "$response.body#/slug"}},
    });
    paths[format!("{PREFIX}/uploads/{{slug}}/complete")]["post"]["responses"]["200"]["links"] = json!({
        "CreateJob": {"operationId": "create_job", "requestBody": {"slug": "$response.body#/slug"}},
    });
    for (path, method, pointer) in [
        ("/jobs", "post", "/id"),
        ("/jobs/{id}", "get", "/data/id"),
        ("/jobs/{id}/validate", "post", "/id"),
        ("/jobs/{id}/render", "post", "/id"),
    ] {
        paths[format!("{PREFIX}{path}")][method]["responses"]["200"]["links"] = job_links(pointer);
    }
    let webhook = |operation: &str| json!({"operationId": operation, "parameters": {"id": "$response.body#/id"}});
    paths[format!("{PREFIX}/webhooks")]["post"]["responses"]["201"]["links"] = json!({
        "RotateSecret": webhook("rotate_secret"),
        "ListDeliveries": webhook("list_deliveries"),
        "DeleteWebhook": webhook("delete_webhook"),
    });
    paths[format!("{PREFIX}/jobs/{{id}}/tasks")]["get"]["responses"]["200"]["links"] = json!({
        "TaskLog": {"operationId": "task_log", "parameters": {"id": "$request.path.id", "taskId": "$response.body#/0/id"}},
    });
    // A worker registers, claims, then acts on the task it holds.
    paths[format!("{PREFIX}/workers/register")]["post"]["responses"]["200"]["links"] = json!({
        "ClaimTask": {"operationId": "claim_task", "parameters": {"worker_id": "$response.body#/workerId"}},
    });
    let held = |operation: &str| {
        json!({"operationId": operation, "parameters": {
            "worker_id": "$request.path.worker_id", "task_id": "$response.body#/taskId"}})
    };
    let mut scene = held("get_scene");
    scene["parameters"]["attempt"] = json!("$response.body#/attempt");
    paths[format!("{PREFIX}/workers/{{worker_id}}/claim")]["post"]["responses"]["200"]["links"] = json!({
        "GetScene": scene,
        "Heartbeat": held("heartbeat"),
        "OutputUrls": held("output_urls"),
        "CompleteTask": held("complete_task"),
        "FailTask": held("fail_task"),
    });
}
