//! The worker's HTTP API on the project's web stack (`ivr-web`): `GET /health`, `GET /v1/models`
//! and `POST /v1/chat/completions` (streamed as server-sent events when `"stream": true`). Errors
//! are JSON naming the problem; the engine runs on its own thread, so no request blocks the runtime.

use std::convert::Infallible;
use std::sync::Arc;

use ivr_web::axum::extract::State;
use ivr_web::axum::response::sse::{Event as SseEvent, Sse};
use ivr_web::axum::response::{IntoResponse, Response};
use ivr_web::axum::routing::{get, post};
use ivr_web::axum::{Json, Router};
use ivr_web::{ApiError, JsonBody};

use crate::engine::{Engine, Event, Message, Request};

#[derive(serde::Deserialize)]
struct ChatRequest {
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    grammar: Option<String>,
    #[serde(default)]
    stop: Option<serde_json::Value>,
}

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .with_state(engine)
}

async fn health(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "model": engine.model_name}))
}

async fn models(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"object": "list", "data": [{"id": engine.model_name, "object": "model"}]}))
}

async fn chat(State(engine): State<Arc<Engine>>, JsonBody(req): JsonBody<ChatRequest>) -> Result<Response, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad_request("messages is empty"));
    }
    let stop = match req.stop {
        Some(serde_json::Value::String(s)) => vec![s],
        Some(serde_json::Value::Array(a)) => a.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let request = Request {
        messages: req.messages,
        max_tokens: req.max_tokens.unwrap_or(128).clamp(1, 1024),
        temperature: req.temperature.unwrap_or(0.0).clamp(0.0, 2.0),
        grammar: req.grammar,
        stop,
    };
    let events = engine.submit(request);
    let model = engine.model_name.clone();
    if req.stream {
        return Ok(stream(events, model).into_response());
    }
    // The engine's channel blocks: wait for it on a blocking thread.
    let answer = ivr_web::tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for e in events {
            match e {
                Event::Token(t) => text.push_str(&t),
                Event::Done(stats) => {
                    return Ok(serde_json::json!({
                        "object": "chat.completion", "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": stats.finish_reason}],
                        "usage": {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                                  "prompt_tokens_details": {"cached_tokens": stats.cached_tokens}},
                        "timings": stats,
                    }));
                }
                Event::Error(m) => return Err(ApiError::internal(m)),
            }
        }
        Err(ApiError::internal("generation ended without a result"))
    })
    .await
    .map_err(|e| ApiError::internal(format!("generation failed: {e}")))??;
    Ok(Json(answer).into_response())
}

/// Tokens as OpenAI-style chunks, then `[DONE]`. A client that goes away closes the channel, and
/// the engine stops generating at its next token.
fn stream(events: std::sync::mpsc::Receiver<Event>, model: String) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let (tx, rx) = ivr_web::tokio::sync::mpsc::channel::<SseEvent>(64);
    ivr_web::tokio::task::spawn_blocking(move || {
        for e in events {
            let chunk = match e {
                Event::Token(t) => serde_json::json!({"object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}),
                Event::Done(stats) => serde_json::json!({"object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": stats.finish_reason}], "timings": stats}),
                Event::Error(m) => serde_json::json!({"error": {"message": m}}),
            };
            let end = !chunk["choices"][0]["finish_reason"].is_null() || chunk.get("error").is_some();
            if tx.blocking_send(SseEvent::default().data(chunk.to_string())).is_err() {
                return;
            }
            if end {
                break;
            }
        }
        let _ = tx.blocking_send(SseEvent::default().data("[DONE]"));
    });
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(events)
}
