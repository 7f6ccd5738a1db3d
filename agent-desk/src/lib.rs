//! The agents' console at `/agent`, served by `ivr serve`: one HTML page with its script inline (no
//! CDN, no build step) over a small JSON API. An agent signs in (argon2id passwords from the
//! store), sets their status, watches the queue and the other agents live (server-sent events),
//! sees the call they are offered with its summary and transcript and accepts or declines it
//! (as keys 1 and 2 on the phone do), and works through callbacks and voicemails.
//!
//! Security: the session is an HttpOnly, SameSite=Strict cookie holding a random token (the store
//! keeps its SHA-256 only); every state change must echo the session's CSRF token in
//! `X-CSRF-Token` (403 otherwise); five failed sign-ins a minute per name, then 429.

mod auth;

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_control::acd::Status;
use call_control::browser::{BrowserCallError, BrowserCalls};
use call_control::desk::Desk;
use ivr_web::axum::extract::rejection::QueryRejection;
use ivr_web::axum::extract::{Path, Query, State};
use ivr_web::axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use ivr_web::axum::response::{Html, IntoResponse, Response};
use ivr_web::axum::body::Bytes;
use ivr_web::axum::routing::{get, post};
use ivr_web::axum::{Json, Router};
use ivr_web::{ApiError, JsonBody};

pub use auth::{supervisor, Signed, CSRF_HEADER, MAX_FAILURES};
use auth::{Changing, Limiter};

/// What the console works with.
pub struct Console {
    pub store: ivr_store::Store,
    /// The live queue (none when the server has no `[sip.queue]`).
    pub desk: Option<Arc<Desk>>,
    /// Answers the browser's offer when an agent takes calls in the console.
    pub browser: Option<BrowserCalls>,
    limiter: Limiter,
    session_ttl: Duration,
}

impl Console {
    pub fn new(store: ivr_store::Store, desk: Option<Arc<Desk>>, browser: Option<BrowserCalls>, session_ttl: Duration) -> Arc<Self> {
        Arc::new(Self { store, desk, browser, limiter: Limiter::default(), session_ttl })
    }
}

const PAGE: &str = include_str!("../static/agent.html");

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/agent", get(|| async { Html(PAGE) }))
        .route("/agent/api/login", post(login))
        .route("/agent/api/logout", post(logout))
        .route("/agent/api/me", get(me))
        .route("/agent/api/status", post(set_status))
        .route("/agent/api/board", get(board))
        .route("/agent/api/events", get(events))
        .route("/agent/api/calls/{id}/accept", post(accept))
        .route("/agent/api/calls/{id}/decline", post(decline))
        .route("/agent/api/calls/{id}/transfer", post(transfer))
        .route("/agent/api/device", post(set_device))
        .route("/agent/api/calls/{id}/media", post(answer_in_browser).delete(hang_up_in_browser))
        .route("/agent/api/follow-ups", get(follow_ups))
        .route("/agent/api/follow-ups/{id}/done", post(follow_up_done))
        .route("/agent/api/follow-ups/{id}/audio", get(follow_up_audio))
        .route("/agent/api/audit", get(audit_log))
        .with_state(console)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    name: String,
    password: String,
}

