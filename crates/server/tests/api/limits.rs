//! Rate limits: per API key, and per client address for failed authentication; a worker's
//! own traffic never limited.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, parts, spawn_app_with};

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_come_back_and_others_are_not_slowed() {
    let app = spawn_app_with(|config| config.rate_limit = 5).await;
    let mut limited = None;
    for _ in 0..60 {
        let response = app.http.get(app.api("/jobs")).bearer_auth(&app.key).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = limited.expect("60 requests at once exceed 5 a second (bursts of 10)");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let (_, body) = parts(response).await;
    assert_eq!(error_code(&body), "rate_limited", "{body}");
    assert_eq!(body["error"]["details"]["retryAfter"], retry_after, "{body}");
    // Another key (another workspace's) is not slowed by this one.
    let response = app.http.get(app.api("/jobs")).bearer_auth(&app.other_key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn guessing_keys_gets_an_address_refused_even_with_a_right_key() {
    let app = spawn_app_with(|config| config.rate_limit = 0).await;
    let mut statuses = Vec::new();
    for i in 0..40 {
        let key = format!("RJ-{i:048x}");
        let response = app.http.get(app.api("/jobs")).bearer_auth(&key).send().await.unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let (_, body) = parts(response).await;
            assert_eq!(error_code(&body), "rate_limited", "{body}");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(statuses.iter().filter(|it| **it == StatusCode::UNAUTHORIZED).count() >= 10, "a person may mistype");
    // While refused, a right key from that address learns nothing either.
    let response = app.http.get(app.api("/jobs")).bearer_auth(&app.key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_workers_own_traffic_is_never_limited() {
    let app = spawn_app_with(|config| config.rate_limit = 1).await;
    let token = orchard_server::keys::create_worker_token(app.server.store().as_ref()).await.unwrap();
    let capabilities = json!({"blenders": [{"version": "3.4.1", "oidn": false, "eevee": false, "gpuBackends": []}],
        "cpuThreads": 2, "ramGib": 8.0, "tags": []});
    let register = json!({"workerId": "node-1", "name": "node-1", "capabilities": capabilities, "speedFactor": 1.0});
    for _ in 0..40 {
        let response = app.http.post(app.api("/workers/register")).bearer_auth(&token).json(&register).send().await;
        assert_eq!(response.unwrap().status(), StatusCode::OK);
        let claim = app.http.post(app.api("/workers/node-1/claim")).bearer_auth(&token).json(&json!({})).send().await;
        assert_eq!(claim.unwrap().status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn the_failed_authentication_limit_can_be_turned_off() {
    let app = spawn_app_with(|config| config.auth_failure_limit = 0).await;
    for i in 0..40 {
        let key = format!("RJ-{i:048x}");
        let response = app.http.get(app.api("/jobs")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
}
