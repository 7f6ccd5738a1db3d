//! `ivr ask` and `ivr chat`: the dialogue manager from the command line.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

#[test]
fn ask_prints_intent_confidence_reply_action_and_latency() {
    let v = last_json(&ivr_ok(&["ask", "--json", "How long does standard delivery take?"]));
    assert_eq!(v["intent"], "delivery.standard");
    assert!(v["confidence"].as_f64().unwrap() > 0.5);
    assert!(v["reply"].as_str().unwrap().contains("3 to 5 business days"));
    assert!(v["action"].is_null());
    assert!(v["latency_ms"].as_f64().unwrap() > 0.0);

    let v = last_json(&ivr_ok(&["ask", "--json", "I want to talk to a person"]));
    assert_eq!(v["action"]["action"], "transfer");
    assert_eq!(v["action"]["reason"], "caller_request");
    let screen = v["action"]["summary"]["screen"].as_str().unwrap();
    assert!(screen.split_whitespace().count() <= 60, "{screen}");

    let v = last_json(&ivr_ok(&["ask", "--json", "--caller", "+4930111444", "How many reward points do I have?"]));
    assert!(v["reply"].as_str().unwrap().contains("5300"), "caller ID verifies: {v}");
}

#[test]
fn chat_runs_a_whole_call_with_keypad_input() {
    let mut child = ivr().args(["chat", "--json"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"where is my order\n/dtmf 45678901#\n/dtmf 60311#\n\xff\xfe not utf-8\nthanks, goodbye\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["reply"].as_str().unwrap().contains("was cancelled")), "{lines:?}");
    assert_eq!(lines.last().unwrap()["action"]["action"], "hangup");
}

#[test]
fn chat_with_the_local_llm_words_small_talk_within_its_grammar() {
    let dir = tempdir("chat-llm");
    std::fs::write(dir.join("ivr.toml"), "[llm]\nurl = \"http://127.0.0.1:18591\"\n").unwrap();
    let mut child = ivr()
        .args(["--config", dir.join("ivr.toml").to_str().unwrap(), "chat", "--llm", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi there, how are you doing?\nhow long does standard delivery take?\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let small_talk = lines[0]["reply"].as_str().unwrap();
    let questions = ["How can I help you today?", "What can I do for you?", "Is there anything else I can help you with?"];
    assert!(questions.iter().any(|q| small_talk.ends_with(q)), "{small_talk}");
    // Knowledge answers are spoken as written, not by the LLM.
    assert!(lines[1]["reply"].as_str().unwrap().starts_with("Standard delivery takes 3 to 5 business days."));
}

/// Runs `ivr chat --llm --json` with a config and the caller's lines; returns the JSON turns.
fn chat_llm(config: &str, name: &str, caller: &str, lines: &str) -> Vec<serde_json::Value> {
    let dir = tempdir(name);
    std::fs::write(dir.join("ivr.toml"), config).unwrap();
    let mut child = ivr()
        .args(["--config", dir.join("ivr.toml").to_str().unwrap(), "chat", "--llm", "--json", "--caller", caller])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `[llm] backend = "openai"`: a company's own server. Here that server is ivr-llm started by the
/// test itself (it speaks the same API as llama-server, vLLM or Ollama), so ivr must use it and not
/// start one of its own; without it, ivr keeps speaking its fixed words.
#[test]
fn an_openai_compatible_server_words_tool_results_and_its_absence_is_survived() {
    let port = 18593;
    /// Stops the server even when an assertion fails.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = std::process::Command::new(std::path::Path::new(env!("CARGO_BIN_EXE_ivr")).with_file_name("ivr-llm"))
        .args(["--model", models().data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf").to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--threads", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(server);
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "ivr-llm did not start");
    let openai = format!("[llm]\nbackend = \"openai\"\nurl = \"http://127.0.0.1:{port}\"\n");
    let call = "how many reward points do I have\nare you open now\nmy parcel arrived damaged\n";

    // Constrained (the default): the LLM introduces the tool's sentence, which follows word for word.
    let turns = chat_llm(&openai, "openai", "+4930111444", call);
    let points = turns[0]["reply"].as_str().unwrap();
    assert!(points.ends_with("You have 5300 Lumen Rewards points.") && points != "You have 5300 Lumen Rewards points.", "{points}");
    assert_eq!(turns[0]["llm_worded"], true);
    assert_eq!(turns[2]["action"]["reason"], "damaged_delivery");

    // Free: whatever the small model writes is spoken only if it restates the facts; otherwise the
    // fixed sentence is. Either way the numbers are right and the agent's note stays short.
    let turns = chat_llm(&format!("{openai}[dialogue]\nllm_style = \"free\"\n"), "openai-free", "+4930111444", call);
    let points = turns[0]["reply"].as_str().unwrap();
    assert!(points.contains("5300") && !points.contains("I'm sorry"), "{points}");
    let open = turns[1]["reply"].as_str().unwrap();
    assert!(open.contains("closed") || open.contains("open"), "{open}");
    let note = turns[2]["action"]["summary"]["screen"].as_str().unwrap();
    assert!(note.split_whitespace().count() <= 60 && note.contains("C1003"), "{note}");

    // The server gone: the same call, fixed words, no error.
    drop(server);
    let turns = chat_llm(&openai, "openai-gone", "+4930111444", call);
    assert_eq!(turns[0]["reply"], "You have 5300 Lumen Rewards points.");
    assert_eq!(turns[0]["llm_worded"], false);
    assert_eq!(turns[2]["action"]["reason"], "damaged_delivery");
}
