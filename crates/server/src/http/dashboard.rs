//! The dashboard: the farm for people, in the browser (`orchard.md` §3a, Root).
//!
//! Each page is a small server-rendered shell (the navigation, the session's CSRF token in a
//! `<meta>` tag, the page's name) and one plain-JS module that fills it from the same API a
//! client calls, authenticated by the session cookie, kept live by the event stream. No data
//! comes from anywhere else, so the dashboard shows exactly what the API grants the key: a
//! workspace key its workspace, an admin key the farm. The assets are embedded in the binary
//! (no CDN, no Node toolchain): one stylesheet (light and dark), one script.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;

use crate::clock::now_ms;
use crate::error::Error;
use crate::http::extract::{BaseUrl, key_owner};
use crate::keys::key_hash;
use crate::sessions::{COOKIE, CSRF_HEADER, Session, clear_cookie, cookie, set_cookie};
use crate::state::AppState;

/// The stylesheet: one file, light and dark through `prefers-color-scheme`.
const STYLE: &str = include_str!("../../assets/dashboard/dashboard.css");
/// Every page's behaviour: plain JS, no build step.
const SCRIPT: &str = include_str!("../../assets/dashboard/dashboard.js");
/// The favicon (an SVG, so that it is text and small).
const ICON: &str = include_str!("../../assets/dashboard/icon.svg");

/// The dashboard's routes, at the root beside `/healthz`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(jobs_page))
        .route("/jobs/{id}", get(job_page))
        .route("/submit", get(submit_page))
        .route("/workers", get(workers_page))
        .route("/farm", get(farm_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/dashboard.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/assets/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/assets/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}

/// The hash of the key a request's session cookie names, checked: `None` when the request
/// presents a key itself (`Authorization` wins) or has no session. A state change made with
/// a session must carry the session's CSRF token in [`CSRF_HEADER`], or it is refused (403).
pub(super) fn session_key(parts: &Parts, state: &AppState) -> Result<Option<String>, Error> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let Some(session) = session_of(&parts.headers, state)? else { return Ok(None) };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let token = parts.headers.get(CSRF_HEADER).and_then(|it| it.to_str().ok()).unwrap_or("");
        if !session.csrf_matches(&state.signer, token) {
            return Err(Error::Forbidden {
                code: "csrf_refused",
                message: format!(
                    "a change made with a dashboard session must carry its {CSRF_HEADER} header (or send an API key)"
                ),
            });
        }
    }
    Ok(Some(session.key_hash))
}

/// The request's session, checked; `None` without the cookie.
fn session_of(headers: &HeaderMap, state: &AppState) -> Result<Option<Session>, Error> {
    let value =
        headers.get_all(header::COOKIE).iter().filter_map(|it| it.to_str().ok()).find_map(|it| cookie(it, COOKIE));
    let Some(value) = value.filter(|it| !it.is_empty()) else { return Ok(None) };
    match Session::parse(value, &state.signer, now_ms() / 1000) {
        Ok(session) => Ok(Some(session)),
        Err(_) => Err(Error::Unauthorized("the dashboard session is not valid or has expired: log in again")),
    }
}

/// Who a page is shown to.
struct Viewer {
    session: Session,
    admin: bool,
}

/// The viewer of a page request, or the way to the login page (a missing, expired or
/// revoked session alike).
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    let to_login = || Redirect::to("/login").into_response();
    let session = match session_of(headers, state) {
        Ok(Some(session)) => session,
        _ => return Err(to_login()),
    };
    match state.keys.owner(state.store.as_ref(), &session.key_hash).await {
        Ok(Some(owner)) => Ok(Viewer { session, admin: owner.admin }),
        Ok(None) => Err(to_login()),
        Err(error) => Err(Error::from(error).into_response()),
    }
}

/// A page's shell: the navigation, the CSRF token, and `data-page` for the script.
fn shell(state: &AppState, viewer: &Viewer, title: &str, page: &str, data: &[(&str, &str)]) -> Response {
    let csrf = viewer.session.csrf_token(&state.signer);
    let attributes: String = data.iter().map(|(name, value)| format!(" data-{name}=\"{}\"", escape(value))).collect();
    let current = |name: &str| if name == page { " aria-current=\"page\"" } else { "" };
    let role = if viewer.admin { "admin key: the whole farm" } else { "workspace key" };
    let body = format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<meta name="orchard-admin" content="{admin}">
<title>{title} · Orchard</title>
<link rel="icon" href="/assets/icon.svg">
<link rel="stylesheet" href="/assets/dashboard.css">
<script type="module" src="/assets/dashboard.js"></script>
</head>
<body data-page="{page}"{attributes}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">Orchard</a>
<nav aria-label="Sections">
<a href="/"{jobs}>Jobs</a>
<a href="/submit"{submit}>Submit</a>
<a href="/workers"{workers}>Workers</a>
<a href="/farm"{farm}>Farm</a>
</nav>
<span class="who" title="signed in with an API key">{role}</span>
<form method="post" action="/logout" class="logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Log out</button>
</form>
<span id="live" class="live" role="status" aria-live="polite">connecting…</span>
</header>
<main id="main" tabindex="-1">
<h1>{title}</h1>
<p class="loading">Loading…</p>
</main>
</body>
</html>
"##,
        admin = viewer.admin,
        title = escape(title),
        jobs = current("jobs"),
        submit = current("submit"),
        workers = current("workers"),
        farm = current("farm"),
    );
    page_response(StatusCode::OK, body)
}

