//! Real phone calls over SIP on loopback: `sipp` (Debian sip-tester) calls `ivr serve`, streams a
//! recorded caller question as RTP, listens and hangs up; the server's call record must show the
//! question heard and the knowledge answer given. The test command runs inside a network namespace
//! with only `lo` up.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `ivr serve` with its own LLM port and a records file; `sip_extra` adds `[sip]` settings.
struct Server {
    /// Keeps the server running (killed when the test ends).
    _served: Served,
    sip: String,
    records: PathBuf,
}

fn serve(dir: &Path, llm_port: u16, sip_extra: &str) -> Server {
    let records = dir.join("records/calls.jsonl");
    let toml = format!("[llm]\nurl = \"http://127.0.0.1:{llm_port}\"\n[sip]\nrecords = \"{}\"\n{sip_extra}", records.display());
    let served = common::serve(dir, &toml);
    Server { sip: served.sip.clone(), _served: served, records }
}

/// A caller recording as raw mu-law at 8 kHz (what sipp streams): 6 s of silence (the greeting
/// plays meanwhile), then `text` spoken by espeak-ng.
fn caller_ulaw(dir: &Path, text: &str) -> PathBuf {
    let run = |args: &[&str]| assert!(std::process::Command::new(args[0]).args(&args[1..]).status().unwrap().success(), "{args:?}");
    let p = |name: &str| dir.join(name).display().to_string();
    run(&["espeak-ng", "-v", "en-us", "-s", "150", "-w", &p("q.wav"), text]);
    run(&["sox", &p("q.wav"), "-r", "8000", "-c", "1", &p("q8.wav")]);
    run(&["sox", "-n", "-r", "8000", "-c", "1", &p("pad.wav"), "trim", "0", "6"]);
    run(&["sox", &p("pad.wav"), &p("q8.wav"), "-t", "ul", &p("q.ulaw")]);
    dir.join("q.ulaw")
}

/// Runs a sipp scenario from sip-bridge/tests/sipp with its placeholders filled.
fn sipp(scenario: &str, target: &str, vars: &[(&str, &str)], dir: &Path) -> bool {
    sipp_over(scenario, target, vars, dir, "u1")
}

/// As [`sipp`], over a given transport ("u1" UDP, "t1" TCP).
fn sipp_over(scenario: &str, target: &str, vars: &[(&str, &str)], dir: &Path, transport: &str) -> bool {
    let mut xml = std::fs::read_to_string(repo().join("sip-bridge/tests/sipp").join(scenario)).unwrap();
    for (k, v) in vars {
        xml = xml.replace(&format!("[{k}]"), v);
    }
    // Ports of their own, so scenarios can run side by side.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (sip_port, media_port) = (15091 + k, 17000 + 100 * k);
    let path = dir.join(scenario);
    std::fs::write(&path, xml).unwrap();
    let status = std::process::Command::new("sipp")
        .arg(target)
        .arg("-sf")
        .arg(&path)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &sip_port.to_string(), "-mp", &media_port.to_string()])
        .args(["-t", transport, "-timeout", "60s", "-nostdin", "-trace_err", "-error_file"])
        .arg(dir.join("sipp-errors.log"))
        .stdout(Stdio::null())
        .status()
        .expect("sipp runs (scripts/setup.sh installs sip-tester)");
    if !status.success() {
        eprintln!("{}", std::fs::read_to_string(dir.join("sipp-errors.log")).unwrap_or_default());
    }
    status.success()
}

