//! Browser callers end to end: headless Chromium (Debian's, driven by playwright-core from npm) on
//! the caller page `/call`, with a fake microphone playing an espeak-ng caller recording, calls
//! `ivr serve` over WebRTC on loopback (the test command runs in a network namespace with only
//! `lo` up); what the page receives is recorded in the page (Web Audio on the remote stream) and
//! transcribed by the project's own STT.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The caller's microphone for Chromium: 48 kHz 16-bit mono WAV, `lead` s of silence (the
/// greeting plays), `text`, then `tail` s of silence.
fn browser_mic(dir: &Path, name: &str, text: &str, lead: f32, tail: f32) -> PathBuf {
    let wav8 = caller_wav(dir, name, text, lead, tail);
    let out = dir.join(format!("{name}-48k.wav"));
    run_ok(&["sox", wav8.to_str().unwrap(), "-r", "48000", "-c", "1", "-b", "16", out.to_str().unwrap()]);
    out
}

/// Runs `ivr/tests/browser/caller.mjs` against `http` with `env`; returns what the page showed
/// and the path of what it heard.
fn browser_call(dir: &Path, http: &str, mic: &Path, listen_ms: u64, env: &[(&str, &str)]) -> (serde_json::Value, PathBuf) {
    let heard = dir.join("browser-heard.wav");
    let shot = dir.join("browser-call.png");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(repo().join("ivr/tests/browser/caller.mjs"))
        .current_dir(repo())
        .env("CALL_URL", format!("http://{http}/call"))
        .env("MIC_WAV", mic)
        .env("LISTEN_MS", listen_ms.to_string())
        .env("OUT_WAV", &heard)
        .env("SCREENSHOT", &shot);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output_in_group(&mut cmd).expect("node runs (scripts/setup.sh installs nodejs and playwright-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    let page: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _ = std::fs::copy(&shot, artifacts.join("browser-call.png"));
    (page, heard)
}

#[test]
fn a_browser_caller_hears_the_answer_and_sees_the_captions() {
    let dir = tempdir("browser-call");
    let server = serve_sip(&dir, 18621, "");
    let mic = browser_mic(&dir, "caller", "How long do I have to return something?", 6.0, 12.0);
    let (page, heard_wav) = browser_call(&dir, &server.http, &mic, 24_000, &[]);
    assert!(page.get("failure").is_none(), "{page}");
    assert_eq!(page["error"], serde_json::Value::Null, "no error shown: {page}");
    assert!(page["recorded_secs"].as_f64().unwrap() > 15.0, "{page}");
    let text = heard(&heard_wav);
    assert!(text.contains("thank you for calling"), "the greeting: {text}");
    assert!(text.contains("30 days"), "the return window: {text}");
    // The captions show both sides: the question as the bot understood it, and its answer.
    let captions = page["captions"].as_array().unwrap();
    let of = |who: &str| captions.iter().filter(|c| c["who"] == who).map(|c| c["text"].as_str().unwrap().to_lowercase()).collect::<Vec<_>>().join(" | ");
    assert!(of("caller").contains("return"), "the caller's question in the captions: {page}");
    assert!(of("bot").contains("30 days"), "the answer in the captions: {page}");
    assert_eq!(page["state"], "ended", "{page}");
    // The call's record: a browser call like any other, ended by the caller (the page's hang-up).
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["ended_by"], "caller", "{}", recs[0]);
    assert_eq!(recs[0]["caller"], "browser", "{}", recs[0]);
    assert_eq!(recs[0]["media"]["codec"], "opus", "{}", recs[0]);
    assert!(recs[0]["media"]["packets_in"].as_u64().unwrap() > 500, "{}", recs[0]);
}
