//! Human agents end to end, on loopback with real softphones: agents are made with `ivr agents`,
//! an agent's baresip registers with their password (SIP digest) and auto-answers; a baresip
//! caller asks for a person; the server rings the agent's phone itself, the agent hears the
//! summary, keys 1, and then each side hears the other (the project's STT checks both
//! recordings). The test command runs inside a network namespace with only `lo` up.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The server's settings (a queue whose phones ring 20 s).
fn config(dir: &Path) -> (String, PathBuf) {
    common::queue_config(dir, 18615, "", "ring_timeout_secs = 20\n")
}

#[test]
fn a_caller_asking_for_a_person_is_warm_transferred_to_a_registered_agent() {
    let dir = tempdir("warm-transfer");
    let (toml, config) = config(&dir);
    let (ok, out, err) = agents(&config, &["add", "ann", "--extension", "2001", "--skills", "en,orders"], "agentpass1");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = agents(&config, &["add", "ann", "--extension", "2002"], "agentpass1");
    assert!(!ok && err.contains("already exists"), "a second ann is refused clearly: {err}");
    let (ok, _, err) = agents(&config, &["add", "bob"], "short");
    assert!(!ok && err.contains("at least 8 characters"), "{err}");
    assert!(agents(&config, &["status", "ann", "available"], "").0);

    let served = serve(&dir, &toml);
    // The agent's phone: registers as 2001 with ann's password, answers automatically, and
    // talks once it has had time to hear the summary and key 1.
    let agent_mic = person_wav(&dir, "agent", "Hello, you are speaking with customer service. How can I help?", 15.0, 25.0);
    let account = format!("<sip:2001@{}>;auth_pass=agentpass1;regint=60;answermode=auto", served.sip);
    let agent_log = dir.join("agent.log");
    let mut agent = Group::spawn(baresip(&dir, "agent", &agent_mic, &account, 15292, 21500).stdin(Stdio::piped()).stdout(std::fs::File::create(&agent_log).unwrap()).stderr(Stdio::null()))
        .expect("baresip runs");
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    let mut keys = agent.0.stdin.take().unwrap();

    // The caller asks for a person, waits, and says what the problem is once connected.
    let p = |n: &str| dir.join(n).display().to_string();
    caller_wav(&dir, "ask", "I want to talk to a person.", 7.0, 30.0);
    person_wav(&dir, "problem", "My parcel arrived broken yesterday.", 0.0, 12.0);
    run_ok(&["sox", &p("ask.wav"), &p("problem.wav"), &p("caller.wav")]);
    // scripts/bench-transfer.sh sets IVR_PCAP to capture the call on the wire (loopback) and
    // measure the hand-over's times there.
    let capture = std::env::var("IVR_PCAP").ok().map(|pcap| {
        let g = Group::spawn(Command::new("tshark").args(["-q", "-i", "lo", "-f", "udp", "-w", &pcap]).stdout(Stdio::null()).stderr(Stdio::null())).expect("tshark runs");
        std::thread::sleep(Duration::from_secs(2));
        g
    });
    let uri = format!("sip:ivr@{}", served.sip);
    let caller = {
        let (dir, mic) = (dir.clone(), dir.join("caller.wav"));
        std::thread::spawn(move || {
            let out = output_in_group(baresip(&dir, "caller", &mic, "<sip:+4930111222@127.0.0.1>;regint=0", 15294, 21600).args(["-e", &format!("/dial {uri}"), "-t", "90"]))
                .expect("baresip runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    assert!(wait_for(&agent_log, "established", 40), "the server never rang the agent: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    // The summary plays; then the agent keys 1 (RFC 4733 from baresip).
    std::thread::sleep(Duration::from_secs(10));
    keys.write_all(b"1").unwrap();
    keys.flush().unwrap();
    let caller_log = caller.join().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(keys);
    drop(agent);
    drop(capture);

    let agent_heard = baresip_heard(&dir, "agent");
    assert_eq!(agent_heard.len(), 1, "the agent's phone took one call: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    let agent_text = heard(&agent_heard[0]);
    let caller_heard = baresip_heard(&dir, "caller");
    assert_eq!(caller_heard.len(), 1, "{caller_log}");
    let caller_text = heard(&caller_heard[0]);
    eprintln!("agent heard: {agent_text}\ncaller heard: {caller_text}");
    // The agent heard the summary (the caller's request) and how to accept, then the caller.
    assert!(agent_text.contains("person"), "the summary names the caller's request: {agent_text}");
    assert!(agent_text.contains("accept"), "the agent is told how to accept: {agent_text}");
    assert!(words_heard(&agent_text, "accept", &["my", "parcel", "arrived", "broken", "yesterday"]) >= 2, "the agent hears the caller once bridged: {agent_text}");
    assert!(!agent_text.contains("talk to a person"), "the agent did not hear the caller before the transfer: {agent_text}");
    // The caller heard the bot, then the agent; never the summary.
    assert!(caller_text.contains("colleague"), "{caller_text}");
    assert!(words_heard(&caller_text, "colleague", &["hello", "speaking", "customer", "service", "help"]) >= 2, "the caller hears the agent: {caller_text}");
    assert!(!caller_text.contains("accept"), "the summary is not spoken to the caller: {caller_text}");

    // The call's record has the hand-over; the queue's log went to the store.
    let calls = all_calls(&config);
    let call = calls.iter().find(|c| c["caller"].as_str().is_some_and(|c| c.contains("4930111222"))).expect("the caller's record");
    let event = |kind: &str| call["events"].as_array().unwrap().iter().find(|e| e["kind"] == kind).map(|e| e["at_secs"].as_f64().unwrap());
    let (queued, answered, bridged) = (event("queued").expect("queued"), event("agent_answered").expect("answered"), event("bridged").expect("bridged"));
    assert!(queued < answered && answered < bridged, "{queued} {answered} {bridged}");
    eprintln!("queued at {queued:.2} s; the agent's phone answered (auto) {:.2} s later; bridged {:.2} s after that", answered - queued, bridged - answered);
}

#[test]
fn a_register_without_valid_credentials_is_challenged_and_refused() {
    let dir = tempdir("agent-register");
    let (toml, config) = config(&dir);
    assert!(agents(&config, &["add", "cy", "--extension", "2003"], "agentpass3").0);
    let served = serve(&dir, &toml);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = socket.local_addr().unwrap();
    let register = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{s} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-reg{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:2003@{s}>;tag=r1\r\n\
             To: <sip:2003@{s}>\r\nCall-ID: reg-test\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:2003@{local}>\r\n{auth}Content-Length: 0\r\n\r\n",
            s = served.sip
        )
    };
    let ask = |msg: String| -> String {
        socket.send_to(msg.as_bytes(), &served.sip).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = socket.recv_from(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // The agents' phones are loaded from the store within a few seconds of the start.
    std::thread::sleep(Duration::from_secs(3));
    let challenge = ask(register(1, ""));
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let forged = format!(
        "Authorization: Digest username=\"2003\", realm=\"lumen\", nonce=\"{nonce}\", uri=\"sip:{}\", response=\"00000000000000000000000000000000\", algorithm=MD5\r\n",
        served.sip
    );
    let refused = ask(register(2, &forged));
    assert!(refused.starts_with("SIP/2.0 401"), "a wrong response is refused: {refused}");
}

#[test]
fn a_hand_off_to_a_pbx_carries_the_summary_in_its_headers_and_the_webhook_gets_it() {
    let dir = tempdir("pbx-handoff");
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let webhook = webhook_bodies(hook, 1);
    let server = serve_sip(
        &dir,
        18616,
        &format!("transfer_target = \"sip:queue@127.0.0.1:15390\"\ntransfer_method = \"invite\"\nhandoff_webhook = \"http://{hook_addr}/handoff\"\n"),
    );
    // The PBX: a sipp UAS that refuses (and so fails the test) an INVITE without the headers.
    let pbx_xml = dir.join("pbx-uas.xml");
    std::fs::copy(repo().join("sip-bridge/tests/sipp/pbx-uas.xml"), &pbx_xml).unwrap();
    let pbx = Group::spawn(
        Command::new("sipp")
            .arg("-sf")
            .arg(&pbx_xml)
            .args(["-i", "127.0.0.1", "-p", "15390", "-mp", "25390", "-m", "1", "-timeout", "60s", "-nostdin", "-trace_msg", "-message_file"])
            .arg(dir.join("pbx-messages.log"))
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("pbx-errors.log"))
            .stdout(Stdio::null()),
    )
    .expect("sipp runs");
    assert!(sipp("key-zero-then-bye.xml", &server.sip, &[("stay_ms", "12000")], &dir), "the caller's call failed");
    let mut pbx = pbx;
    let status = pbx.0.wait().unwrap();
    let messages = std::fs::read_to_string(dir.join("pbx-messages.log")).unwrap_or_default();
    assert!(status.success(), "the PBX's scenario failed: {}\n{messages}", std::fs::read_to_string(dir.join("pbx-errors.log")).unwrap_or_default());
    let invite = messages.split("INVITE sip:").nth(1).expect("the PBX got an INVITE");
    let header = |name: &str| invite.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
    let summary = header("X-Summary:").expect("X-Summary");
    assert!(summary.contains("Goal:") && summary.contains("Reason:"), "{summary}");
    let uui = header("User-to-User:").expect("User-to-User");
    let hex = uui.split(';').next().unwrap();
    let decoded: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    assert!(summary.starts_with(&String::from_utf8(decoded).unwrap()), "the user-to-user data is the summary's start: {uui}");
    let from = header("From:").expect("From");
    assert!(from.contains("+4930111222"), "the caller's number as caller ID: {from}");
    // The CRM got the same hand-off, with a link to the call's record.
    let doc: serde_json::Value = serde_json::from_str(&webhook.join().unwrap()[0]).expect("a JSON hand-off");
    assert_eq!(doc["summary"].as_str(), Some(summary.as_str()));
    assert_eq!(doc["to"], "sip:queue@127.0.0.1:15390");
    let url = doc["call_url"].as_str().expect("the call's URL");
    assert!(header("Call-Info:").is_some_and(|c| c.contains(url)), "Call-Info links the same record");
    let path = url.split_once(&server.http).map(|(_, p)| p.to_string()).expect("on this server");
    let (status, record) = get(&server.http, &path);
    assert_eq!(status, 200, "{record}");
    assert!(record["events"].as_array().unwrap().iter().any(|e| e["kind"] == "bridged"), "{record}");
}
