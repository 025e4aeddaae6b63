//! The served OpenAPI document is held to what the server does: schemathesis (in the tests'
//! Python venv) generates requests from it, valid and invalid, walks the links between
//! operations, and checks every answer against the document — status codes, bodies, headers,
//! schema-valid requests accepted, schema-invalid ones refused. Any failure fails the test.
//!
//! Identifiers a fuzzer cannot invent (a job, a worker, a task) are made here first and given
//! to it; state rules the document cannot express are listed in `CONFIG` with their reason.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// Requests per operation and phase: enough to find a wrong enum, range or status in a
/// few minutes for both surfaces on both backends. `ORCHARD_FUZZ_EXAMPLES` asks for more.
const EXAMPLES: &str = "25";
/// The same requests on every run, so that CI is repeatable; `ORCHARD_FUZZ_SEED` explores.
const SEED: &str = "1";

/// The schemathesis next to the tests' Python, or None where that Python is not set (then
/// `ORCHARD_REQUIRE_TEST_PYTHON` makes that a failure).
fn schemathesis() -> Option<PathBuf> {
    let Some(python) = std::env::var_os("ORCHARD_TEST_PYTHON") else {
        assert!(std::env::var_os("ORCHARD_REQUIRE_TEST_PYTHON").is_none(), "ORCHARD_TEST_PYTHON is not set");
        eprintln!("skipped: ORCHARD_TEST_PYTHON (a venv with schemathesis) is not set; dev/test sets it");
        return None;
    };
    let tool = Path::new(&python).with_file_name("schemathesis");
    assert!(tool.exists(), "{} is missing: dev/test installs schemathesis in the tests' venv", tool.display());
    Some(tool)
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn fuzzed_app() -> TestApp {
    // A fuzzer sends thousands of requests a second, many with bad keys: limits off.
    spawn_app_with(|config| {
        config.rate_limit = 0;
        config.auth_failure_limit = 0;
    })
    .await
}

/// Runs schemathesis with every check on against `app`, restricted to `operations` (a
/// regular expression over `METHOD /path`), with `config` as its configuration file.
async fn run(app: &TestApp, token: &str, operations: &str, config: String) {
    let Some(tool) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let output = tokio::process::Command::new(tool)
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&config_file)
        .args(["run", &app.api("/openapi.json"), "--url", &app.base, "--checks", "all", "--no-color"])
        .args([
            "--max-examples",
            &setting("ORCHARD_FUZZ_EXAMPLES", EXAMPLES),
            "--seed",
            &setting("ORCHARD_FUZZ_SEED", SEED),
        ])
        .args(["--include-name-regex", operations])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found failures:\n{report}");
    // Shown with --nocapture: which operations ran, how many cases each.
    println!("{report}");
    assert!(
        !report.lines().any(|it| it.trim().starts_with("0 generated")),
        "schemathesis generated nothing:\n{report}"
    );
}

/// A number as a number (the document types `attempt` and `expires` as integers), else a string.
fn toml_value(value: &str) -> String {
    match value.parse::<i64>() {
        Ok(number) => number.to_string(),
        Err(_) => format!("\"{value}\""),
    }
}

