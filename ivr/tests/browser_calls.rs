//! Browser callers end to end: headless Chromium (Debian's, driven by playwright-core from npm) on
//! the caller page `/call`, with a fake microphone playing an espeak-ng caller recording, calls
//! `ivr serve` over WebRTC on loopback (the test command runs in a network namespace with only
//! `lo` up); what the page receives is recorded in the page (Web Audio on the remote stream) and
//! transcribed by the project's own STT.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The bridged caller's sentence, "I need help with my delivery, it is very late.", by its words.
const CALLER_WORDS: &[&str] = &["need", "help", "delivery", "very", "late"];
/// The agent's greeting, "Hello, you are speaking with customer service. How can I help?".
const AGENT_WORDS: &[&str] = &["hello", "speaking", "customer", "service", "help"];

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
    let (url, listen) = (format!("http://{http}/call"), listen_ms.to_string());
    let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![("CALL_URL", url.as_ref()), ("MIC_WAV", mic.as_os_str()), ("LISTEN_MS", listen.as_ref()), ("OUT_WAV", heard.as_os_str()), ("SCREENSHOT", shot.as_os_str())];
    all.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v))));
    let page = node("caller.mjs", &all);
    let browser = env.iter().find(|(k, _)| *k == "BROWSER").map_or("chromium", |(_, v)| v);
    keep(&shot, &format!("browser-call-{browser}.png"));
    (page, heard)
}

#[test]
fn a_browser_caller_hears_the_answer_and_sees_the_captions() {
    caller_hears_the_answer_and_sees_the_captions("chromium", 18621, &[]);
}

/// The same call from Firefox: the caller page uses only standard WebRTC, so it must work there
/// too (Firefox's own ICE, DTLS-SRTP, Opus and data channel against the ICE-lite server).
#[test]
fn a_firefox_caller_hears_the_answer_and_sees_the_captions() {
    let host = FirefoxHost::prepare(&tempdir("firefox-host"));
    caller_hears_the_answer_and_sees_the_captions("firefox", 18626, &[("PULSE_SERVER", &host.pulse_server)]);
}

/// What headless Firefox needs from the machine that Chromium does not, set up for one test and
/// taken down after it (also when it fails):
/// - A default route. Firefox gathers no ICE candidates without one (it first looks up the address
///   it would use to reach the internet), and the test namespace has only `lo`. A second address
///   goes on `lo` with a default route through it: Firefox offers that address, and anything sent
///   to any other address still stays inside the namespace. Only inside the sandbox.
///   Firefox does not pair with a server's loopback candidate either: the server, with `[webrtc]
///   bind` unset as out of the box, binds its media to the default route's address, this one.
/// - A sound server. Firefox's Web Audio (the tests' microphone and recorder) runs only on an audio
///   device; PulseAudio with a null sink, on a socket of its own, is one (`PULSE_SERVER`).
struct FirefoxHost {
    route_added: bool,
    pulse: std::process::Child,
    /// For the browser's environment.
    pulse_server: String,
}

impl FirefoxHost {
    const ADDR: &'static str = "10.254.0.1";

