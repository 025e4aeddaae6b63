//! The HTTP surface: the Renderjuice-compatible API under `/api/external/v1`, the signed
//! blob routes behind its URLs, `/healthz`, and the OpenAPI document.

mod control;
mod dashboard;
mod downloads;
mod error;
mod extract;
mod farm;
mod jobs;
mod openapi;
mod progress;
mod uploads;
mod webhooks;
mod wire;
mod workers;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::{delete, get, post, put};
use orchard_api::{API_PREFIX, Health};
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::policy::{DISK_FULL_BELOW, JSON_BODY_LIMIT, MAX_URI_BYTES};
use crate::state::AppState;

/// Liveness, and what needs an operator (a full disk: 503 `degraded`).
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "serving", body = Health),
              (status = 503, description = "serving, but something needs an operator (see problems)", body = Health)))]
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut problems = Vec::new();
    if let Some(free) = free_bytes(&state.config.data_dir)
        && free < DISK_FULL_BELOW
    {
        problems.push(format!(
            "the data folder's disk is full ({free} bytes free): uploads and renders fail until space is freed"
        ));
    }
    let status = if problems.is_empty() { "ok" } else { "degraded" };
    let code = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(Health { status: status.into(), version: env!("CARGO_PKG_VERSION").into(), problems }))
}

/// Bytes free for this process on the disk of `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

async fn openapi_json() -> Json<&'static serde_json::Value> {
    Json(openapi::document())
}

/// Every route.
pub(crate) fn router(state: AppState) -> Router {
    let external = Router::new()
        .route("/uploads", post(uploads::create_upload))
        .route("/uploads/{slug}/complete", post(uploads::complete_upload))
        .route("/jobs", post(jobs::create_job).get(jobs::list_jobs))
        .route("/jobs/progress", get(progress::get_all_progress))
        .route("/jobs/{id}", get(jobs::get_job).patch(control::patch_job).delete(control::delete_job))
        .route("/jobs/{id}/suspend", post(control::suspend_job))
        .route("/jobs/{id}/resume", post(control::resume_job))
        .route("/jobs/{id}/retry", post(control::retry_job))
        .route("/jobs/{id}/validate", post(jobs::validate_job))
        .route("/jobs/{id}/render", post(jobs::render_job))
        .route("/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/jobs/{id}/progress", get(progress::get_job_progress))
        .route("/jobs/{id}/downloads", get(downloads::get_downloads))
        .route("/jobs/{id}/tasks", get(jobs::list_tasks))
        .route("/jobs/{id}/tasks/{taskId}/log", get(jobs::task_log))
        .route("/openapi.json", get(openapi_json))
        .route("/webhooks", post(webhooks::create_webhook).get(webhooks::list_webhooks))
        .route("/webhooks/{id}", delete(webhooks::delete_webhook))
        .route("/webhooks/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/webhooks/{id}/deliveries", get(webhooks::list_deliveries))
        .route("/webhooks/{id}/deliveries/{deliveryId}/redeliver", post(webhooks::redeliver))
        .route("/events", get(webhooks::events))
        .route("/workers", get(farm::list_workers))
        .route("/usage", get(farm::usage))
        .route("/workers/{worker_id}/drain", post(farm::drain_worker))
        .route("/workers/{worker_id}/undrain", post(farm::undrain_worker))
        .route("/workers/register", post(workers::register_worker))
        .route("/workers/{worker_id}/claim", post(workers::claim_task))
        .route("/workers/{worker_id}/tasks/{task_id}/heartbeat", post(workers::heartbeat))
        .route("/workers/{worker_id}/tasks/{task_id}/scene", get(workers::get_scene))
        .route("/workers/{worker_id}/tasks/{task_id}/outputs", post(workers::output_urls))
        .route("/workers/{worker_id}/tasks/{task_id}/complete", post(workers::complete_task))
        .route("/workers/{worker_id}/tasks/{task_id}/fail", post(workers::fail_task))
        .route("/workers/{worker_id}/packaging/{task_id}/heartbeat", post(workers::packaging_heartbeat))
        .route("/workers/{worker_id}/packaging/{task_id}/scene", get(workers::packaging_scene))
        .route("/workers/{worker_id}/packaging/{task_id}/complete", post(workers::packaging_complete))
        .route("/workers/{worker_id}/packaging/{task_id}/fail", post(workers::packaging_fail))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let blobs = Router::new()
        .route("/blobs/uploads/{slug}", put(uploads::put_upload).layer(DefaultBodyLimit::disable()))
        .route(
            "/blobs/uploads/{slug}/parts/{part_number}",
            put(uploads::put_upload_part).layer(DefaultBodyLimit::disable()),
        )
        .route("/blobs/files/{*key}", get(downloads::get_file))
        .route("/blobs/archives/{job_id}/{file}", get(downloads::get_archive))
        .route(
            "/blobs/outputs/{job_id}/{task_id}/{attempt}/{file}",
            put(workers::put_output).layer(DefaultBodyLimit::disable()),
        );
    let router = Router::new()
        .nest(API_PREFIX, external)
        .merge(blobs)
        .merge(dashboard::routes())
        .route("/healthz", get(healthz))
        .route("/addon.zip", get(addon_zip))
        .route("/metrics", get(metrics))
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|method: Method| async move { Error::MethodNotAllowed(method.to_string()) });
    let cors = cors(&state.config.cors_origins);
    let router = router
        .layer(axum::middleware::from_fn_with_state(state.clone(), measure))
        .layer(axum::middleware::from_fn(refuse_long_uris))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The Blender add-on, to install from Blender's preferences (legacy add-on or extension).
