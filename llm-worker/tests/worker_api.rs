//! The LLM worker's OpenAI-compatible API, with the real SmolLM2 model (loopback only).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Worker {
    child: Child,
    addr: String,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Worker {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/data/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ivr-llm"))
        .args(["--model", model.to_str().unwrap(), "--listen", "127.0.0.1:0", "--threads", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).map(|s| s.trim().to_string()).unwrap_or_else(|| panic!("no address: {line}"));
    Worker { child, addr }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

const SYSTEM: &str = "You are the phone assistant of Lumen Home Electronics. Answer in one short sentence.";

fn chat(user: &str, extra: &str) -> String {
    format!(
        r#"{{"messages":[{{"role":"system","content":"{SYSTEM}"}},{{"role":"user","content":"{user}"}}],"max_tokens":24{extra}}}"#
    )
}

#[test]
fn chat_completions_stream_and_reuse_the_system_prompt_cache() {
    let w = start();
    let (status, body) = http(&w.addr, "GET", "/health", "");
    assert_eq!(status, 200, "{body}");

    let (status, body) = http(&w.addr, "POST", "/v1/chat/completions", &chat("Hello!", ""));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(!v["choices"][0]["message"]["content"].as_str().unwrap().is_empty());
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Same system prompt, new question: the prefix comes from the KV cache.
    let (status, body) = http(&w.addr, "POST", "/v1/chat/completions", &chat("What do you sell?", r#","stream":true"#));
    assert_eq!(status, 200);
    let chunks: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|l| *l != "[DONE]")
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(chunks.len() >= 3, "several chunks: {body}");
    assert!(body.trim_end().ends_with("data: [DONE]"));
    let timings = &chunks.last().unwrap()["timings"];
    let cached = timings["cached_tokens"].as_u64().unwrap();
    assert!(cached >= 20, "system prompt reused from the cache: {timings}");
}

#[test]
fn a_grammar_constrains_the_output() {
    let w = start();
    let grammar = r#","grammar":"root ::= \"yes\" | \"no\"""#;
    let (status, body) = http(&w.addr, "POST", "/v1/chat/completions", &chat("Is the sky blue? Answer yes or no.", grammar));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text == "yes" || text == "no", "{text:?}");
}

#[test]
fn bad_requests_get_clear_errors() {
    let w = start();
    let (status, body) = http(&w.addr, "POST", "/v1/chat/completions", "{not json");
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("line 1"), "the problem is named: {body}");
    // Two megabytes announced, as curl sends a large body (waiting for 100 Continue): refused
    // before the body is sent.
    let big = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&w.addr).unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(big.starts_with("HTTP/1.1 413") && big.contains(r#""status":413"#), "{big}");
    assert_eq!(http(&w.addr, "POST", "/v1/chat/completions", r#"{"messages":[]}"#).0, 400);
    assert_eq!(http(&w.addr, "GET", "/nope", "").0, 404);
    assert_eq!(http(&w.addr, "DELETE", "/health", "").0, 405);
    let huge = "x".repeat(20_000);
    let (status, body) = http(&w.addr, "POST", "/v1/chat/completions", &chat(&huge, ""));
    assert!(status == 500 || status == 200, "{status} {body}");
    // Still serving after all that.
    assert_eq!(http(&w.addr, "GET", "/health", "").0, 200);
}
