//! Issue 19, hole 2: the limits every node's HTTP server holds against slow and heavy
//! connections, tried over raw TCP against a real ledger node: idle and slowloris
//! connections are closed, a stalled body is answered 408, a connection past the cap is
//! answered 503, and a long request line is a 414 in the JSON error shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cfg;
use hallmark_node::config::RoleName;
use hallmark_node::run::run_node;
use hallmark_node::server::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP response read off a raw connection: the status and the JSON body (Null if none).
async fn read_response(s: &mut TcpStream, patience: Duration) -> Option<(u16, serde_json::Value)> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(serde_json::Value::Null);
        Some((status, body))
    };
    tokio::time::timeout(patience, read).await.ok().flatten()
}

/// Whether the server closes `s` within `patience` (EOF or reset).
async fn closed_within(s: &mut TcpStream, patience: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_oversized_connections_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path(), "ledger");
    c.http = ServerLimits {
        header_read_timeout_ms: 1_000,
        request_timeout_ms: 1_500,
        max_connections: 8,
        max_request_line: 8 * 1024,
    };
    let node = run_node(RoleName::Ledger, &c).await.unwrap();
    let addr = node.addr;
    let patience = Duration::from_secs(5);

    // An idle connection is closed once the header-read timeout passes.
    let mut idle = connect(addr).await;
    assert!(
        closed_within(&mut idle, patience).await,
        "idle connection lived on"
    );

    // A slowloris head (a header line every 300 ms, never finished) is closed too.
    let mut slow = connect(addr).await;
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow.write_all(b"x-slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "slowloris connection lived past {patience:?}");

    // A body that stalls half-way: 408 in the JSON shape, then the connection is closed.
    let mut stalled = connect(addr).await;
    stalled
        .write_all(
            b"POST /v1/ledger/tx HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"payloadType\":",
        )
        .await
        .unwrap();
    let (status, body) = read_response(&mut stalled, patience)
        .await
        .expect("a stalled body gets an answer");
    assert_eq!((status, code(&body)), (408, "request_timeout"), "{body}");

    // A long request line on a fresh connection: 414 with a JSON body (hyper's own has none),
    // also past hyper's 64 KB limit.
    for len in [10_000, 100_000] {
        let mut long = connect(addr).await;
        let req = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(len));
        let _ = long.write_all(req.as_bytes()).await;
        let (status, body) = read_response(&mut long, patience).await.expect("414");
        assert_eq!(
            (status, code(&body)),
            (414, "uri_too_long"),
            "{len}: {body}"
        );
    }
    // ... and on a kept-alive connection after a good request.
    let mut kept = connect(addr).await;
    kept.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut kept, patience).await.unwrap().0, 200);
    let req = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "b".repeat(20_000));
    kept.write_all(req.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut kept, patience).await.expect("414");
    assert_eq!((status, code(&body)), (414, "uri_too_long"), "{body}");

    // The connection cap: eight open connections fill it, the ninth gets a 503 at once ...
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect(addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = connect(addr).await;
    extra
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut extra, patience).await.expect("503");
    assert_eq!(
        (status, code(&body)),
        (503, "too_many_connections"),
        "{body}"
    );
    // ... and once the idle ones time out, health answers again.
    for mut h in held {
        assert!(closed_within(&mut h, patience).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health: serde_json::Value = reqwest::get(format!("{}/v1/health", node.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    node.stop().await;
}