/// The path and the signature's query parameters of a signed URL, as parameter overrides
/// for the operation behind it: the fuzzer cannot sign, but it can use a URL it was given.
fn signed_parameters(url: &str, names: &[&str]) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    let segments: Vec<String> = url.path_segments().unwrap().map(|it| it.to_string()).collect();
    let mut out: Vec<String> = names
        .iter()
        .zip(&segments[segments.len() - names.len()..])
        .map(|(name, value)| format!("\"path.{name}\" = {}", toml_value(value)))
        .collect();
    for (name, value) in url.query_pairs() {
        out.push(format!("\"query.{name}\" = {}", toml_value(&value)));
    }
    format!("{{ {} }}", out.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_wrong_with_the_renderjuice_surface() {
    let app = fuzzed_app().await;
    // A job for each operation whose outcome depends on it: one to render (validated), one
    // to cancel, one to read, and a fresh one to validate.
    let render = app.validated_job().await;
    let cancel = app.validated_job().await;
    let read = app.validated_job().await;
    let validate = app.created_job(crate::helpers::example_scene()).await;
    let delete = app.validated_job().await;
    let (status, body) = app
        .post(
            &format!("/jobs/{read}/render"),
            json!({"requestedRenderConfig": {
        "colorManagementPreset": "default"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, upload) = app.post("/uploads", json!({"fileName": "fuzzed.blend", "fileType": "blend"})).await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    let put_upload = signed_parameters(upload["uploadUrl"].as_str().unwrap(), &["slug"]);
    let (status, upload) = app.post("/uploads", json!({"fileName": "fuzzed.zip", "fileType": "zip", "parts": 2})).await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    let put_part = signed_parameters(upload["partUrls"][1].as_str().unwrap(), &["slug", "part_number"]);
    // A webhook for the operations on one (deliveries to it fail: the name does not resolve).
    let body = json!({"url": "https://hooks.orchard.invalid/fuzzed", "events": ["onRenderComplete"]});
    let (status, hook) = app.post("/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_string();
    let config = format!(
        r#"
[generation]
# Generated keys go to the server; a long run must not fill the test disk.
database = "none"

[parameters]
"path.id" = "{read}"

[[operations]]
include-name = "POST /api/external/v1/jobs/{{id}}/render"
parameters = {{ "path.id" = "{render}" }}
# The config is checked as a whole against the scene (a reversed range, a depth the format
# cannot store, the output's size): rules across fields and state, refused with 400 by name.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]

[[operations]]
include-name = ["POST /api/external/v1/jobs/{{id}}/suspend", "POST /api/external/v1/jobs/{{id}}/resume", "POST /api/external/v1/jobs/{{id}}/retry"]
# Suspend only while booting or rendering, resume only when suspended, retry only once finished
# (and with something to retry): else 400 naming the status or the reason.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]

[[operations]]
include-name = "DELETE /api/external/v1/jobs/{{id}}"
parameters = {{ "path.id" = "{delete}" }}

[[operations]]
include-name = "PUT /blobs/uploads/{{slug}}"
parameters = {put_upload}

[[operations]]
include-name = "PUT /blobs/uploads/{{slug}}/parts/{{part_number}}"
parameters = {put_part}

[[operations]]
include-name = "POST /api/external/v1/uploads/{{slug}}/complete"
# The parts listed must be the upload's own, as declared and sent: 400 names what is wrong.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]

[[operations]]
include-name = "POST /api/external/v1/jobs/{{id}}/cancel"
parameters = {{ "path.id" = "{cancel}" }}
# Renderjuice: cancel only before a terminal state, else 400 (a state no request shows).
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]

[[operations]]
include-name = "POST /api/external/v1/webhooks"
# A URL must be public http(s) without credentials, and a workspace has at most 20: rules
# over the string's meaning and over state, refused with 400 by name.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "429"]

[[operations]]
include-name = ["POST /api/external/v1/webhooks/{{id}}/rotate-secret", "GET /api/external/v1/webhooks/{{id}}/deliveries", "POST /api/external/v1/webhooks/{{id}}/deliveries/{{deliveryId}}/redeliver", "DELETE /api/external/v1/webhooks/{{id}}"]
parameters = {{ "path.id" = "{hook}" }}

[[operations]]
include-name = "POST /api/external/v1/jobs/{{id}}/validate"
parameters = {{ "path.id" = "{validate}" }}
# Renderjuice: validate only from `created`, else 400 — the first call wins, later ones are 400.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]
"#
    );
    run(
        &app,
        &app.key,
        // Not the event stream: it never ends (its own test reads it).
        r"^(GET|POST|PUT|PATCH|DELETE) /(api/external/v1/(uploads|jobs|webhooks|workers$|workers/\{worker_id\}/(drain|undrain))|blobs/(uploads|files)|healthz)",
        config,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_wrong_with_the_worker_protocol() {
    let app = fuzzed_app().await;
    let token = orchard_server::keys::create_worker_token(app.server.store().as_ref()).await.unwrap();
    let job = app.validated_job().await;
    let (status, body) = app
        .post(&format!("/jobs/{job}/render"), json!({"requestedRenderConfig": {"colorManagementPreset": "default"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let worker = "fuzzed-worker";
    let register = json!({"workerId": worker, "name": worker, "speedFactor": 1.0, "capabilities": {
        "blenders": [{"version": "3.4.1", "oidn": false, "eevee": true, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": []}});
    let call = |path: &str, body: Value| {
        app.http.post(app.api(&format!("/workers{path}"))).bearer_auth(&token).json(&body).send()
    };
    let (status, body) = crate::helpers::parts(call("/register", register).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, claim) =
        crate::helpers::parts(call(&format!("/{worker}/claim"), json!({"waitSeconds": 0})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{claim}");
    let task = claim["taskId"].as_str().unwrap_or_else(|| panic!("a task is claimed: {claim}")).to_string();
    let attempt = &claim["attempt"];
    let (status, urls) = crate::helpers::parts(
        call(&format!("/{worker}/tasks/{task}/outputs"), json!({"attempt": attempt, "files": ["frame_0001.png"]}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{urls}");
    let put_output =
        signed_parameters(urls["urls"]["frame_0001.png"].as_str().unwrap(), &["job_id", "task_id", "attempt", "file"]);
    let config = format!(
        r#"
[generation]
database = "none"

[parameters]
"path.worker_id" = "{worker}"
"path.task_id" = "{task}"
"path.job_id" = "{job}"
"path.attempt" = {attempt}

[[operations]]
include-name = "PUT /blobs/outputs/{{job_id}}/{{task_id}}/{{attempt}}/{{file}}"
parameters = {put_output}

[[operations]]
include-name = "POST /api/external/v1/workers/{{worker_id}}/claim"
# A claim with nothing to hand out waits up to 30 s by design: the fuzzer asks for an answer now.
parameters = {{ "body.waitSeconds" = 0 }}

[[operations]]
include-name = "POST /api/external/v1/workers/{{worker_id}}/tasks/{{task_id}}/complete"
# The frames delivered must be the task's, each uploaded: a rule over state no schema shows.
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "409", "429"]
"#
    );
    run(
        &app,
        &token,
        r"^(GET|POST|PUT) /(api/external/v1/workers/(register|\{worker_id\}/(claim|tasks))|blobs/outputs)",
        config,
    )
    .await;
}
