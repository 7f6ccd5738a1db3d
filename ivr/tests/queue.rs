//! The queue end to end, on loopback with real callers and a real agent's phone: three callers and
//! one agent. A calm baresip caller asks for a person, a sipp caller presses 0, then an upset
//! baresip caller asks, last; the agent (on break) becomes available: the upset caller's call is
//! offered first. The agent's baresip rings but never answers: after the ring timeout the next
//! caller is tried, and after two missed offers the agent is put on break. The sipp caller presses
//! 1 and leaves a callback; the agent comes back, and the upset caller hangs up while the agent's
//! phone rings: the phone gets CANCEL. The calm caller hears their position, then, after the
//! longest wait, the callback offer. The test command runs inside a network namespace with only
//! `lo` up.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// Queue lines about `call`, as (event, detail).
fn lines_of<'a>(queue: &'a [serde_json::Value], call: &str) -> Vec<&'a serde_json::Value> {
    queue.iter().filter(|e| e["call_id"] == call).collect()
}

#[test]
fn three_callers_one_agent_priority_announcements_callback_missed_offers_and_cancel() {
    let dir = tempdir("queue");
    let queue = "ring_timeout_secs = 6\nmax_misses = 2\nretry_secs = 1\nannounce_every_secs = 20\nmax_wait_secs = 50\n";
    let (toml, config) = queue_config(&dir, 18620, "rtp_timeout_secs = 120\n", queue);
    assert!(agents(&config, &["add", "ann", "--extension", "2001"], "agentpass1").0);
    assert!(agents(&config, &["status", "ann", "on_break"], "").0);
    let served = serve(&dir, &toml);
    let queue = || export(&config, "queue");

    // Ann's phone registers and rings when called, but nobody answers it.
    let silence = dir.join("silence.wav");
    run_ok(&["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", "5"]);
    let agent_log = dir.join("agent.log");
    let account = format!("<sip:2001@{}>;auth_pass=agentpass1;regint=60", served.sip);
    // `-s`: the SIP messages it receives, in its log (the CANCELs are counted there).
    let _phone = Group::spawn(baresip(&dir, "agent", &silence, &account, 15692, 22000).arg("-s").stdout(std::fs::File::create(&agent_log).unwrap()).stderr(Stdio::null()))
        .expect("baresip runs");
    let cancels = || std::fs::read_to_string(&agent_log).unwrap_or_default().lines().filter(|l| l.trim_start().starts_with("CANCEL sip:")).count();
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register");
    let rings = || std::fs::read_to_string(&agent_log).unwrap_or_default().matches("Incoming call").count();

    let uri = format!("sip:ivr@{}", served.sip);
    let baresip_caller = |name: &str, number: &str, text: &str, port: u16| {
        // After the greeting (the caller does not talk over it).
        let mic = caller_wav(&dir, name, text, 5.5, 100.0);
        let log = dir.join(format!("{name}.log"));
        let account = format!("<sip:{number}@127.0.0.1>;regint=0");
        let g = Group::spawn(
            baresip(&dir, name, &mic, &account, port, port + 6000)
                .args(["-e", &format!("/dial {uri}"), "-t", "120"])
                .stdin(Stdio::piped())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null()),
        )
        .expect("baresip runs");
        (g, log)
    };
    // The calm caller first, then the sipp caller (key 0; key 1 for a callback 14 s later; the
    // hash key confirms the number), then the upset one.
    let (calm, calm_log) = baresip_caller("calm", "+4930111001", "I want to talk to a person.", 15694);
    std::thread::sleep(Duration::from_secs(2));
    let sipp_dir = dir.join("keyer");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    let vars = [("caller", "+4930111002"), ("wait1", "14000"), ("key1", "1"), ("wait2", "7000"), ("key2", "pound")];
    let mut keyer = sipp_spawn("keys-then-their-bye.xml", &served.sip, &vars, &sipp_dir, 4);
    std::thread::sleep(Duration::from_secs(4));
    let (mut upset, _upset_log) = baresip_caller("upset", "+4930111003", "This is ridiculous, I am furious. Get me a person right now.", 15696);
    assert!(wait_until(30, || queue().iter().filter(|e| e["event"] == "enter").count() == 3), "three callers in the queue: {:?}", queue());
    let q = queue();
    // The queue's lines name the call; the call's record names the caller.
    let calls = all_calls(&config);
    let call_of = |number: &str| {
        calls.iter().find(|c| c["caller"].as_str().is_some_and(|c| c.contains(number))).and_then(|c| c["id"].as_str()).map(str::to_string).expect("the caller's call")
    };
    let (calm_call, keyer_call, upset_call) = (call_of("+4930111001"), call_of("+4930111002"), call_of("+4930111003"));
    let enter_of = |call: &str| q.iter().find(|e| e["event"] == "enter" && e["call_id"] == call).cloned().expect("entered");
    let upset_enter = enter_of(&upset_call);
    assert_eq!(upset_enter["detail"]["priority"], 1, "the upset caller goes first: {upset_enter}");
    assert_eq!(upset_enter["detail"]["position"], 1, "ahead of the two who came before: {upset_enter}");
    assert_eq!(enter_of(&calm_call)["detail"]["priority"], 0);
    assert_eq!(q.iter().rfind(|e| e["event"] == "enter").map(|e| e["call_id"].clone()), Some(upset_call.clone().into()), "the upset caller came last");

    // Ann becomes available: the upset caller's call is offered first; she does not answer, the
    // next caller is tried; after two misses she is on break.
    assert!(agents(&config, &["status", "ann", "available"], "").0);
    assert!(
        wait_until(40, || queue().iter().any(|e| e["event"] == "status" && e["agent"] == "ann" && e["detail"]["by_system"] == true)),
        "ann is put on break after missing offers: {:?}",
        queue()
    );
    let q = queue();
    let offered: Vec<&str> = q.iter().filter(|e| e["event"] == "offered").map(|e| e["call_id"].as_str().unwrap()).collect();
    assert_eq!(offered.first(), Some(&upset_call.as_str()), "the upset caller is offered first: {q:?}");
    assert_eq!(q.iter().filter(|e| e["event"] == "no_answer").count(), 2, "{q:?}");
    assert!(offered.len() >= 2 && offered[1] != upset_call, "after the miss the next caller is tried: {offered:?}");
    assert_eq!(rings(), 2, "the phone rang twice: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    assert_eq!(cancels(), 2, "each ring timeout cancelled the ringing");

    // The sipp caller left a callback meanwhile.
    assert!(keyer.0.wait().unwrap().success(), "the sipp caller's scenario failed");
    let callbacks = export(&config, "follow-ups");
    assert!(callbacks.iter().any(|f| f["kind"] == "callback" && f["number"] == "+4930111002" && f["reason"] == "queue_key"), "{callbacks:?}");
    assert!(lines_of(&queue(), &keyer_call).iter().any(|e| e["event"] == "exit_with_key"));

    // Ann is back; the upset caller's call rings her phone again, and the caller hangs up.
    assert!(agents(&config, &["status", "ann", "available"], "").0);
    assert!(wait_until(15, || rings() == 3), "the phone rings a third time");
    let mut keys = upset.0.stdin.take().unwrap();
    keys.write_all(b"/hangup\n").unwrap();
    keys.flush().unwrap();
    assert!(wait_until(10, || lines_of(&queue(), &upset_call).iter().any(|e| e["event"] == "abandon")), "{:?}", queue());
    let upset_lines: Vec<String> = lines_of(&queue(), &upset_call).iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(upset_lines.last().map(String::as_str), Some("abandon"));
    assert_eq!(upset_lines[upset_lines.len() - 2], "offered", "the caller left while the phone rang (no ring timeout): {upset_lines:?}");
    assert!(wait_until(3, || cancels() == 3), "the agent's phone got CANCEL when the caller hung up");
    // Ann goes on break so that the calm caller waits out the longest wait.
    assert!(agents(&config, &["status", "ann", "on_break"], "").0);
    drop(keys);
    drop(upset);

    // The calm caller: position announced, then the longest wait ends in a callback offer.
    assert!(wait_until(80, || lines_of(&queue(), &calm_call).iter().any(|e| e["event"] == "exit_with_timeout")), "{:?}", queue());
    // Not answered: the bot says goodbye and hangs up (baresip closes its recording then).
    assert!(wait_until(40, || all_calls(&config).iter().any(|c| c["id"] == calm_call.as_str() && c["ended_at"].is_string())), "the calm caller's call ends");
    std::thread::sleep(Duration::from_secs(1));
    drop(calm);
    let heard_by_calm = baresip_heard(&dir, "calm");
    assert_eq!(heard_by_calm.len(), 1, "{}", std::fs::read_to_string(&calm_log).unwrap_or_default());
    let text = heard(&heard_by_calm[0]);
    eprintln!("the calm caller heard: {text}");
    assert!(text.contains("in the queue"), "the position is announced: {text}");
    assert!(text.contains("called back") || text.contains("call back"), "the callback offer: {text}");
}
