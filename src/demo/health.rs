//! The demo's health endpoint: `GET /health` on 127.0.0.1 and an ephemeral port.
//!
//! It answers `200 {"status":"healthy"}` after 8–40 ms normally, `503 {"status":"unhealthy",
//! "reason":"database connection pool exhausted"}` after 250–700 ms during an incident, and
//! 200 again but slower (80–250 ms) while recovering.

use super::Counters;
use super::incident::{Phase, Script};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::RngExt;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// Binds the loopback address on a port the system picks.
pub(crate) async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Serves until the returned task is aborted; aborting it also ends open connections.
pub(crate) fn spawn(
    listener: TcpListener,
    script: Script,
    counters: Arc<Counters>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let counters = counters.clone();
                    let service = service_fn(move |request| respond(request, script, counters.clone()));
                    connections.spawn(async move {
                        // A client that hangs up mid-request is its own problem.
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

fn json(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn respond(
    request: Request<Incoming>,
    script: Script,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/health" {
        return Ok(json(StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"detail":"Method Not Allowed"}"#,
        ));
    }
    counters.health_request();
    let phase = script.now();
    let delay_ms = {
        let mut rng = rand::rng();
        match phase {
            Phase::Normal { .. } => rng.random_range(8..40),
            Phase::Incident { .. } => rng.random_range(250..700),
            Phase::Recovery { .. } => rng.random_range(80..250),
        }
    };
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    // The phase may have changed while we slept; answer for now, as a real server would.
    Ok(if script.now().is_incident() {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"unhealthy","reason":"database connection pool exhausted"}"#,
        )
    } else {
        json(StatusCode::OK, r#"{"status":"healthy"}"#)
    })
}