    fn prepare(dir: &Path) -> Self {
        let default = std::process::Command::new("ip").args(["route", "show", "default"]).output().expect("ip runs");
        let route_added = default.stdout.is_empty() && std::env::var("IVR_SANDBOXED").as_deref() == Ok("1");
        if route_added {
            run_ok(&["ip", "addr", "add", &format!("{}/32", Self::ADDR), "dev", "lo"]);
            run_ok(&["ip", "route", "add", "default", "dev", "lo", "src", Self::ADDR]);
        }
        let socket = dir.join("pulse.sock");
        let log = std::fs::File::create(dir.join("pulseaudio.log")).unwrap();
        let pulse = std::process::Command::new("pulseaudio")
            .args(["--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no", "--load=module-null-sink sink_name=null"])
            .arg(format!("--load=module-native-protocol-unix socket={} auth-anonymous=1", socket.display()))
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("pulseaudio runs (scripts/setup.sh installs it)");
        let host = Self { route_added, pulse, pulse_server: format!("unix:{}", socket.display()) };
        for _ in 0..100 {
            if socket.exists() {
                return host;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("pulseaudio did not open {}: {}", socket.display(), std::fs::read_to_string(dir.join("pulseaudio.log")).unwrap_or_default());
    }
}

impl Drop for FirefoxHost {
    fn drop(&mut self) {
        let _ = self.pulse.kill();
        let _ = self.pulse.wait();
        if self.route_added {
            let _ = std::process::Command::new("ip").args(["route", "del", "default", "dev", "lo"]).status();
            let _ = std::process::Command::new("ip").args(["addr", "del", &format!("{}/32", Self::ADDR), "dev", "lo"]).status();
        }
    }
}

fn caller_hears_the_answer_and_sees_the_captions(browser: &str, llm_port: u16, env: &[(&str, &str)]) {
    let dir = tempdir(&format!("browser-call-{browser}"));
    let server = serve_sip(&dir, llm_port, "");
    let mic = browser_mic(&dir, "caller", "How long do I have to return something?", 6.0, 12.0);
    let env: Vec<(&str, &str)> = env.iter().copied().chain([("BROWSER", browser)]).collect();
    let (page, heard_wav) = browser_call(&dir, &server.http, &mic, 24_000, &env);
    eprintln!("{browser}: {}", page["browser"]);
    assert!(page.get("failure").is_none(), "{page}");
    assert_eq!(page["error"], serde_json::Value::Null, "no error shown: {page}");
    assert!(page["recorded_secs"].as_f64().unwrap() > 15.0, "{page}");
    let text = heard_segments(&heard_wav);
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
    // RTCP with the browser: its receiver reports give the round trip.
    assert!(recs[0]["media"]["round_trip_ms"].as_f64().is_some_and(|ms| ms < 100.0), "{}", recs[0]);
}

/// A TURN server (Debian's coturn) on loopback with one long-term user; stopped when dropped.
struct Turn(std::process::Child);

impl Turn {
    const USER: &'static str = "caller";
    const PASSWORD: &'static str = "turn-secret";

    fn start(dir: &Path, port: u16) -> Self {
        let log = std::fs::File::create(dir.join("turnserver.log")).unwrap();
        let child = std::process::Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--min-port=49200", "--max-port=49300"])
            .args(["--allow-loopback-peers", "--lt-cred-mech", "--realm=ivr.test", "--log-file=stdout", "--simple-log", "--verbose"])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--user={}:{}", Self::USER, Self::PASSWORD))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("turnserver runs (scripts/setup.sh installs coturn)");
        let turn = Self(child);
        for _ in 0..100 {
            if std::fs::read_to_string(dir.join("turnserver.log")).unwrap_or_default().contains("Total General servers") {
                return turn;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("turnserver did not start: {}", std::fs::read_to_string(dir.join("turnserver.log")).unwrap_or_default());
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A caller whose network lets nothing through but a TURN relay (the page's RTCPeerConnection is
/// made relay-only): the server hands the page `[webrtc] ice_servers`, the browser allocates a
/// relay on coturn, and the call's media goes browser -> relay -> server and back.
#[test]
fn a_browser_allowed_only_a_turn_relay_calls_through_it() {
    let dir = tempdir("browser-turn");
    let _turn = Turn::start(&dir, 13478);
    let webrtc = format!("[webrtc]\nice_servers = [{{ urls = [\"turn:127.0.0.1:13478?transport=udp\"], username = \"{}\", credential = \"{}\" }}]\n", Turn::USER, Turn::PASSWORD);
    let server = serve_sip(&dir, 18627, &webrtc);
    let mic = browser_mic(&dir, "caller", "How long do I have to return something?", 6.0, 10.0);
    let (page, heard_wav) = browser_call(&dir, &server.http, &mic, 20_000, &[("ICE_POLICY", "relay")]);
    assert!(page.get("failure").is_none(), "{page}");
    assert_eq!(page["error"], serde_json::Value::Null, "no error shown: {page}");
    // The media went through the relay: the browser's end of the pair is a relay candidate.
    assert_eq!(page["route"]["local"]["type"], "relay", "{page}");
    eprintln!("route: {}", page["route"]);
    let text = heard_segments(&heard_wav);
    assert!(text.contains("thank you for calling"), "the greeting came through the relay: {text}");
    assert!(text.contains("30 days"), "the answer came through the relay: {text}");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["media"]["codec"], "opus", "{}", recs[0]);
    assert!(recs[0]["media"]["packets_in"].as_u64().unwrap() > 400, "the caller's audio came through the relay: {}", recs[0]);
}

/// The server process's threads (by name) and its open sockets (a socket's fd links to
/// "socket:[inode]"; the store's files come and go with its connection pool, so they are left out).
fn threads_and_sockets(pid: u32) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    names.sort();
    let mut sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with("socket:"))
        .collect();
    sockets.sort();
    (names, sockets)
}

/// POSTs `body` as an offer with `content_type`: the status and the JSON body.
fn post_offer(http: &str, content_type: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new().post(format!("http://{http}/call/sessions")).header("Content-Type", content_type).body(body.to_string()).send().unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().unwrap()).unwrap_or_default())
}

#[test]
fn bad_offers_and_abandoned_sessions_leak_nothing_and_sip_goes_on() {
    let dir = tempdir("browser-abandon");
    let server = serve_sip(&dir, 18622, "rtp_timeout_secs = 8\n[webrtc]\nconnect_timeout_secs = 4\nice_servers = [{ urls = [\"stun:stun.example.com:3478\"] }]\n");
    let http = server.http.clone();
    // The page gets the configured STUN/TURN servers for its RTCPeerConnection.
    let (status, config) = get(&http, "/call/config");
    assert_eq!(status, 200);
    assert_eq!(config["iceServers"][0]["urls"][0], "stun:stun.example.com:3478", "{config}");
    // Warm up the HTTP side (its first connections and tasks) before the baseline.
    assert_eq!(health(&http)["browser"]["calls_active"], 0);
    let (threads_before, sockets_before) = threads_and_sockets(server.pid());
    let tasks_before = health(&http)["http"]["tasks"].as_u64().unwrap();

    // Malformed offers and signalling: clear errors, nothing started.
    let message = |v: &serde_json::Value| v["error"]["message"].as_str().unwrap_or_default().to_string();
    let (status, body) = post_offer(&http, "application/sdp", "hello, I am not SDP");
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("no audio"), "{body}");
    let (status, body) = post_offer(&http, "application/sdp", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=garbage\r\n");
    assert_eq!(status, 400, "{body}");
    assert!(message(&body).contains("offer"), "{body}");
    let (status, body) = post_offer(&http, "application/sdp", "");
    assert_eq!((status, message(&body).as_str()), (400, "the offer is empty"), "{body}");
    let (status, body) = post_offer(&http, "application/json", "{\"sdp\": \"v=0\"}");
    assert_eq!(status, 415, "{body}");
    assert!(message(&body).contains("application/sdp"), "{body}");
    let r = reqwest::blocking::Client::new().delete(format!("http://{http}/call/sessions/0123456789abcdef")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().unwrap().contains("no browser call"));
    let r = reqwest::blocking::Client::new().patch(format!("http://{http}/call/sessions/0123456789abcdef")).body("a=candidate").send().unwrap();
    assert_eq!(r.status().as_u16(), 405, "no trickle ICE: the answer has every candidate");
    assert_eq!(health(&http)["browser"]["calls_active"], 0, "bad offers start nothing");

    // 50 sessions opened and abandoned (30 never connect, 20 connect and vanish with the browser)
    // while a phone caller asks a question and must hear the answer.
    let silence = dir.join("silence.wav");
    run_ok(&["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", "30"]);
    let question = caller_ulaw(&dir, "How long do I have to return something?");
    let phone = {
        let (sip, d, q) = (server.sip.clone(), dir.clone(), question.clone());
        std::thread::spawn(move || sipp("call-question.xml", &sip, &[("question", q.to_str().unwrap()), ("listen_ms", "16000")], &d))
    };
    let base = format!("http://{http}");
    let page = node("abandon.mjs", &[("BASE_URL", base.as_ref()), ("MIC_WAV", silence.as_os_str()), ("OFFERED", "30".as_ref()), ("CONNECTED", "20".as_ref())]);
    assert!(page.get("failure").is_none(), "{page}");
    assert!(page["statuses"].as_array().unwrap().iter().all(|s| s == 201), "every offer answered: {page}");
    let connected = page["states"].as_array().unwrap().iter().filter(|s| *s == "connected").count();
    assert_eq!(connected, 20, "{page}");
    assert!(phone.join().unwrap(), "the phone call went wrong while browsers came and went");
    let recs = records(&server.records, 1, 20);
    let phone_call = recs.iter().find(|c| c["caller"] != "browser").expect("the phone call's record");
    assert!(said(phone_call, "bot").join(" ").contains("30 days"), "the phone caller got the answer: {phone_call}");

    // Every abandoned session ends on its own: never connected ones at the connect timeout, the
    // vanished ones when their media stops; then the threads, sockets and tasks are back.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while health(&http)["browser"]["calls_active"] != 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(health(&http)["browser"]["calls_active"], 0, "abandoned browser sessions still open");
    // The HTTP runtime's blocking threads ("ivr-io"; the offers were handled on them, and the
    // store's pool opens its connections on them) linger 10 s after their last use, and the
    // store's pool ("sqlx-sqlite-wor") grows and shrinks on its own: the blocking threads must be
    // back to the baseline at some moment (a stuck one never would be), and every other thread
    // (a call's, a socket's) must be gone.
    let named = |names: &[String], prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    let ours = |names: &[String]| names.iter().filter(|n| !n.starts_with("sqlx-sqlite") && !n.starts_with("ivr-io")).cloned().collect::<Vec<_>>();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut after = threads_and_sockets(server.pid());
    let mut io_back = false;
    loop {
        io_back |= named(&after.0, "ivr-io") <= named(&threads_before, "ivr-io");
        if (io_back && ours(&after.0) == ours(&threads_before) && after.1 == sockets_before) || std::time::Instant::now() > until {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        after = threads_and_sockets(server.pid());
    }
    assert!(io_back, "the HTTP runtime's blocking threads never went back to {}: {:?}", named(&threads_before, "ivr-io"), after.0);
    assert_eq!(ours(&after.0), ours(&threads_before), "threads before and after");
    assert_eq!(after.1, sockets_before, "the server's sockets before and after");
    let tasks_after = health(&http)["http"]["tasks"].as_u64().unwrap();
    assert!(tasks_after <= tasks_before, "HTTP tasks before {tasks_before}, after {tasks_after}");
    // The connected ones were answered calls: each has its record, ended by the media timeout or
    // the browser's going away, not left open.
    let browser_calls = all_calls(&server.records).into_iter().filter(|c| c["caller"] == "browser").collect::<Vec<_>>();
    assert_eq!(browser_calls.len(), 20, "one record per connected browser session");
    assert!(browser_calls.iter().all(|c| !c["ended_at"].is_null()), "all ended");
}

#[test]
fn a_browser_agent_takes_a_warm_transfer_from_a_phone_caller() {
    let dir = tempdir("browser-agent");
    let (toml, config) = queue_config(&dir, 18623, "", "ring_timeout_secs = 30\n");
    // A console-only agent: no extension, no phone; calls ring in the browser.
    assert!(agents(&config, &["add", "ann", "--skills", "en"], "agentpass1").0);
    assert!(agents(&config, &["status", "ann", "available"], "").0);
    let served = serve(&dir, &toml);
    // The agent's microphone: quiet while the summary plays and the agent accepts, then a greeting.
    let wav8 = person_wav(&dir, "agent", "Hello, you are speaking with customer service. How can I help?", 16.0, 25.0);
    let agent_mic = dir.join("agent-48k.wav");
    run_ok(&["sox", wav8.to_str().unwrap(), "-r", "48000", agent_mic.to_str().unwrap()]);
    // The phone caller asks for a person, waits, and says what the problem is once connected.
    let p = |n: &str| dir.join(n).display().to_string();
    caller_wav(&dir, "ask", "I want to talk to a person.", 7.0, 32.0);
    person_wav(&dir, "problem", "I need help with my delivery, it is very late.", 0.0, 10.0);
    run_ok(&["sox", &p("ask.wav"), &p("problem.wav"), &p("caller.wav")]);
    let console = {
        let (url, mic, out, shot) = (format!("http://{}/agent", served.http), agent_mic.clone(), dir.join("agent-heard.wav"), dir.join("agent-browser.png"));
        std::thread::spawn(move || {
            node(
                "agent.mjs",
                &[("CONSOLE_URL", url.as_ref()), ("AGENT", "ann".as_ref()), ("PASSWORD", "agentpass1".as_ref()), ("MIC_WAV", mic.as_os_str()), ("SUMMARY_MS", "9000".as_ref()), ("LISTEN_MS", "60000".as_ref()), ("OUT_WAV", out.as_os_str()), ("SCREENSHOT", shot.as_os_str())],
            )
        })
    };
    // Give the console time to sign in and choose the browser before the caller asks.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let uri = format!("sip:ivr@{}", served.sip);
    let out = output_in_group(baresip(&dir, "caller", &dir.join("caller.wav"), "<sip:+4930111222@127.0.0.1>;regint=0", 15296, 21700).args(["-e", &format!("/dial {uri}"), "-t", "90"])).expect("baresip runs");
    let page = console.join().unwrap();
    keep(&dir.join("agent-browser.png"), "agent-browser-on-call.png");
    keep(&dir.join("agent-browser-ringing.png"), "agent-browser-ringing.png");
    assert!(page.get("failure").is_none(), "{page}\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(page["offered"].as_str().unwrap().contains("+4930111222"), "the call rang in the console with the caller's number: {page}");
    assert!(page["on_call"].as_str().unwrap().contains("on call"), "{page}");
    assert!(page.get("still_on_call").is_none(), "the caller's hang-up ended the agent's audio: {page}");

    let agent_text = heard_segments(&dir.join("agent-heard.wav"));
    let caller_heard = baresip_heard(&dir, "caller");
    assert_eq!(caller_heard.len(), 1);
    let caller_text = heard_segments(&caller_heard[0]);
    eprintln!("agent heard: {agent_text}\ncaller heard: {caller_text}");
    // The agent heard the summary and how to accept, then (bridged) the caller's problem.
    assert!(agent_text.contains("person"), "the summary names the caller's request: {agent_text}");
    assert!(agent_text.contains("accept"), "the agent is told how to accept: {agent_text}");
    assert!(words_heard(&agent_text, "accept", CALLER_WORDS) >= 2, "the agent hears the caller once bridged: {agent_text}");
    // The caller heard the bot, then the agent's browser microphone; never the summary.
    assert!(words_heard(&caller_text, "colleague", AGENT_WORDS) >= 2, "the caller hears the agent: {caller_text}");
    assert!(!caller_text.contains("accept"), "the summary is not spoken to the caller: {caller_text}");
    let calls = all_calls(&config);
    let call = calls.iter().find(|c| c["caller"].as_str().is_some_and(|c| c.contains("4930111222"))).expect("the caller's record");
    let kinds: Vec<&str> = call["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["queued", "agent_answered", "bridged"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

#[test]
fn a_browser_caller_keys_zero_and_is_bridged_to_a_phone_agent() {
    let dir = tempdir("browser-to-phone");
    let (toml, config) = queue_config(&dir, 18624, "", "ring_timeout_secs = 20\n");
    assert!(agents(&config, &["add", "bob", "--extension", "2001", "--skills", "en"], "agentpass1").0);
    assert!(agents(&config, &["status", "bob", "available"], "").0);
    let served = serve(&dir, &toml);
    // The agent's phone (baresip, G.711): answers automatically, keys 1 after the summary, then
    // greets the caller.
    let agent_mic = person_wav(&dir, "agent", "Hello, you are speaking with customer service. How can I help?", 14.0, 25.0);
    let account = format!("<sip:2001@{}>;auth_pass=agentpass1;regint=60;answermode=auto", served.sip);
    let agent_log = dir.join("agent.log");
    let mut agent = Group::spawn(baresip(&dir, "agent", &agent_mic, &account, 15298, 21800).stdin(std::process::Stdio::piped()).stdout(std::fs::File::create(&agent_log).unwrap()).stderr(std::process::Stdio::null()))
        .expect("baresip runs");
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    let mut keys = agent.0.stdin.take().unwrap();
    // The browser caller (Opus) presses 0 on the page's keypad after the greeting, waits, and
    // tells the agent the problem.
    let mic = {
        let wav8 = person_wav(&dir, "caller", "I need help with my delivery, it is very late.", 30.0, 12.0);
        let out = dir.join("caller-48k.wav");
        run_ok(&["sox", wav8.to_str().unwrap(), "-r", "48000", "-c", "1", "-b", "16", out.to_str().unwrap()]);
        out
    };
    let caller = {
        let (dir, http, mic) = (dir.clone(), served.http.clone(), mic.clone());
        std::thread::spawn(move || browser_call(&dir, &http, &mic, 50_000, &[("KEYS", "0"), ("KEYS_AT_MS", "5000")]))
    };
    assert!(wait_for(&agent_log, "established", 40), "the server never rang the agent: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    std::thread::sleep(std::time::Duration::from_secs(9));
    {
        use std::io::Write;
        keys.write_all(b"1").unwrap();
        keys.flush().unwrap();
    }
    let (page, caller_wav_path) = caller.join().unwrap();
    drop(keys);
    drop(agent);
    assert!(page.get("failure").is_none(), "{page}");
    assert!(page["events"].as_array().unwrap().iter().any(|e| e == "key"), "the page's key reached the call: {page}");
    let caller_text = heard_segments(&caller_wav_path);
    let agent_heard = baresip_heard(&dir, "agent");
    assert_eq!(agent_heard.len(), 1, "{}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    let agent_text = heard_segments(&agent_heard[0]);
    eprintln!("agent heard: {agent_text}\ncaller heard: {caller_text}");
    assert!(caller_text.contains("colleague"), "the browser caller heard the hand-over: {caller_text}");
    assert!(words_heard(&caller_text, "colleague", AGENT_WORDS) >= 2, "the browser caller hears the phone agent: {caller_text}");
    assert!(agent_text.contains("accept"), "the agent heard the summary: {agent_text}");
    assert!(words_heard(&agent_text, "accept", CALLER_WORDS) >= 2, "the phone agent hears the browser caller: {agent_text}");
    let calls = all_calls(&config);
    let call = calls.iter().find(|c| c["caller"] == "browser").expect("the browser call's record");
    let kinds: Vec<&str> = call["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["key", "queued", "agent_answered", "bridged"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

/// Speech segments (start, end in seconds) that `ivr vad` finds in `wav`.
fn speech(wav: &Path) -> Vec<(f64, f64)> {
    ivr_ok(&["vad", wav.to_str().unwrap()])
        .lines()
        .filter_map(|l| {
            let mut t = l.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
            Some((t.next()?, t.next()?))
        })
        .collect()
}

/// Voice to voice as a caller experiences it: from the end of their question in what their
/// microphone sent (`said`) to the start of the bot's answer in what they heard (`heard`), the
/// two on one time line. `None` when either is missing.
fn caller_voice_to_voice(said: &Path, heard: &Path) -> Option<f64> {
    let question_end = speech(said).first()?.1;
    let answer = speech(heard).into_iter().find(|(start, _)| *start > question_end - 0.2)?;
    Some(answer.0 - question_end)
}

/// The server's own voice-to-voice of a call's first answered turn (the store's stages).
fn server_voice_to_voice(call: &serde_json::Value) -> Option<f64> {
    call["turns"].as_array()?.iter().find_map(|t| t["voice_to_voice_ms"].as_f64())
}

/// The same question by a browser (Opus over WebRTC) and by a phone (baresip, G.711 over RTP),
/// one after the other on one server: voice to voice as each caller experiences it (their own
/// microphone and ear, jitter buffers and playout included) and as the server measures it.
/// Reported, not asserted (speed is measured in `scripts/bench-browser.sh`, which runs this);
/// asserted is only that both calls were answered and measured.
#[test]
fn voice_to_voice_of_a_browser_call_next_to_a_phone_call() {
    let dir = tempdir("browser-latency");
    let server = serve_sip(&dir, 18625, "");
    // scripts/bench-browser.sh sets IVR_PCAP to capture both calls on the wire (loopback) and
    // read the server's share there too.
    let capture = std::env::var("IVR_PCAP").ok().map(|pcap| {
        let g = Group::spawn(std::process::Command::new("tshark").args(["-q", "-i", "lo", "-f", "udp", "-w", &pcap]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null())).expect("tshark runs");
        std::thread::sleep(std::time::Duration::from_secs(2));
        g
    });
    let question = "How long do I have to return something?";
    let mic = browser_mic(&dir, "browser", question, 6.0, 10.0);
    let stereo = dir.join("browser-both.wav");
    let (page, _) = browser_call(&dir, &server.http, &mic, 20_000, &[("OUT_STEREO", stereo.to_str().unwrap())]);
    assert!(page.get("failure").is_none(), "{page}");
    let p = |n: &str| dir.join(n).display().to_string();
    run_ok(&["sox", &p("browser-both.wav"), &p("browser-said.wav"), "remix", "1"]);
    run_ok(&["sox", &p("browser-both.wav"), &p("browser-heard-2.wav"), "remix", "2"]);
    let browser = caller_voice_to_voice(&dir.join("browser-said.wav"), &dir.join("browser-heard-2.wav")).expect("the browser caller's question and answer");

    let phone_mic = caller_wav(&dir, "phone", question, 6.0, 10.0);
    let uri = format!("sip:ivr@{}", server.sip);
    output_in_group(baresip(&dir, "phone", &phone_mic, "<sip:+4930555000@127.0.0.1>;regint=0", 15302, 21900).args(["-e", &format!("/dial {uri}"), "-t", "40"])).expect("baresip runs");
    let dec = baresip_heard(&dir, "phone").into_iter().next().expect("baresip's recording");
    let enc = PathBuf::from(dec.to_str().unwrap().replace("-dec.wav", "-enc.wav"));
    let phone = caller_voice_to_voice(&enc, &dec).expect("the phone caller's question and answer");

    drop(capture);
    let calls = records(&server.records, 2, 10);
    let of = |who: &str| calls.iter().find(|c| (c["caller"] == "browser") == (who == "browser")).and_then(server_voice_to_voice);
    let (browser_server, phone_server) = (of("browser").expect("the browser call's turn"), of("phone").expect("the phone call's turn"));
    // What the server's jitter buffer held the caller's audio back by, on each path.
    let playout = |who: &str| calls.iter().find(|c| (c["caller"] == "browser") == (who == "browser")).map(|c| c["media"]["playout_delay_ms"].clone());
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()).unwrap_or_default();
    let report = serde_json::json!({
        "cpu": cpu,
        "browser": {"caller_ms": (browser * 1000.0).round(), "server_ms": browser_server.round(), "server_playout_ms": playout("browser")},
        "phone": {"caller_ms": (phone * 1000.0).round(), "server_ms": phone_server.round(), "server_playout_ms": playout("phone")},
        "browser_over_phone": ((browser / phone) * 100.0).round() / 100.0,
        "browser_inbound": page["inbound"],
        "page_recording_started_ms": page["recording_started_ms"],
    });
    eprintln!("voice to voice: {report}");
    std::fs::create_dir_all(repo().join("target/test-artifacts")).unwrap();
    std::fs::write(repo().join("target/test-artifacts/voice-to-voice-browser-vs-phone.json"), report.to_string()).unwrap();
    assert!(browser > 0.0 && phone > 0.0, "{report}");
}