#[utoipa::path(get, path = "/addon.zip", tag = "meta",
    responses((status = 200, description = "the add-on's zip", content_type = "application/zip")))]
pub(crate) async fn addon_zip() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut response = axum::body::Body::from(crate::addon::zip()).into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/zip"));
    headers.insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"orchard-addon.zip\""),
    );
    response
}

/// Prometheus (OpenMetrics) text: the farm's jobs, tasks and workers by status (read now, the
/// same from every server), and this server's requests, claims and frames. Unauthenticated,
/// as `/healthz`: counts only, no ids.
async fn metrics(State(state): State<AppState>) -> Result<axum::response::Response, Error> {
    let (jobs, tasks) = state.store.status_counts().await?;
    let workers = crate::ops::farm::count_by_status(&state).await?;
    state.metrics.set_farm(&jobs, &tasks, &workers);
    let headers = [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")];
    Ok(axum::response::IntoResponse::into_response((headers, state.metrics.encode())))
}

/// Records each request in `/metrics`: its route's template (ids would make a series each),
/// method, status and duration.
async fn measure(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "other".to_string(), |it| it.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = crate::metrics::RequestLabels { route, method, status: response.status().as_u16() };
    state.metrics.request(labels, started.elapsed());
    response
}

/// 414 with the error body for a request target past [`MAX_URI_BYTES`], before any routing.
async fn refuse_long_uris(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let length = request.uri().path_and_query().map_or(0, |it| it.as_str().len());
    if length > MAX_URI_BYTES {
        return axum::response::IntoResponse::into_response(Error::UriTooLong(length));
    }
    next.run(request).await
}

/// Cross-origin access for the configured web origins (checked at start-up), or none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|it| HeaderValue::from_str(it).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::ETAG, HeaderName::from_static("x-idempotent-replay")])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// Checks `--cors-origin` values: each a web origin, `scheme://host[:port]`, nothing more.
pub(crate) fn check_cors_origins(origins: &[String]) -> anyhow::Result<()> {
    for origin in origins {
        let parsed = url::Url::parse(origin).ok().filter(|it| {
            matches!(it.scheme(), "http" | "https")
                && it.host_str().is_some()
                && it.path() == "/"
                && it.query().is_none()
                && it.fragment().is_none()
                && it.username().is_empty()
                && !origin.ends_with('/')
        });
        if parsed.is_none() || HeaderValue::from_str(origin).is_err() {
            anyhow::bail!("--cors-origin {origin:?} is not a web origin like https://tools.studio.example");
        }
    }
    Ok(())
}
