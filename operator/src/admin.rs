//! The admin HTTP server: `/metrics` (Prometheus), `/healthz` (the process is alive and its workers make
//! progress), `/readyz` (every watch has delivered its first list).
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::controller::kit::Liveness;
use crate::metrics::Metrics;

/// Readiness: set once every watched kind has been listed.
#[derive(Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// What `/healthz` and `/readyz` answer from.
#[derive(Clone)]
pub struct Health {
    pub readiness: Arc<Readiness>,
    pub liveness: Arc<Liveness>,
    /// `/healthz` fails when a controller has had work and finished nothing for this long.
    pub wedged_after: std::time::Duration,
}

/// Serves the admin endpoints on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Health, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, metrics.clone(), health.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the admin address (`:8080` style addresses bind all interfaces).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    TcpListener::bind(addr).await
}

async fn handle(
    req: Request<Incoming>,
    metrics: Arc<Metrics>,
    health: Health,
) -> Result<Response<UnsyncBoxBody<Bytes, Infallible>>, Infallible> {
    let wedged = || health.liveness.wedged(std::time::Instant::now(), health.wedged_after);
    let (status, content_type, body) = match req.uri().path() {
        // Streamed: the per-object series are rendered chunk by chunk as the scraper reads them.
        "/metrics" => match Metrics::exposition(metrics) {
            Ok(chunks) => {
                let frames = futures::stream::iter(chunks).map(|c| Ok(Frame::data(Bytes::from(c))));
                let body = StreamBody::new(frames).boxed_unsync();
                return Ok(with_content_type(Response::new(body), "text/plain; version=0.0.4"));
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", e.to_string()),
        },
        "/healthz" | "/livez" => match wedged() {
            None => (StatusCode::OK, "text/plain", "ok".to_string()),
            Some(c) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!(
                    "the {c} workers finished no reconcile for {}s while work waited",
                    health.wedged_after.as_secs()
                ),
            ),
        },
        "/readyz" if health.readiness.is_ready() => (StatusCode::OK, "text/plain", "ok".to_string()),
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "waiting for the first list of every watch".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *resp.status_mut() = status;
    Ok(with_content_type(resp, content_type))
}

fn with_content_type<B>(mut resp: Response<B>, content_type: &'static str) -> Response<B> {
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp
}