/// An HTML page that is never cached (it carries the session's CSRF token).
fn page_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob: http: https:; connect-src 'self' http: https:; frame-ancestors 'none'",
        ),
    );
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")];
    (headers, body).into_response()
}

/// The jobs of the workspace (the farm's, for an admin key), live.
async fn jobs_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(viewer) => shell(&state, &viewer, "Jobs", "jobs", &[]),
        Err(to_login) => to_login,
    }
}

/// One job: status, preview, frames, analysis, tasks and logs, downloads.
async fn job_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else { return Error::NotFound("job").into_response() };
    match viewer(&state, &headers).await {
        Ok(viewer) => shell(&state, &viewer, "Job", "job", &[("job-id", &id.to_string())]),
        Err(to_login) => to_login,
    }
}

/// Submit a `.blend` or `.zip` from the browser.
async fn submit_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(viewer) => shell(&state, &viewer, "Submit a render", "submit", &[]),
        Err(to_login) => to_login,
    }
}

/// The render nodes.
async fn workers_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(viewer) => shell(&state, &viewer, "Workers", "workers", &[]),
        Err(to_login) => to_login,
    }
}

/// The farm at a glance.
async fn farm_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(viewer) => shell(&state, &viewer, "Farm", "farm", &[]),
        Err(to_login) => to_login,
    }
}

/// The login form (or the jobs, for someone logged in already).
async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if viewer(&state, &headers).await.is_ok() {
        return Redirect::to("/").into_response();
    }
    login_form(StatusCode::OK, None)
}

fn login_form(status: StatusCode, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|it| format!("<p class=\"problem\" role=\"alert\" id=\"login-problem\">{}</p>", escape(it)))
        .unwrap_or_default();
    let body = format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Orchard</title>
<link rel="icon" href="/assets/icon.svg">
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body data-page="login">
<main id="main" class="login">
<h1>Orchard</h1>
<p>Log in with an API key (<code>RJ-…</code>). <code>orchard up</code> writes the admin key to <code>admin.key</code> in its data folder; <code>orchard keys create</code> makes others.</p>
{problem}
<form method="post" action="/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus spellcheck="false">
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
"##
    );
    page_response(status, body)
}

/// Logs in: the key checked as any request's, then a session cookie naming it (`Secure` when
/// people reach the server over HTTPS, as its base URL says).
async fn login(State(state): State<AppState>, BaseUrl(base): BaseUrl, request: axum::extract::Request) -> Response {
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|it| it.0.ip());
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Error::invalid("invalid_body", "the login form could not be read").into_response();
    };
    if cross_site(&headers) {
        return Error::Forbidden { code: "cross_site_login", message: "log in from the dashboard's own page".into() }
            .into_response();
    }
    if let Err(refusal) = state.limits.check_address(address) {
        return refusal.into_response();
    }
    let key = url::form_urlencoded::parse(&body).find(|(name, _)| name == "key").map(|(_, it)| it.trim().to_string());
    let key = key.unwrap_or_default();
    // Not even a key's shape: refused as an unknown key is.
    let hash = if key.starts_with("RJ-") { key_hash(&key) } else { String::new() };
    match key_owner(&state, address, &hash).await {
        Ok(_) => {}
        Err(Error::Unauthorized(message)) => return login_form(StatusCode::UNAUTHORIZED, Some(message)),
        Err(refusal) => return refusal.into_response(),
    }
    let session = Session::new(hash, now_ms() / 1000);
    let secure = base.starts_with("https://");
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie(&session.cookie_value(&state.signer), secure)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Logs out: the cookie goes. The form carries the CSRF token (a forged logout is refused).
async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Ok(Some(session)) = session_of(&headers, &state) {
        let token = url::form_urlencoded::parse(&body).find(|(name, _)| name == "csrf").map(|(_, it)| it.into_owned());
        let token = token.or_else(|| headers.get(CSRF_HEADER).and_then(|it| it.to_str().ok()).map(str::to_string));
        if !session.csrf_matches(&state.signer, token.as_deref().unwrap_or("")) {
            return Error::Forbidden { code: "csrf_refused", message: "log out from the dashboard's own page".into() }
                .into_response();
        }
    }
    let mut response = Redirect::to("/login").into_response();
    // The value is a constant of ASCII characters: always a valid header value.
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&clear_cookie()).expect("ASCII"));
    response
}

/// Whether the browser says the request comes from another site's page (`Sec-Fetch-Site`, or
/// an `Origin` whose host is not the one the request is addressed to).
fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name: header::HeaderName| headers.get(name).and_then(|it| it.to_str().ok());
    if value(header::HeaderName::from_static("sec-fetch-site")).is_some_and(|it| it == "cross-site") {
        return true;
    }
    match (value(header::ORIGIN), value(header::HOST)) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => url::Url::parse(origin).ok().is_none_or(|it| {
            let origin_host = match it.port() {
                Some(port) => format!("{}:{port}", it.host_str().unwrap_or("")),
                None => it.host_str().unwrap_or("").to_string(),
            };
            !origin_host.eq_ignore_ascii_case(host)
        }),
        _ => false,
    }
}

/// `text` safe inside HTML text and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn a_login_from_another_site_is_cross_site() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:7800")])));
        assert!(!cross_site(&headers(&[("host", "127.0.0.1:7800"), ("origin", "http://127.0.0.1:7800")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:7800"), ("origin", "https://evil.example")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:7800"), ("origin", "null")])));
        assert!(cross_site(&headers(&[("host", "127.0.0.1:7800"), ("sec-fetch-site", "cross-site")])));
    }
}