/// `POST /agent/api/login {"name", "password"}`: a session cookie and the CSRF token.
async fn login(State(c): State<Arc<Console>>, JsonBody(creds): JsonBody<Credentials>) -> Result<Response, ApiError> {
    let now = Instant::now();
    if let Some(wait) = c.limiter.blocked(&creds.name, now) {
        let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("too many failed sign-ins for {:?}; try again in {} s", creds.name, wait.as_secs().max(1))).into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return Ok(r);
    }
    let Some(agent) = c.store.check_password(&creds.name, &creds.password).await.map_err(internal)? else {
        c.limiter.failed(&creds.name, now);
        tracing::warn!(name = %creds.name, "failed sign-in to the agents' console");
        // The name as typed, cut short: it is what an auditor needs, and not a place to store a book.
        let name: String = creds.name.chars().take(64).collect();
        audit(&c, &name, "sign_in_failed", None, None).await?;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong name or password"));
    };
    c.limiter.succeeded(&creds.name);
    let (token, csrf) = (auth::random_hex(32)?, auth::random_hex(16)?);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(c.session_ttl.as_secs() as i64);
    let session = ivr_store::Session { agent: agent.name.clone(), csrf: csrf.clone(), expires_at: expires.to_string() };
    c.store.create_session(&auth::hash_token(&token), &session, &jiff::Timestamp::now().to_string()).await.map_err(internal)?;
    tracing::info!(agent = %agent.name, "signed in to the agents' console");
    audit(&c, &agent.name, "sign_in", None, None).await?;
    let mut r = Json(serde_json::json!({"agent": agent, "csrf": csrf})).into_response();
    let cookie = HeaderValue::from_str(&auth::session_cookie(&token, c.session_ttl)).map_err(internal)?;
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

