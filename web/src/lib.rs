//! The project's one HTTP stack: axum routers served by hyper on tokio, with the limits a server
//! facing a network needs. `ivr serve` (health, metrics, the API) and `ivr-llm` (the OpenAI-style
//! chat API) both build their routers and hand them to [`serve`].
//!
//! What every server gets here:
//! - errors as JSON that name the problem (`{"error": {"message": ..., "status": ...}}`), also for
//!   an unknown path (404), a wrong method (405), a malformed or oversize body (400 / 413 through
//!   [`JsonBody`]) and a handler that takes too long (408);
//! - a request body limit and a per-request timeout ([`Limits`]);
//! - a header read timeout, so a client sending one byte a second is cut off without holding a
//!   task for ever;
//! - graceful shutdown: on the shutdown signal the listener closes, requests in flight finish
//!   (up to a grace period), idle connections close.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

pub use axum;
pub use prometheus;
pub use tokio;

/// How much a client may send and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body; more is refused with 413.
    pub max_body_bytes: usize,
    /// Longest a request may take to be answered (headers of the response); more is 408.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers; then the connection is closed.
    pub header_timeout: Duration,
    /// On shutdown, how long requests in flight may go on.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
        }
    }
}

/// An error answer: a status and a message that says what was wrong.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"message": self.message, "status": self.status.as_u16()}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON request body whose rejections are [`ApiError`]s: malformed JSON is a 400 naming the
/// problem (with line and column), a body over the limit a 413, a missing content type a 415.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// The Prometheus text exposition of every metric registered in the default registry (each crate
/// registers its own there).
pub async fn metrics() -> Response {
    use prometheus::Encoder;
    let encoder = prometheus::TextEncoder::new();
    let mut out = Vec::new();
    match encoder.encode(&prometheus::gather(), &mut out) {
        Ok(()) => ([(axum::http::header::CONTENT_TYPE, encoder.format_type().to_string())], out).into_response(),
        Err(e) => ApiError::internal(format!("metrics: {e}")).into_response(),
    }
}

/// `router` with the shared behaviour: JSON 404 and 405, the body limit and the request timeout.
pub fn finish(router: Router, limits: &Limits) -> Router {
    router
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        // A declared Content-Length over the limit is refused before a byte of the body is read
        // (a client that waits for `100 Continue` gets the 413 instead of sending megabytes).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(axum::middleware::map_response(plain_errors_as_json))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
}

/// The timeout and body-limit layers answer 408 and 413 in plain text; give them the JSON every
/// other error has.
async fn plain_errors_as_json(response: Response) -> Response {
    let json = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    match response.status() {
        StatusCode::REQUEST_TIMEOUT if !json => ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response(),
        StatusCode::PAYLOAD_TOO_LARGE if !json => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the request body is larger than the limit").into_response(),
        _ => response,
    }
}

/// Binds `addr` (an error names it).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {addr}: {e}")))
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish for
/// up to `limits.grace`. Each connection is HTTP/1.1 with a header read timeout.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, limits: Limits, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "http connection: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("http: requests still in flight after the grace period; closing them");
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
