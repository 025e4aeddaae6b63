//! Connections are bounded: slow headers and idle connections are cut off, and a flood of
//! half-open connections does not stop the server answering once it has passed.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

/// Reads until the server closes the connection; `None` if it has not within `limit` (the
/// bound only keeps a broken server from hanging the test).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<()> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let app = spawn_app_with(|config| config.connections.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.server.addr()).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
    }
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await.is_some(), "the slow client is still connected");
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let app = spawn_app_with(|config| config.connections.idle_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.server.addr()).await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await.is_some(), "the idle client is still connected");
}

#[tokio::test]
async fn after_a_flood_of_half_open_connections_the_server_answers() {
    let app = spawn_app_with(|config| {
        config.connections.header_read_timeout = Duration::from_secs(1);
        config.connections.max_connections = 50;
    })
    .await;
    let mut flood = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(app.server.addr()).await.unwrap();
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        flood.push(stream);
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let response = http.get(format!("{}/healthz", app.base)).send().await.expect("answered once the flood is cut off");
    assert_eq!(response.status(), StatusCode::OK);
    drop(flood);
}
