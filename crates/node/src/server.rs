//! The HTTP server every role (and the attestation proxy) runs: hyper's HTTP/1.1 connection
//! loop with the limits a public endpoint needs, which `axum::serve` leaves open.
//!
//! - **Connection cap.** At most [`ServerLimits::max_connections`] connections are served at
//!   once; one more is answered `503 too_many_connections` and closed, so a flood of idle
//!   sockets cannot push the node into its file-descriptor limit.
//! - **Header-read timeout.** A connection that does not finish a request head within
//!   [`ServerLimits::header_read_timeout`] is closed. This also ends idle keep-alive
//!   connections and slowloris heads.
//! - **Request timeout.** A request (body read and handler) that takes longer than
//!   [`ServerLimits::request_timeout`] is answered `408 request_timeout`, which also frees a
//!   body stalled half-way.
//! - **Request-line cap.** A request line longer than [`ServerLimits::max_request_line`] is
//!   answered `414 uri_too_long` in the JSON error shape (hyper's own 414 has no body).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::api::ApiError;

/// The limits one server enforces (`[http]` in a node's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// How long a client may take to send a request head (and how long an idle keep-alive
    /// connection stays open), milliseconds.
    pub header_read_timeout_ms: u64,
    /// How long one request may take, body read and handler together, milliseconds.
    pub request_timeout_ms: u64,
    /// Connections served at once; one more gets a 503.
    pub max_connections: usize,
    /// The longest request line (method, path and query, version) taken, bytes.
    pub max_request_line: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_connections: 512,
            max_request_line: 8 * 1024,
        }
    }
}

impl ServerLimits {
    fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` turns true, then lets the
/// requests in flight finish (each is bounded by the request timeout).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let limits = Arc::new(limits);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before accept): back off
                    // instead of spinning, and keep serving the connections already open.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let (app, limits, shutdown) = (app.clone(), limits.clone(), shutdown.clone());
                tokio::spawn(async move {
                    serve_connection(stream, app, &limits, shutdown).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tokio::spawn(refuse(
                    stream,
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too_many_connections",
                        format!("this node serves at most {max} connections at once; retry"),
                    ),
                ));
            }
        }
    }
    // Every connection holds a slot until it ends: wait for them, but not forever.
    let drain = limits.request_timeout() + limits.header_read_timeout();
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(drain, slots.acquire_many(all)).await;
}

/// Why a connection's first request line was not taken.
enum LineError {
    TooLong,
    Closed,
}

/// Reads until the first request line is complete (or too long); everything read is
/// returned, to be replayed to hyper.
async fn read_request_line(stream: &mut TcpStream, max: usize) -> Result<Vec<u8>, LineError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| LineError::Closed)?;
        if n == 0 {
            return Err(LineError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        // Blank lines before a request are allowed (RFC 9112 §2.2): skip them.
        let start = buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(buf.len());
        if let Some(line) = buf[start..].iter().position(|b| *b == b'\n') {
            return if line > max {
                Err(LineError::TooLong)
            } else {
                Ok(buf)
            };
        }
        if buf.len() - start > max {
            return Err(LineError::TooLong);
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    app: Router,
    limits: &ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let head = tokio::time::timeout(
        limits.header_read_timeout(),
        read_request_line(&mut stream, limits.max_request_line),
    )
    .await;
    let prefix = match head {
        Ok(Ok(prefix)) => prefix,
        Ok(Err(LineError::TooLong)) => {
            let e = ApiError::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!(
                    "the request line is longer than {} bytes",
                    limits.max_request_line
                ),
            );
            refuse(stream, e).await;
            return;
        }
        // Closed, or no request line in time: nothing to answer.
        Ok(Err(LineError::Closed)) | Err(_) => return,
    };
    let io = TokioIo::new(Replayed {
        prefix,
        pos: 0,
        inner: stream,
    });
    let request_timeout = limits.request_timeout();
    let max_line = limits.max_request_line;
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move {
            // A later request on a kept-alive connection: the same cap on its target.
            let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
            if target > max_line {
                return Ok(ApiError::new(
                    StatusCode::URI_TOO_LONG,
                    "uri_too_long",
                    format!("the request target is longer than {max_line} bytes"),
                )
                .into_response());
            }
            let answer = tokio::time::timeout(request_timeout, app.oneshot(req.map(Body::new)));
            Ok::<_, Infallible>(match answer.await {
                Ok(Ok(resp)) => resp,
                Ok(Err(never)) => match never {},
                Err(_) => ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the request took longer than {} ms",
                        request_timeout.as_millis()
                    ),
                )
                .into_response(),
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Answers one error on a connection not handed to hyper, then closes it.
async fn refuse(mut stream: TcpStream, e: ApiError) {
    let status = e.status;
    let body = serde_json::to_vec(&hallmark_core::ErrorBody { error: e.error }).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// A stream that yields `prefix` (bytes already read from `inner`) before `inner`'s own.
struct Replayed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.pos);
            let from = self.pos;
            buf.put_slice(&self.prefix[from..from + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
