//! The smallest axum server that answers like `GET /jobs/{id}` would: a fixed JSON body.
//! Benchmarks measure Orchard against it in the same run, so the ratio cancels the machine.

use axum::{Router, routing::get};

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7900".to_string());
    let app = Router::new().route(
        "/api/external/v1/jobs/{id}",
        get(|| async { ([("content-type", "application/json")], r#"{"data":{"id":"hello"}}"#) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind address");
    println!("listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}
