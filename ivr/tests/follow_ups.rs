//! When nobody can take a call: callbacks and voicemails, on loopback with real callers, and what
//! survives `kill -9` of the server. With no agent signed in, two sipp callers ask for a person
//! (key 0) and leave callbacks (key 1, then the hash key to confirm their number: sipp replays the
//! same capture for a repeated key, which RFC 4733 takes for one event); a baresip caller leaves a
//! voicemail (key 2, speaks after the tone, hash key). Then an agent goes on break, a fourth
//! caller waits in the queue, and the server is killed. After the restart the callbacks and the
//! voicemail are there with their audio and transcripts, the waiting caller is logged as
//! abandoned, and a voicemail left untranscribed is transcribed at the start. The test command runs inside a network namespace with only `lo` up.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A queue with a registrar; media may be silent for two minutes (sipp callers send only keys).
fn config(dir: &Path) -> (String, PathBuf) {
    queue_config(dir, 18619, "rtp_timeout_secs = 120\n", "")
}

/// Polls `ivr records export --kind <kind>` until `f` finds what it wants (or `secs` pass).
fn wait_export<T>(config: &Path, kind: &str, secs: u64, f: impl Fn(&[serde_json::Value]) -> Option<T>) -> Option<T> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f(&export(config, kind)) {
            return Some(t);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn callbacks_and_a_voicemail_survive_kill_9_and_the_callers_waiting_are_logged_abandoned() {
    let dir = tempdir("follow-ups");
    let (toml, config) = config(&dir);
    assert!(agents(&config, &["add", "ann", "--extension", "2001"], "agentpass1").0);
    let served = serve(&dir, &toml);

    // Two callers leave callbacks on their own numbers (the queue is closed: nobody signed in).
    let callback = |n: u16| {
        let sub = dir.join(format!("cb{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        let number = format!("+49302220{n:02}");
        let vars = [("caller", number.as_str()), ("wait1", "9000"), ("key1", "1"), ("wait2", "7000"), ("key2", "pound")];
        sipp_spawn("keys-then-their-bye.xml", &served.sip, &vars, &sub, n)
    };
    let (mut c1, mut c2) = (callback(1), callback(2));

    // A third leaves a voicemail: keys from baresip's keyboard (RFC 4733), the message from its
    // microphone, after the tone.
    let mic = caller_wav(&dir, "message", "Hello, this is Maria. My parcel arrived broken yesterday. Please call me back.", 24.0, 20.0);
    let log = dir.join("voicemail-caller.log");
    let uri = format!("sip:ivr@{}", served.sip);
    let mut caller = Group::spawn(
        baresip(&dir, "caller", &mic, "<sip:+4930111333@127.0.0.1>;regint=0", 15494, 21800)
            .args(["-e", &format!("/dial {uri}"), "-t", "80"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null()),
    )
    .expect("baresip runs");
    assert!(wait_for(&log, "established", 15), "the call was not answered: {}", std::fs::read_to_string(&log).unwrap_or_default());
    let answered = Instant::now();
    let mut keys = caller.0.stdin.take().unwrap();
    let mut key_at = |secs: u64, key: &[u8]| {
        if let Some(wait) = Duration::from_secs(secs).checked_sub(answered.elapsed()) {
            std::thread::sleep(wait);
        }
        keys.write_all(key).unwrap();
        keys.flush().unwrap();
    };
    // 0: a person; 2: a message (its prompt and tone end before the words at 24 s); # at 34 s.
    key_at(2, b"0");
    key_at(14, b"2");
    key_at(34, b"#");
    for (name, c) in [("first", &mut c1), ("second", &mut c2)] {
        assert!(c.0.wait().unwrap().success(), "the {name} callback caller's scenario failed");
    }

    let follow_ups = wait_export(&config, "follow-ups", 20, |f| {
        let vm = f.iter().find(|f| f["kind"] == "voicemail" && f["transcript"].is_string())?;
        (f.iter().filter(|f| f["kind"] == "callback").count() == 2).then(|| vm.clone())
    });
    let voicemail = follow_ups.unwrap_or_else(|| panic!("two callbacks and a transcribed voicemail: {:?}", export(&config, "follow-ups")));
    eprintln!("voicemail: {voicemail}");
    drop(keys);
    drop(caller);

    // Ann goes on break: the next caller waits in the queue (and is there when the server dies).
    assert!(agents(&config, &["status", "ann", "on_break"], "").0);
    std::thread::sleep(Duration::from_secs(3));
    let waiting = dir.join("waiting");
    std::fs::create_dir_all(&waiting).unwrap();
    let queued = sipp_spawn("key-zero-then-bye.xml", &served.sip, &[("stay_ms", "60000")], &waiting, 3);
    let entered = wait_export(&config, "queue", 30, |q| q.iter().find(|e| e["event"] == "enter").map(|e| e["call_id"].as_str().unwrap_or_default().to_string()))
        .expect("the fourth caller entered the queue");
    // kill -9 (the server's whole process group), and the caller with it.
    drop(served);
    drop(queued);

    // A voicemail written but not yet transcribed when the server died (the kill can fall between
    // the two, a second apart): put in the store as it would be left, it is transcribed at the
    // next start.
    let left = dir.join("audio/voicemail/vm-left-over.wav");
    std::fs::copy(voicemail["audio"].as_str().unwrap(), &left).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = ivr_store::Store::open(&format!("sqlite://{}", dir.join("records/calls.db").display())).await.unwrap();
        let f = ivr_store::FollowUp {
            id: "vm-left-over".into(),
            kind: "voicemail".into(),
            number: "+4930111444".into(),
            created_at: "2026-12-01T20:00:00Z".into(),
            reason: "after_hours".into(),
            audio: Some(left.display().to_string()),
            status: "open".into(),
            ..Default::default()
        };
        store.add_follow_up(&f).await.unwrap();
        store.close().await;
    });

    let served = serve(&dir, &toml);
    let left_over = wait_export(&config, "follow-ups", 30, |f| f.iter().find(|f| f["id"] == "vm-left-over" && f["transcript"].is_string()).cloned());
    let left_over = left_over.unwrap_or_else(|| panic!("the left-over voicemail is transcribed at the start: {:?}", export(&config, "follow-ups")));
    let text = left_over["transcript"].as_str().unwrap().to_lowercase();
    assert!(text.contains("parcel") || text.contains("broken"), "{left_over}");
    assert!(left_over["summary"].as_str().unwrap().starts_with("Voicemail from +4930111444"), "{left_over}");
    let follow_ups = export(&config, "follow-ups");
    let callbacks: Vec<&serde_json::Value> = follow_ups.iter().filter(|f| f["kind"] == "callback").collect();
    let mut numbers: Vec<&str> = callbacks.iter().map(|f| f["number"].as_str().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, ["+4930222001", "+4930222002"], "{follow_ups:?}");
    assert!(callbacks.iter().all(|f| f["reason"] == "no_agents" && f["status"] == "open"), "{follow_ups:?}");
    // Each callback's call is there with its recording and its transcript.
    let calls = all_calls(&config);
    for cb in &callbacks {
        let call = calls.iter().find(|c| c["id"] == cb["call_id"]).unwrap_or_else(|| panic!("the call of {cb}"));
        let recording = call["recording"].as_str().expect("a recording");
        assert!(std::fs::metadata(recording).map(|m| m.len() > 100_000).unwrap_or(false), "{recording}");
        assert!(said(call, "bot").iter().any(|t| t.contains("call you back")), "{call}");
    }
    // The voicemail: its audio (what the caller said after the tone) and its transcript.
    let vm = follow_ups.iter().find(|f| f["kind"] == "voicemail" && f["number"] == "+4930111333").expect("the voicemail");
    assert_eq!(vm["number"], "+4930111333");
    assert_eq!(vm["reason"], "no_agents");
    let audio = PathBuf::from(vm["audio"].as_str().expect("the voicemail's audio"));
    let text = heard(&audio);
    assert!(text.contains("parcel") || text.contains("broken"), "the message is in the audio: {text}");
    let transcript = vm["transcript"].as_str().unwrap().to_lowercase();
    assert!(transcript.contains("parcel") || transcript.contains("broken"), "{transcript}");
    assert!(vm["summary"].as_str().unwrap().starts_with("Voicemail from +4930111333"), "{vm}");
    // Voicemails and callbacks come first on the agents' list: all are open.
    assert!(follow_ups.iter().all(|f| f["status"] == "open"));
    // The caller waiting at the kill: abandoned, because the server stopped.
    let queue = export(&config, "queue");
    let abandon = queue.iter().find(|e| e["call_id"] == entered.as_str() && e["event"] == "abandon").unwrap_or_else(|| panic!("{queue:?}"));
    assert!(abandon.to_string().contains("server_stopped"), "{abandon}");
    drop(served);
}