/// The call records written so far (waiting up to `secs` for `n` of them).
fn records(path: &Path, n: usize, secs: u64) -> Vec<serde_json::Value> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n || Instant::now() > until {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_sipp_caller_asks_a_question_over_rtp_and_gets_the_knowledge_answer() {
    let dir = tempdir("sip-question");
    let server = serve(&dir, 18596, "");
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    assert!(sipp("call-question.xml", &server.sip, &[("question", question.to_str().unwrap()), ("listen_ms", "16000")], &dir));
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs.len(), 1, "one call, one record");
    let r = &recs[0];
    let said = |who: &str| -> Vec<String> {
        r["transcript"].as_array().unwrap().iter().filter(|l| l["who"] == who).map(|l| l["text"].as_str().unwrap().to_lowercase()).collect()
    };
    assert!(said("caller").iter().any(|t| t.contains("deliver")), "{r}");
    assert!(said("bot").iter().any(|t| t.contains("3 to 5 business days")), "{r}");
    assert_eq!(r["ended_by"], "caller");
    assert!(r["media"]["packets_in"].as_u64().unwrap() > 300, "{r}");
    assert!(r["media"]["packets_out"].as_u64().unwrap() > 300, "{r}");
    assert_eq!(r["voice_to_voice_ms"].as_array().unwrap().len(), 1, "{r}");
}

#[test]
fn options_dtmf_zero_and_a_hangup_from_the_bot() {
    let dir = tempdir("sip-dtmf");
    let server = serve(&dir, 18597, "");
    // A keep-alive probe.
    assert!(sipp("options.xml", &server.sip, &[], &dir), "OPTIONS");
    // Hold and unhold by re-INVITE, then the caller's BYE.
    assert!(sipp("hold.xml", &server.sip, &[], &dir), "hold");
    // 0 pressed during the greeting (RFC 4733): the caller asked for a person; the bot hands over
    // and, until REFER is built, ends the call with BYE, which sipp answers.
    assert!(sipp("dtmf-zero.xml", &server.sip, &[], &dir), "DTMF 0");
    let recs = records(&server.records, 2, 10);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["ended_by"], "caller", "the held call: {}", recs[0]);
    let action = &recs[1]["actions"][0];
    assert_eq!(action["action"], "transfer", "{}", recs[1]);
    assert_eq!(action["reason"], "caller_request");
    assert_eq!(recs[1]["ended_by"], "bot");
}

#[test]
fn a_transfer_is_a_refer_to_the_configured_target() {
    let dir = tempdir("sip-refer");
    let server = serve(&dir, 18598, "transfer_target = \"sip:agent@127.0.0.1:5070\"\n");
    // The caller presses 0, accepts the REFER, reports the target answered, and is hung up on.
    assert!(sipp("refer.xml", &server.sip, &[], &dir), "REFER");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["actions"][0]["reason"], "caller_request", "{}", recs[0]);
}

#[test]
fn a_caller_who_gives_up_while_it_rings_is_cancelled() {
    let dir = tempdir("sip-cancel");
    let server = serve(&dir, 18599, "ring_ms = 3000\n");
    assert!(sipp("cancel.xml", &server.sip, &[("question", "/dev/null"), ("listen_ms", "0")], &dir), "CANCEL");
    // Never answered, so no call was run and none recorded.
    std::thread::sleep(Duration::from_millis(500));
    assert!(records(&server.records, 0, 0).is_empty());
}

#[test]
fn a_call_whose_media_stops_is_ended() {
    let dir = tempdir("sip-no-media");
    let server = serve(&dir, 18600, "rtp_timeout_secs = 3\n");
    assert!(sipp("no-media.xml", &server.sip, &[], &dir), "BYE after the RTP timeout");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["ended_by"], "rtp timeout", "{}", recs[0]);
}

#[test]
fn the_same_call_over_tcp() {
    let dir = tempdir("sip-tcp");
    let server = serve(&dir, 18601, "");
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "16000")];
    assert!(sipp_over("call-question.xml", &server.sip, &vars, &dir, "t1"), "TCP call");
    let recs = records(&server.records, 1, 10);
    let bot: Vec<&str> = recs[0]["transcript"].as_array().unwrap().iter().filter(|l| l["who"] == "bot").map(|l| l["text"].as_str().unwrap()).collect();
    assert!(bot.iter().any(|t| t.contains("3 to 5 business days")), "{}", recs[0]);
    assert_eq!(recs[0]["ended_by"], "caller");
}
