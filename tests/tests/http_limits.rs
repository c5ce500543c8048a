//! The HTTP port under connections that hold descriptors without doing anything: they are
//! closed after the header timeout, and one address holds only so many at once.

use std::time::Duration;
use tickwire_server::accept::HEADER_TIMEOUT;
use tickwire_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; what it sent before that.
async fn until_closed(conn: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// One HTTP/1.1 request on its own connection: the status line and the whole reply.
async fn get(http: std::net::SocketAddr, path: &str) -> String {
    let mut conn = TcpStream::connect(http).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    until_closed(&mut conn).await
}

async fn healthz(http: std::net::SocketAddr) -> String {
    get(http, "/healthz").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_or_half_a_request_is_closed() {
    let server = server(|_| {}).await;
    let mut silent = TcpStream::connect(server.http_addr).await.unwrap();
    let mut trickle = TcpStream::connect(server.http_addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let opened = tokio::time::Instant::now();
    let limit = HEADER_TIMEOUT + Duration::from_secs(5);
    let (silent, trickle) = tokio::time::timeout(limit, async {
        tokio::join!(until_closed(&mut silent), until_closed(&mut trickle))
    })
    .await
    .expect("both closed by the server");
    assert!(opened.elapsed() >= HEADER_TIMEOUT - Duration::from_secs(1));
    assert_eq!(silent, "", "nothing was asked, nothing answered");
    assert!(
        trickle.is_empty() || trickle.starts_with("HTTP/1.1 408"),
        "{trickle}"
    );
    assert!(healthz(server.http_addr).await.ends_with("ok"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_only_so_many_http_connections() {
    // 4 connections an address, so 2 × 4 + 16 = 24 TCP connections on the HTTP port.
    let server = server(|c| c.server.per_address_connections = 4).await;
    let refusals = async || {
        let reason = "reason=\"http_address_connections\"";
        metric_with(
            server.http_addr,
            "tickwire_address_refusals_total",
            &[reason],
        )
        .await
    };
    let before = refusals().await;
    let mut held = Vec::new();
    for _ in 0..24 {
        held.push(TcpStream::connect(server.http_addr).await.unwrap());
    }
    // Past the cap: answered 503 and closed at once, not left hanging.
    let refused = within("a refusal", healthz(server.http_addr)).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    drop(held.pop());
    let answered = within("a free place", async {
        loop {
            let reply = healthz(server.http_addr).await;
            if !reply.starts_with("HTTP/1.1 503") {
                break reply;
            }
        }
    })
    .await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    drop(held);
    assert!(refusals().await >= before + 1.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_is_rate_limited_per_address_and_healthz_is_not() {
    // 4 connections an address: 4 API requests at once, then one a second.
    let server = server(|c| c.server.per_address_connections = 4).await;
    for path in ["/api/rooms", "/metrics", "/api/rooms", "/api/rooms"] {
        let reply = get(server.http_addr, path).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
    }
    let reply = get(server.http_addr, "/api/rooms").await;
    assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("retry-after: 1"),
        "{reply}"
    );
    for _ in 0..10 {
        assert!(healthz(server.http_addr).await.ends_with("ok"));
    }
    server.shutdown().await;
}
