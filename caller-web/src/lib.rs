//! Browser callers: the caller page (`GET /call`, one static HTML file with its script, no CDN and
//! no build step) and its signalling, WHIP-style (RFC 9725's shape): `POST /call/sessions` with
//! the page's SDP offer (`Content-Type: application/sdp`) answers `201 Created` with the SDP
//! answer and the session's URL in `Location`; `DELETE` on that URL ends the call. ICE is
//! ICE-lite on the server with all candidates in the answer, so there is no trickle (no PATCH).
//! Errors are the API's JSON errors: a malformed offer is a 400 that names the problem and
//! touches no other call.

use call_control::browser::{BrowserCallError, BrowserCalls};
use ivr_web::axum::body::Bytes;
use ivr_web::axum::extract::{Path, State};
use ivr_web::axum::http::{header, HeaderMap, StatusCode};
use ivr_web::axum::response::{Html, IntoResponse, Response};
use ivr_web::axum::routing::{delete, get, post};
use ivr_web::axum::{Json, Router};
use ivr_web::ApiError;

const PAGE: &str = include_str!("../static/call.html");

/// The routes: `/call`, `/call/config`, `/call/sessions`, `/call/sessions/{id}`.
pub fn router(calls: BrowserCalls) -> Router {
    Router::new()
        .route("/call", get(page))
        .route("/call/config", get(config))
        .route("/call/sessions", post(offer))
        .route("/call/sessions/{id}", delete(end))
        .with_state(calls)
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// What the page needs before it calls: the STUN/TURN servers for its RTCPeerConnection.
async fn config(State(calls): State<BrowserCalls>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"iceServers": calls.ice_servers()}))
}

async fn offer(State(calls): State<BrowserCalls>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/sdp") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the offer must be sent as application/sdp, not {content_type:?}")));
    }
    let sdp = std::str::from_utf8(&body).map_err(|e| ApiError::bad_request(format!("the offer is not UTF-8: {e}")))?.to_string();
    if sdp.trim().is_empty() {
        return Err(ApiError::bad_request("the offer is empty"));
    }
    // Binding the socket and making the DTLS certificate are quick but blocking.
    let answered = ivr_web::tokio::task::spawn_blocking(move || calls.offer(&sdp, "browser")).await.map_err(|e| ApiError::internal(format!("the offer was not handled: {e}")))?;
    match answered {
        Ok((id, answer)) => {
            let location = format!("/call/sessions/{id}");
            Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/sdp".to_string()), (header::LOCATION, location)], answer).into_response())
        }
        Err(BrowserCallError::Offer(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e @ BrowserCallError::Stopping) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(e @ (BrowserCallError::Socket(_) | BrowserCallError::Refused(_))) => Err(ApiError::internal(e.to_string())),
    }
}

async fn end(State(calls): State<BrowserCalls>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if calls.hang_up(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no browser call {id}")))
    }
}
