//! The dashboard's pages and its sessions: a key presented once through the login form, then
//! a cookie that authenticates the same API endpoints, CSRF-checked for state changes.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, error_code, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";

/// A form body of one field.
fn form(name: &str, value: impl AsRef<str>) -> String {
    url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value.as_ref()).finish()
}

/// A client that shows redirects instead of following them.
fn browser() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Logs in with `key`; returns the `Cookie` header value to send back.
async fn log_in(app: &TestApp, key: &str) -> String {
    let response = browser()
        .post(format!("{}/login", app.base))
        .header(CONTENT_TYPE, FORM)
        .body(form("key", key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    set_cookie.split(';').next().unwrap().to_string()
}

/// The CSRF token a page hands its script.
async fn csrf_token(app: &TestApp, cookie: &str) -> String {
    let page = browser().get(format!("{}/", app.base)).header(COOKIE, cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let start = html.find("name=\"csrf-token\" content=\"").unwrap() + "name=\"csrf-token\" content=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = browser().request(method, app.api(path)).header(COOKIE, cookie);
    if let Some(token) = csrf {
        request = request.header("X-Orchard-CSRF", token);
    }
    crate::helpers::parts(request.send().await.unwrap()).await
}

#[tokio::test]
async fn dashboard_pages_send_strangers_to_the_login_form() {
    let app = spawn_app().await;
    for path in ["/", "/submit", "/workers", "/farm", "/jobs/6a0f7e8e-1c1e-4a3e-9b7e-0c6b7d1f0a11"] {
        let response = browser().get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[LOCATION], "/login", "{path}");
    }
    let login = browser().get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.text().await.unwrap().contains("<form method=\"post\" action=\"/login\">"));
    for asset in ["/assets/dashboard.js", "/assets/dashboard.css", "/assets/icon.svg"] {
        let response = browser().get(format!("{}{asset}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
}

#[tokio::test]
async fn dashboard_login_refuses_a_wrong_key_and_sets_a_strict_cookie_for_a_right_one() {
    let app = spawn_app().await;
    for wrong in ["RJ-000000000000000000000000000000000000000000000000", "nonsense", ""] {
        let response = browser()
            .post(format!("{}/login", app.base))
            .header(CONTENT_TYPE, FORM)
            .body(form("key", wrong))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert!(response.text().await.unwrap().contains("unknown or revoked API key"));
    }
    let response = browser()
        .post(format!("{}/login", app.base))
        .header(CONTENT_TYPE, FORM)
        .body(form("key", &app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for part in ["orchard_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains(&app.key), "the cookie must not carry the key: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    let (status, body) = with_cookie(&app, Method::GET, "/jobs", cookie, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = browser().get(format!("{}/", app.base)).header(COOKIE, cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn dashboard_session_changes_need_the_csrf_header() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let cookie = log_in(&app, &app.key).await;
    let csrf = csrf_token(&app, &cookie).await;
    let path = format!("/jobs/{id}/cancel");
    for token in [None, Some(""), Some("00ff")] {
        let (status, body) = with_cookie(&app, Method::POST, &path, &cookie, token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}: {body}");
        assert_eq!(error_code(&body), "csrf_refused");
    }
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["data"]["status"], "validated", "a refused change changes nothing");
    let (status, body) = with_cookie(&app, Method::POST, &path, &cookie, Some(&csrf)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled");
    // Another session's token is not this one's.
    let other_cookie = log_in(&app, &app.other_key).await;
    let other_csrf = csrf_token(&app, &other_cookie).await;
    let (status, body) = with_cookie(&app, Method::DELETE, &format!("/jobs/{id}"), &cookie, Some(&other_csrf)).await;
    assert_eq!((status, error_code(&body).as_str()), (StatusCode::FORBIDDEN, "csrf_refused"), "{body}");
}

#[tokio::test]
async fn dashboard_sessions_see_only_their_workspace_and_end_with_their_key() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let rival = log_in(&app, &app.other_key).await;
    for path in [format!("/jobs/{id}"), format!("/jobs/{id}/tasks"), format!("/jobs/{id}/downloads")] {
        let (status, body) = with_cookie(&app, Method::GET, &path, &rival, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, list) = with_cookie(&app, Method::GET, "/jobs", &rival, None).await;
    assert_eq!(list["pagination"]["total"], 0, "{list}");
    let (status, body) =
        with_cookie(&app, Method::POST, "/workers/x/drain", &rival, Some(&csrf_token(&app, &rival).await)).await;
    let refused = (status, error_code(&body));
    assert_eq!(refused, (StatusCode::FORBIDDEN, "admin_required".to_string()), "a workspace key drains no worker");

    let owner = log_in(&app, &app.key).await;
    let (status, _) = with_cookie(&app, Method::GET, &format!("/jobs/{id}"), &owner, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.server.store().revoke_key(&app.key[..11], 0).await.unwrap());
    // Keys are remembered a few seconds; a revoked key's session ends with it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = with_cookie(&app, Method::GET, &format!("/jobs/{id}"), &owner, None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the session outlived its key");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let page = browser().get(format!("{}/", app.base)).header(COOKIE, &owner).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn dashboard_refuses_forged_sessions_cross_site_logins_and_forged_logouts() {
    let app = spawn_app().await;
    let cookie = log_in(&app, &app.key).await;
    let forged = format!("{}0", cookie);
    let (status, body) = with_cookie(&app, Method::GET, "/jobs", &forged, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let response = browser()
        .post(format!("{}/login", app.base))
        .header("Origin", "https://evil.example")
        .header(CONTENT_TYPE, FORM)
        .body(form("key", &app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());

    let logout = |token: &str| {
        browser()
            .post(format!("{}/logout", app.base))
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, FORM)
            .body(form("csrf", token))
            .send()
    };
    assert_eq!(logout("wrong").await.unwrap().status(), StatusCode::FORBIDDEN);
    let csrf = csrf_token(&app, &cookie).await;
    let response = logout(&csrf).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn dashboard_filters_jobs_by_workspace_for_admins_only() {
    let app = spawn_app().await;
    let id = app.validated_job().await;
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    let studio = job["data"]["workspaceId"].as_str().unwrap().to_string();
    let (admin, _) =
        orchard_server::keys::create_key_as(app.server.store().as_ref(), "ops", "root", true).await.unwrap();
    let list = |key: String, query: String| {
        let app = &app;
        async move { crate::helpers::parts(app.call(Method::GET, &format!("/jobs{query}"), Some(&key), None).await).await }
    };
    let (status, body) = list(admin.clone(), format!("?workspace={studio}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pagination"]["total"], 1, "{body}");
    let (_, body) = list(admin.clone(), format!("?workspace={}", uuid::Uuid::new_v4())).await;
    assert_eq!(body["pagination"]["total"], 0, "{body}");
    let (_, body) = list(app.other_key.clone(), format!("?workspace={studio}")).await;
    assert_eq!(body["pagination"]["total"], 0, "a workspace key sees nothing of another's: {body}");
    let (_, body) = list(app.key.clone(), format!("?workspace={studio}")).await;
    assert_eq!(body["pagination"]["total"], 1, "{body}");
    let (status, body) = list(app.key.clone(), "?workspace=nonsense".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn dashboard_cookie_is_secure_behind_https() {
    let app = crate::helpers::spawn_app_with(|config| config.public_url = Some("https://farm.example".into())).await;
    let response = browser()
        .post(format!("http://{}/login", app.server.addr()))
        .header(CONTENT_TYPE, FORM)
        .body(form("key", &app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
}
