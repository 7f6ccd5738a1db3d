//! A small HTTP/1.1 front for the engine: `GET /health` and `POST /v1/chat/completions` (streaming
//! as server-sent events when `"stream": true`). Malformed requests get 400 with the reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::engine::{Engine, Event, Message, Request};

const MAX_BODY: usize = 1 << 20;

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

fn respond(w: &mut impl Write, status: &str, body: &serde_json::Value) -> std::io::Result<()> {
    let body = body.to_string();
    write!(w, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn error(w: &mut impl Write, status: &str, message: &str) -> std::io::Result<()> {
    respond(w, status, &serde_json::json!({"error": {"message": message}}))
}

pub fn serve_connection(stream: TcpStream, engine: &Engine) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (method, path) = match parts.as_slice() {
        [m, p, v] if v.starts_with("HTTP/1.") => (m.to_string(), p.to_string()),
        _ => return error(&mut w, "400 Bad Request", "malformed request line"),
    };
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = match v.trim().parse() {
                    Ok(n) => n,
                    Err(_) => return error(&mut w, "400 Bad Request", "bad Content-Length"),
                };
            }
        }
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/health") => respond(&mut w, "200 OK", &serde_json::json!({"status": "ok", "model": engine.model_name})),
        ("GET", "/v1/models") => respond(&mut w, "200 OK", &serde_json::json!({"object": "list", "data": [{"id": engine.model_name, "object": "model"}]})),
        ("POST", "/v1/chat/completions") => {
            if length > MAX_BODY {
                return error(&mut w, "413 Payload Too Large", "request body over 1 MiB");
            }
            let mut body = vec![0u8; length];
            r.read_exact(&mut body)?;
            let req: ChatRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(&mut w, "400 Bad Request", &format!("bad JSON: {e}")),
            };
            if req.messages.is_empty() {
                return error(&mut w, "400 Bad Request", "messages is empty");
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
            if req.stream {
                stream_events(&mut w, events, &engine.model_name)
            } else {
                let mut text = String::new();
                for e in events {
                    match e {
                        Event::Token(t) => text.push_str(&t),
                        Event::Done(stats) => {
                            return respond(&mut w, "200 OK", &serde_json::json!({
                                "object": "chat.completion", "model": engine.model_name,
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": stats.finish_reason}],
                                "usage": {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
                                          "prompt_tokens_details": {"cached_tokens": stats.cached_tokens}},
                                "timings": stats,
                            }));
                        }
                        Event::Error(m) => return error(&mut w, "500 Internal Server Error", &m),
                    }
                }
                error(&mut w, "500 Internal Server Error", "generation ended without a result")
            }
        }
        (_, "/health" | "/v1/chat/completions" | "/v1/models") => error(&mut w, "405 Method Not Allowed", "method not allowed"),
        _ => error(&mut w, "404 Not Found", "no such endpoint"),
    }
}

fn stream_events(w: &mut impl Write, events: std::sync::mpsc::Receiver<Event>, model: &str) -> std::io::Result<()> {
    write!(w, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")?;
    w.flush()?;
    for e in events {
        let chunk = match e {
            Event::Token(t) => serde_json::json!({"object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]}),
            Event::Done(stats) => serde_json::json!({"object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": stats.finish_reason}], "timings": stats}),
            Event::Error(m) => serde_json::json!({"error": {"message": m}}),
        };
        let end = !chunk["choices"][0]["finish_reason"].is_null() || chunk.get("error").is_some();
        // A caller that hung up stops the stream; the engine notices on its next send.
        write!(w, "data: {chunk}\n\n")?;
        w.flush()?;
        if end {
            break;
        }
    }
    write!(w, "data: [DONE]\n\n")?;
    w.flush()
}
