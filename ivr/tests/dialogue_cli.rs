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
