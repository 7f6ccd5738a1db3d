//! Client for OpenAI-compatible chat-completions servers: the embedded `ivr-llm` worker, or a
//! company's own vLLM, Ollama or llama-server (`[llm] backend = "openai"`, HTTP or HTTPS). Tokens
//! are streamed (server-sent events) to a callback as they arrive, so speech can start on the first
//! clause.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::http::{Endpoint, HttpError};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("LLM server: {0}")]
    Http(#[from] HttpError),
    #[error("LLM server error: {0}")]
    Server(String),
    #[error("LLM connection failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// A finished completion with its timing, measured on the client side.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Completion {
    pub text: String,
    pub first_token_ms: Option<f64>,
    /// Time until the text held its first sentence end.
    pub first_sentence_ms: Option<f64>,
    pub total_ms: f64,
    pub tokens: usize,
    /// What the server reported (ivr-llm: prompt_tokens, cached_tokens, ...).
    pub server_timings: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct LlmClient {
    endpoint: Endpoint,
    pub model: String,
}

/// Options of one request.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub max_tokens: usize,
    pub grammar: Option<String>,
    pub stop: Vec<String>,
}

impl LlmClient {
    /// `base_url` like `http://127.0.0.1:8091` or `https://llm.example.com/v1`.
    pub fn new(base_url: &str, model: &str) -> Result<Self, LlmError> {
        Self::with_ca(base_url, model, None)
    }

    /// As `new`, trusting the certificate authority in `ca_file` (PEM) besides the usual roots.
    pub fn with_ca(base_url: &str, model: &str, ca_file: Option<&Path>) -> Result<Self, LlmError> {
        let mut endpoint = Endpoint::new(base_url, ca_file, Duration::from_secs(30))?;
        // The API's paths start with /v1, which some base URLs already end with.
        let path = endpoint.path().trim_end_matches('/').trim_end_matches("/v1").to_string();
        endpoint.set_base_path(&path);
        Ok(Self { endpoint, model: model.to_string() })
    }

    /// Whether the server answers its health check.
    pub fn healthy(&self) -> bool {
        self.endpoint.get_status("/health").is_ok_and(|s| s == 200)
    }

    /// Streams a chat completion, calling `on_token` with each piece of text.
    pub fn chat(&self, messages: &[ChatMessage], opts: &Options, mut on_token: impl FnMut(&str)) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let mut body = serde_json::json!({
            "model": self.model, "messages": messages, "stream": true,
            "max_tokens": opts.max_tokens.max(1), "temperature": 0.0,
        });
        if let Some(g) = &opts.grammar {
            body["grammar"] = serde_json::Value::String(g.clone());
        }
        if !opts.stop.is_empty() {
            body["stop"] = serde_json::json!(opts.stop);
        }
        let mut r = BufReader::new(self.endpoint.post_stream("/v1/chat/completions", &body)?);
        let mut out = Completion::default();
        let mut line = String::new();
        while r.read_line(&mut line)? > 0 {
            let data = line.trim().strip_prefix("data:").map(str::trim).map(str::to_string);
            line.clear();
            let Some(data) = data else { continue };
            if data == "[DONE]" {
                break;
            }
            let v: serde_json::Value = serde_json::from_str(&data).map_err(|e| LlmError::Server(format!("bad event {data:?}: {e}")))?;
            if let Some(err) = v.get("error") {
                return Err(LlmError::Server(err.to_string()));
            }
            if let Some(piece) = v["choices"][0]["delta"]["content"].as_str().filter(|p| !p.is_empty()) {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                out.first_token_ms.get_or_insert(ms);
                out.tokens += 1;
                out.text.push_str(piece);
                if out.first_sentence_ms.is_none() && out.text.trim_end().ends_with(['.', '!', '?', '。', '！', '？']) {
                    out.first_sentence_ms = Some(ms);
                }
                on_token(piece);
            }
            if let Some(t) = v.get("timings") {
                out.server_timings = t.clone();
            }
        }
        out.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let c = LlmClient::new("http://127.0.0.1:8091", "m").unwrap();
        assert_eq!(c.endpoint.base(), "http://127.0.0.1:8091");
        let c = LlmClient::new("http://ollama:11434/v1", "m").unwrap();
        assert_eq!(c.endpoint.base(), "http://ollama:11434");
        let c = LlmClient::new("http://gw:80/llm/v1/", "m").unwrap();
        assert_eq!(c.endpoint.base(), "http://gw/llm");
        assert_eq!(LlmClient::new("https://x", "m").unwrap().endpoint.base(), "https://x");
        assert!(LlmClient::new("http://", "m").is_err());
        assert!(LlmClient::new("ftp://x", "m").is_err());
    }

    #[test]
    fn an_unreachable_server_is_an_error_naming_it() {
        let c = LlmClient::new("http://127.0.0.1:9", "m").unwrap();
        assert!(!c.healthy());
        let e = c.chat(&[ChatMessage::new("user", "hi")], &Options::default(), |_| {}).unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    }
}