async fn logout(State(c): State<Arc<Console>>, Changing(s): Changing) -> Result<Response, ApiError> {
    c.store.end_session(&s.token_hash).await.map_err(internal)?;
    audit(&c, &s.agent, "sign_out", None, None).await?;
    let mut r = Json(serde_json::json!({"signed_out": s.agent})).into_response();
    let cookie = HeaderValue::from_str(&auth::session_cookie("", Duration::ZERO)).map_err(internal)?;
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `GET /agent/api/me`: the agent and the session's CSRF token (after a reload of the page).
async fn me(State(c): State<Arc<Console>>, s: Signed) -> Result<Json<serde_json::Value>, ApiError> {
    let agent = c.store.agent(&s.agent).await.map_err(internal)?.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "no such agent any more"))?;
    let device = if c.desk.as_ref().is_some_and(|d| d.in_browser(&s.agent)) { "browser" } else { "phone" };
    Ok(Json(serde_json::json!({"agent": agent, "csrf": s.csrf, "device": device})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Device {
    device: String,
}

/// `POST /agent/api/device {"device": "browser" | "phone"}`: where the agent takes calls. In the
/// browser, an offered call rings in the console; the agent answers it there (the console sends
/// its WebRTC offer to `/agent/api/calls/{id}/media`), hears the summary and accepts.
async fn set_device(State(c): State<Arc<Console>>, Changing(s): Changing, JsonBody(b): JsonBody<Device>) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = c.desk.as_ref().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server has no queue"))?;
    let in_browser = match b.device.as_str() {
        "browser" if c.browser.is_some() => true,
        "browser" => return Err(ApiError::new(StatusCode::CONFLICT, "this server takes no browser calls")),
        "phone" => false,
        other => return Err(ApiError::bad_request(format!("unknown device {other:?}: \"browser\" or \"phone\""))),
    };
    desk.set_browser(&s.agent, in_browser);
    tracing::info!(agent = %s.agent, device = %b.device, "agent's device");
    Ok(Json(serde_json::json!({"agent": s.agent, "device": b.device})))
}

/// `POST /agent/api/calls/{id}/media` with the console's SDP offer (`application/sdp`): the agent
/// answers, in the browser, the call ringing there; the SDP answer comes back (201).
async fn answer_in_browser(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let desk = c.desk.clone().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server has no queue"))?;
    let browser = c.browser.clone().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server takes no browser calls"))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/sdp") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the offer must be sent as application/sdp, not {content_type:?}")));
    }
    let sdp = String::from_utf8(body.to_vec()).map_err(|e| ApiError::bad_request(format!("the offer is not UTF-8: {e}")))?;
    let agent = s.agent.clone();
    let answered = ivr_web::tokio::task::spawn_blocking(move || {
        let (media, answer) = browser.accept(&sdp)?;
        desk.answer_in_browser(&agent, &id, media).map_err(|why| BrowserCallError::Refused(why.to_string()))?;
        Ok::<_, BrowserCallError>(answer)
    })
    .await
    .map_err(internal)?;
    match answered {
        Ok(answer) => Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/sdp")], answer).into_response()),
        Err(BrowserCallError::Offer(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(BrowserCallError::Refused(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(e) => Err(internal(e)),
    }
}

/// `DELETE /agent/api/calls/{id}/media`: the agent hangs up in the browser (before accepting, a
/// decline; on the call, the end of the agent's part).
async fn hang_up_in_browser(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let desk = c.desk.as_ref().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server has no queue"))?;
    if desk.hang_up_browser(&s.agent, &id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no browser call {id} for {}", s.agent)))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStatus {
    status: String,
}

/// `POST /agent/api/status {"status": "available" | "on_break" | "signed_out"}`.
async fn set_status(State(c): State<Arc<Console>>, Changing(s): Changing, JsonBody(b): JsonBody<NewStatus>) -> Result<Json<serde_json::Value>, ApiError> {
    let status = match b.status.as_str() {
        "available" => Status::Available,
        "on_break" => Status::OnBreak,
        "signed_out" => Status::SignedOut,
        other => return Err(ApiError::bad_request(format!("status {other:?}: available, on_break or signed_out"))),
    };
    if !c.store.set_agent_status(&s.agent, &b.status).await.map_err(internal)? {
        return Err(ApiError::not_found(format!("no agent {:?}", s.agent)));
    }
    if let Some(d) = &c.desk {
        d.set_status(&s.agent, status);
    }
    Ok(Json(serde_json::json!({"agent": s.agent, "status": b.status})))
}

/// What one agent's console shows: the agents, the waiting callers, and the call offered to them
/// (or the one they are on).
async fn board_of(c: &Console, agent: &str) -> Result<serde_json::Value, ApiError> {
    let Some(desk) = &c.desk else {
        return Ok(serde_json::json!({"queue": false, "agents": [], "waiting": [], "offered": null}));
    };
    let (agents, waiting) = desk.lines();
    let offered = match desk.call_of(agent) {
        Some((o, on_call)) => {
            let record = c.store.call(&o.call).await.map_err(internal)?;
            let transcript: Vec<serde_json::Value> =
                record.map(|r| r.turns.iter().map(|t| serde_json::json!({"who": t.speaker, "text": t.text})).collect()).unwrap_or_default();
            serde_json::json!({"call": o.call, "number": o.number, "summary": o.summary, "reason": o.reason, "answered": o.answered, "on_call": on_call, "transcript": transcript})
        }
        None => serde_json::Value::Null,
    };
    Ok(serde_json::json!({"queue": true, "agents": agents, "waiting": waiting, "offered": offered}))
}

async fn board(State(c): State<Arc<Console>>, s: Signed) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(board_of(&c, &s.agent).await?))
}

/// `GET /agent/api/events`: the board as server-sent events, once a second (the browser's
/// EventSource reconnects by itself if the connection drops).
async fn events(State(c): State<Arc<Console>>, s: Signed) -> impl IntoResponse {
    use ivr_web::axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures_util::stream::unfold((c, s.agent, true), |(c, agent, first)| async move {
        if !first {
            ivr_web::tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let data = match board_of(&c, &agent).await {
            Ok(b) => b.to_string(),
            Err(e) => serde_json::json!({"error": e.message}).to_string(),
        };
        Some((Ok::<_, std::convert::Infallible>(Event::default().event("board").data(data)), (c, agent, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Adds a line to the audit log. A request whose action cannot be logged fails (500): a regulated
/// company must be able to account for every access.
async fn audit(c: &Console, actor: &str, action: &str, target: Option<&str>, detail: Option<serde_json::Value>) -> Result<(), ApiError> {
    c.store.audit(&ivr_store::AuditLine::now(actor, action, target, detail)).await.map_err(internal)
}

/// `GET /agent/api/audit?limit=N`: the latest lines of the audit log, newest first; supervisors only.
async fn audit_log(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::supervisor(&c.store, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
    Ok(Json(serde_json::json!({"audit": c.store.audit_log(limit).await.map_err(internal)?})))
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn decide(c: &Console, agent: &str, call: &str, accept: bool) -> Result<Json<serde_json::Value>, ApiError> {
    let desk = c.desk.as_ref().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server has no queue"))?;
    desk.decide(agent, call, accept).map_err(|why| ApiError::new(StatusCode::CONFLICT, why))?;
    audit(c, agent, if accept { "accept" } else { "decline" }, Some(call), None).await?;
    Ok(Json(serde_json::json!({"call": call, "accepted": accept})))
}

async fn accept(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    decide(&c, &s.agent, &id, true).await
}

async fn decline(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    decide(&c, &s.agent, &id, false).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferTo {
    agent: String,
}

/// `POST /agent/api/calls/{id}/transfer {"agent": "bob"}`: the agent on the call passes it to an
/// available colleague (the caller waits on hold; the colleague hears the summary and accepts).
/// An unknown agent is 404; not on this call or the colleague not free, 409; nothing changes.
async fn transfer(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>, JsonBody(b): JsonBody<TransferTo>) -> Result<Json<serde_json::Value>, ApiError> {
    use call_control::acd::TransferError as E;
    let desk = c.desk.as_ref().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server has no queue"))?;
    desk.transfer(&s.agent, &id, &b.agent).map_err(|e| {
        let status = match e {
            E::UnknownAgent => StatusCode::NOT_FOUND,
            E::SameAgent => StatusCode::BAD_REQUEST,
            E::NotYourCall | E::Unavailable => StatusCode::CONFLICT,
        };
        ApiError::new(status, format!("cannot transfer to {:?}: {e}", b.agent))
    })?;
    audit(&c, &s.agent, "transfer", Some(&id), Some(serde_json::json!({"to": b.agent}))).await?;
    Ok(Json(serde_json::json!({"call": id, "transferred_to": b.agent})))
}

/// `GET /agent/api/follow-ups`: callbacks and voicemails, open ones first.
async fn follow_ups(State(c): State<Arc<Console>>, _s: Signed) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::json!({"follow_ups": c.store.follow_ups().await.map_err(internal)?})))
}

async fn follow_up_done(State(c): State<Arc<Console>>, Changing(s): Changing, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    if c.store.finish_follow_up(&id, &s.agent, &jiff::Timestamp::now().to_string()).await.map_err(internal)? {
        audit(&c, &s.agent, "follow_up_done", Some(&id), None).await?;
        Ok(Json(serde_json::json!({"id": id, "status": "done", "done_by": s.agent})))
    } else {
        Err(ApiError::not_found(format!("no open follow-up {id:?}")))
    }
}

/// `GET /agent/api/follow-ups/{id}/audio`: a voicemail's recording (WAV).
async fn follow_up_audio(State(c): State<Arc<Console>>, s: Signed, Path(id): Path<String>) -> Result<Response, ApiError> {
    let f = c.store.follow_up(&id).await.map_err(internal)?.ok_or_else(|| ApiError::not_found(format!("no follow-up {id:?}")))?;
    let path = f.audio.ok_or_else(|| ApiError::not_found(format!("follow-up {id:?} has no recording")))?;
    let bytes = ivr_web::tokio::fs::read(&path).await.map_err(|e| ApiError::not_found(format!("the recording of {id:?} cannot be read: {e}")))?;
    // Listening is logged before a byte is sent: a recording nobody can account for is not served.
    audit(&c, &s.agent, "listen", Some(&id), Some(serde_json::json!({"kind": f.kind}))).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok((headers, bytes).into_response())
}
