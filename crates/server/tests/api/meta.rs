//! Health, the OpenAPI document, unknown routes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, parts, spawn_app};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = parts(app.http.get(format!("{}/healthz", app.base)).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let (status, doc) = parts(app.http.get(app.api("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/external/v1/uploads", "post"),
        ("/blobs/uploads/{slug}", "put"),
        ("/api/external/v1/jobs", "post"),
        ("/api/external/v1/jobs", "get"),
        ("/api/external/v1/jobs/{id}", "get"),
        ("/api/external/v1/jobs/{id}/validate", "post"),
        ("/api/external/v1/jobs/{id}/render", "post"),
        ("/api/external/v1/jobs/{id}/cancel", "post"),
        ("/api/external/v1/jobs/{id}/progress", "get"),
        ("/api/external/v1/jobs/progress", "get"),
        ("/api/external/v1/jobs/{id}/downloads", "get"),
        ("/healthz", "get"),
    ] {
        assert!(paths.get(path).and_then(|it| it.get(method)).is_some(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in ["Job", "JobEnvelope", "JobList", "Downloads", "Progress", "ErrorBody", "CreateUploadResponse"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get("/nothing-here").await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

/// Checks an OpenAPI document the way client generators and fuzzers read it.
const VALIDATE: &str = r#"
import json, sys
from jsonschema_path import SchemaPath
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
spec = json.load(open(sys.argv[1]))
errors = list(OpenAPIV31SpecValidator(SchemaPath.from_dict(spec)).iter_errors())
for error in errors:
    print(error.message[:200], "@", "/".join(str(it) for it in error.absolute_path))
sys.exit(1 if errors else 0)
"#;

#[tokio::test]
async fn the_openapi_document_is_valid_openapi() {
    let Some(python) = std::env::var_os("ORCHARD_TEST_PYTHON") else {
        assert!(std::env::var_os("ORCHARD_REQUIRE_TEST_PYTHON").is_none(), "ORCHARD_TEST_PYTHON is not set");
        eprintln!("skipped: ORCHARD_TEST_PYTHON (a Python with openapi-spec-validator) is not set; dev/test sets it");
        return;
    };
    let app = spawn_app().await;
    let (status, doc) = parts(app.http.get(app.api("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let run = std::process::Command::new(python).arg("-c").arg(VALIDATE).arg(file.path()).output().unwrap();
    assert!(run.status.success(), "{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    // Queries are queries (a generated client sends them), and every keyed operation
    // documents its refusals.
    let list = &doc["paths"]["/api/external/v1/jobs"]["get"];
    for parameter in list["parameters"].as_array().unwrap() {
        assert_eq!(parameter["in"], "query", "{parameter}");
    }
    for code in ["401", "429"] {
        assert!(list["responses"][code]["description"].is_string(), "{code}: {list}");
    }
    // Enums, formats and the render config's fields, for generators and fuzzers.
    let schemas = &doc["components"]["schemas"];
    let statuses = schemas["JobStatusName"]["enum"].as_array().expect("job statuses are an enum");
    assert!(statuses.iter().any(|it| it == "rendering") && statuses.len() == 11, "{statuses:?}");
    let upload_types: Vec<&Value> = schemas["CreateUploadRequest"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| &it["properties"]["fileType"])
        .collect();
    assert_eq!(
        upload_types,
        [
            &serde_json::json!({"type": "string", "enum": ["blend"]}),
            &serde_json::json!({"type": "string", "enum": ["zip"]})
        ]
    );
    assert_eq!(schemas["Job"]["properties"]["createdAt"]["format"], "date-time");
    assert_eq!(schemas["Job"]["properties"]["id"]["format"], "uuid");
    let config = &schemas["RequestedConfig"]["properties"];
    for field in ["colorManagementPreset", "frameRanges", "sampleCount", "resolution", "outputSettings", "chunkSize"] {
        assert!(config.get(field).is_some(), "requestedRenderConfig.{field} is documented: {config}");
    }
    assert_eq!(schemas["RequestedConfig"]["additionalProperties"], false);
    // Raw bytes are binary, the flow is linked for stateful fuzzers, and answers' headers are declared.
    let paths = &doc["paths"];
    let body = &paths["/blobs/uploads/{slug}"]["put"]["requestBody"]["content"]["application/octet-stream"]["schema"];
    assert_eq!(body["format"], "binary", "{body}");
    let links = &paths["/api/external/v1/jobs"]["post"]["responses"]["200"]["links"];
    assert_eq!(links["RenderJob"]["operationId"], "render_job", "{links}");
    let render = &paths["/api/external/v1/jobs/{id}/render"]["post"]["responses"]["200"];
    assert!(render["headers"]["X-Idempotent-Replay"].is_object(), "{render}");
}
