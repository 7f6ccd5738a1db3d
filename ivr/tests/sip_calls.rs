//! Real phone calls over SIP on loopback: `sipp` (Debian sip-tester) calls `ivr serve` over UDP and
//! over TCP: a recorded caller question streamed as RTP (the server's call record must show the
//! question heard and the knowledge answer given), OPTIONS, hold, RFC 4733 DTMF, REFER, CANCEL and
//! the RTP timeout. The test command runs inside a network namespace with only `lo` up.

mod common;
use common::*;
use std::time::Duration;

/// sipp's transport switch for each SIP transport the server listens on.
const TRANSPORTS: [(&str, &str); 2] = [("UDP", "u1"), ("TCP", "t1")];

#[test]
fn a_sipp_caller_asks_a_question_over_rtp_and_gets_the_knowledge_answer() {
    let dir = tempdir("sip-question");
    let server = serve_sip(&dir, 18596, "");
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "16000")];
    for (n, (name, transport)) in TRANSPORTS.iter().enumerate() {
        assert!(sipp_over("call-question.xml", &server.sip, &vars, &dir, transport), "{name} call");
        let recs = records(&server.records, n + 1, 10);
        assert_eq!(recs.len(), n + 1, "one call, one record");
        let r = &recs[n];
        assert!(said(r, "caller").iter().any(|t| t.to_lowercase().contains("deliver")), "{name}: {r}");
        assert!(said(r, "bot").iter().any(|t| t.contains("3 to 5 business days")), "{name}: {r}");
        assert_eq!(r["ended_by"], "caller");
        assert!(r["media"]["packets_in"].as_u64().unwrap() > 300, "{r}");
        assert!(r["media"]["packets_out"].as_u64().unwrap() > 300, "{r}");
        assert_eq!(r["voice_to_voice_ms"].as_array().unwrap().len(), 1, "{r}");
        // What the bot understood is kept with the caller's line.
        let line = r["turns"].as_array().unwrap().iter().find(|t| t["speaker"] == "caller").unwrap();
        assert!(line["intent"].as_str().is_some_and(|i| !i.is_empty()), "{name}: {line}");
        assert!(line["confidence"].as_f64().is_some_and(|c| c > 0.0 && c <= 1.0), "{name}: {line}");
        assert_eq!(line["language"], "en", "{name}: {line}");
        assert_stereo_recording(r);
    }
    // The API has the same calls; the metrics counted the same answered turns as the store holds.
    let (status, list) = get(&server.http, "/api/v1/calls?limit=10");
    assert_eq!(status, 200, "{list}");
    let listed = list["calls"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    let (status, one) = get(&server.http, &format!("/api/v1/calls/{}", listed[0]["id"].as_str().unwrap()));
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["transcript"], records(&server.records, 2, 0)[1]["transcript"], "the newest call, as the export has it");
    assert_eq!(get(&server.http, "/api/v1/calls/no-such-call").0, 404);
    let (status, bad) = get(&server.http, "/api/v1/calls?limit=0");
    assert!(status == 400 && bad["error"]["message"].as_str().unwrap().contains("limit"), "{bad}");
    let stored: usize = records(&server.records, 2, 0)
        .iter()
        .map(|c| c["turns"].as_array().unwrap().iter().filter(|t| t["voice_to_voice_ms"].is_number()).count())
        .sum();
    let metrics = reqwest::blocking::get(format!("http://{}/metrics", server.http)).unwrap().text().unwrap();
    let counted: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ivr_turn_stage_seconds_count{stage=\"voice_to_voice\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no voice_to_voice count in {metrics}"));
    assert!(stored >= 2 && counted == stored, "metrics {counted}, store {stored}");
}

/// The call's recording: stereo 16 kHz as long as the call, the bot's greeting on the right
/// channel while the caller is silent, the caller's question on the left (from 6 s on).
fn assert_stereo_recording(r: &serde_json::Value) {
    let path = r["recording"].as_str().unwrap_or_else(|| panic!("no recording: {r}"));
    let mut wav = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = wav.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 16_000), "{path}");
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let secs = samples.len() as f64 / 2.0 / 16_000.0;
    let duration = r["duration_secs"].as_f64().unwrap();
    assert!((secs - duration).abs() < 1.0, "{secs} s recorded of a {duration} s call");
    let rms = |ch: usize, from: f64, to: f64| {
        let frames = &samples[(from * 32_000.0) as usize..((to * 32_000.0) as usize).min(samples.len())];
        let xs: Vec<f64> = frames.iter().skip(ch).step_by(2).map(|s| *s as f64 / 32768.0).collect();
        (xs.iter().map(|x| x * x).sum::<f64>() / xs.len().max(1) as f64).sqrt()
    };
    assert!(rms(1, 0.5, 3.0) > 0.01 && rms(0, 0.5, 3.0) < 0.005, "greeting on the right only: {path}");
    assert!(rms(0, 6.5, 8.5) > 0.01, "the question on the left: {path}");
}

#[test]
fn options_hold_dtmf_zero_and_a_hangup_from_the_bot() {
    let dir = tempdir("sip-dtmf");
    let server = serve_sip(&dir, 18597, "");
    for (n, (name, transport)) in TRANSPORTS.iter().enumerate() {
        // A keep-alive probe.
        assert!(sipp_over("options.xml", &server.sip, &[], &dir, transport), "{name} OPTIONS");
        // Hold and unhold by re-INVITE, then the caller's BYE.
        assert!(sipp_over("hold.xml", &server.sip, &[], &dir, transport), "{name} hold");
        // 0 pressed during the greeting (RFC 4733): the caller asked for a person; with no transfer
        // target configured the bot ends the call with BYE, which sipp answers.
        assert!(sipp_over("dtmf-zero.xml", &server.sip, &[], &dir, transport), "{name} DTMF 0");
        let recs = records(&server.records, 2 * n + 2, 10);
        assert_eq!(recs.len(), 2 * n + 2);
        let (held, keyed) = (&recs[2 * n], &recs[2 * n + 1]);
        assert_eq!(held["ended_by"], "caller", "{name}, the held call: {held}");
        let action = &keyed["actions"][0];
        assert_eq!(action["action"], "transfer", "{name}: {keyed}");
        assert_eq!(action["reason"], "caller_request");
        assert_eq!(keyed["ended_by"], "bot");
    }
}

#[test]
fn a_transfer_is_a_refer_to_the_configured_target_carrying_the_summary() {
    let dir = tempdir("sip-refer");
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let webhook = webhook_bodies(hook, TRANSPORTS.len());
    let server = serve_sip(&dir, 18598, &format!("transfer_target = \"sip:agent@127.0.0.1:5070\"\nhandoff_webhook = \"http://{hook_addr}/handoff\"\n"));
    for (n, (name, transport)) in TRANSPORTS.iter().enumerate() {
        // The caller presses 0, accepts the REFER (whose Refer-To carries the summary in its
        // X-Summary and User-to-User URI headers, or sipp fails), reports the target answered,
        // and is hung up on.
        assert!(sipp_over("refer.xml", &server.sip, &[], &dir, transport), "{name} REFER");
        let recs = records(&server.records, n + 1, 10);
        assert_eq!(recs[n]["actions"][0]["reason"], "caller_request", "{name}: {}", recs[n]);
    }
    // The CRM got each hand-off.
    let bodies = webhook.join().unwrap();
    assert_eq!(bodies.len(), TRANSPORTS.len());
    for b in bodies {
        let doc: serde_json::Value = serde_json::from_str(&b).expect("a JSON hand-off");
        assert_eq!(doc["to"], "sip:agent@127.0.0.1:5070");
        // (A later call from the same URI opens with "Second call this week.")
        assert!(doc["summary"].as_str().unwrap().contains("Goal:"), "{doc}");
    }
}

#[test]
fn a_caller_who_gives_up_while_it_rings_is_cancelled() {
    let dir = tempdir("sip-cancel");
    let server = serve_sip(&dir, 18599, "ring_ms = 3000\n");
    for (name, transport) in TRANSPORTS {
        let vars = [("question", "/dev/null"), ("listen_ms", "0")];
        assert!(sipp_over("cancel.xml", &server.sip, &vars, &dir, transport), "{name} CANCEL");
    }
    // Never answered, so no call was run and none recorded.
    std::thread::sleep(Duration::from_millis(500));
    assert!(records(&server.records, 0, 0).is_empty());
}

#[test]
fn a_call_whose_media_stops_is_ended() {
    let dir = tempdir("sip-no-media");
    let server = serve_sip(&dir, 18600, "rtp_timeout_secs = 3\n");
    for (n, (name, transport)) in TRANSPORTS.iter().enumerate() {
        assert!(sipp_over("no-media.xml", &server.sip, &[], &dir, transport), "{name}: BYE after the RTP timeout");
        let recs = records(&server.records, n + 1, 10);
        assert_eq!(recs[n]["ended_by"], "rtp timeout", "{name}: {}", recs[n]);
    }
}

#[test]
fn a_keypad_transfer_sends_rfc_4733_digits_then_hangs_up() {
    let dir = tempdir("sip-keypad-transfer");
    // Behind a PBX that transfers on a feature code: "#1" and extension 2001.
    let server = serve_sip(&dir, 18602, "transfer_dtmf = \"#12001\"\n");
    // tshark on loopback decodes the RTP sent to sipp's media ports and prints each event packet.
    let mut tshark = Group::spawn(
        std::process::Command::new("tshark")
            .args(["-i", "lo", "-l", "-f", "udp portrange 17000-17999", "-o", "rtp.heuristic_rtp:TRUE", "-o", "rtpevent.event_payload_type_value:101", "-Y", "rtpevent"])
            .args(["-T", "fields", "-e", "rtpevent.event_id", "-e", "rtpevent.end_of_event", "-e", "rtp.timestamp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .expect("tshark runs (scripts/setup.sh installs it)");
    {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(tshark.0.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("Capturing on") {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "tshark did not start capturing");
        }
    }
    // The caller presses 0 for a person; the bot says so, keys the transfer and hangs up.
    assert!(sipp_over("dtmf-zero.xml", &server.sip, &[], &dir, "u1"), "BYE after the keypad transfer");
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("kill").args(["-INT", &tshark.id().to_string()]).status();
    let mut events = String::new();
    {
        use std::io::Read;
        tshark.0.stdout.take().unwrap().read_to_string(&mut events).unwrap();
    }
    // One key press per RTP timestamp; the digits in order.
    let mut presses: Vec<(String, String)> = Vec::new();
    for l in events.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if let [id, _end, ts] = f[..] {
            if presses.last().is_none_or(|(_, t)| t != ts) {
                presses.push((id.to_string(), ts.to_string()));
            }
        }
    }
    let ids: Vec<&str> = presses.iter().map(|(id, _)| id.as_str()).collect();
    // RFC 4733 event codes: '#' is 11.
    assert_eq!(ids, ["11", "1", "2", "0", "0", "1"], "{events}");
    assert!(events.lines().filter(|l| l.split('\t').nth(1) == Some("1")).count() >= 18, "three End packets per press: {events}");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["actions"][0]["action"], "transfer", "{}", recs[0]);
    assert_eq!(recs[0]["ended_by"], "bot");
}

#[test]
fn a_caller_without_rfc_4733_keys_and_is_keyed_to_by_sip_info() {
    let dir = tempdir("sip-info-keypad");
    let server = serve_sip(&dir, 18603, "transfer_dtmf = \"#12001\"\n");
    // 0 by INFO asks for a person; the keypad transfer goes out as six INFOs, in order, then BYE.
    for (n, (name, transport)) in TRANSPORTS.iter().enumerate() {
        assert!(sipp_over("info-keypad.xml", &server.sip, &[], &dir, transport), "{name}: INFO keypad");
        let recs = records(&server.records, n + 1, 10);
        assert_eq!(recs[n]["actions"][0]["reason"], "caller_request", "{name}: {}", recs[n]);
        assert_eq!(recs[n]["ended_by"], "bot");
    }
}

#[test]
fn garbage_on_the_sip_port_does_not_disturb_a_call() {
    let dir = tempdir("sip-garbage");
    let server = serve_sip(&dir, 18604, "");
    let sip: std::net::SocketAddr = server.sip.parse().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Random bytes, broken requests and oversize datagrams over UDP, and a TCP stream of junk,
    // for the whole call, from other ports of the same host.
    let blaster = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut tcp = std::net::TcpStream::connect(sip).ok();
            let mut x = 0x2545f4914f6cdd1du64;
            let mut sent = 0u64;
            let broken = [
                &b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nContent-Length: 99999\r\n\r\n"[..],
                b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n\r\n",
                b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnothing\r\n\r\n",
                b"\x00\x01\x02\r\n\r\n",
            ];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let junk: Vec<u8> = match x % 4 {
                    0 => (0..(x >> 8) % 1400).map(|i| (x >> (i % 56)) as u8).collect(),
                    // Larger than any SIP message we accept (513 territory).
                    1 => vec![b'A'; 65_000],
                    _ => broken[(x >> 3) as usize % broken.len()].to_vec(),
                };
                let _ = udp.send_to(&junk, sip);
                if let Some(t) = tcp.as_mut() {
                    use std::io::Write;
                    if t.write_all(&junk[..junk.len().min(200)]).is_err() {
                        tcp = std::net::TcpStream::connect(sip).ok();
                    }
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
    };
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "14000")];
    let ok = sipp_over("call-question.xml", &server.sip, &vars, &dir, "u1");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = blaster.join().unwrap();
    assert!(ok, "the call under a stream of garbage");
    assert!(sent > 1000, "{sent} junk messages");
    let recs = records(&server.records, 1, 10);
    assert!(said(&recs[0], "bot").iter().any(|t| t.contains("3 to 5 business days")), "{}", recs[0]);
    assert_eq!(health(&server.http)["status"], "ok");
}

/// SIGTERM: new calls are refused with 503 at once, the call in progress goes on for the grace
/// period, then hears the bot's goodbye and gets BYE; the server exits cleanly and the call's
/// record says the shutdown ended it.
#[test]
fn sigterm_refuses_new_calls_and_ends_the_ones_in_progress_with_a_goodbye() {
    let dir = tempdir("sip-sigterm");
    let mut server = serve_sip(&dir, 18604, "shutdown_grace_secs = 2\n");
    let (sip, d) = (server.sip.clone(), dir.clone());
    let on_the_line = std::thread::spawn(move || sipp("until-bye.xml", &sip, &[], &d));
    std::thread::sleep(Duration::from_secs(3));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(sipp("refused.xml", &server.sip, &[], &dir), "a new call is refused with 503 while stopping");
    assert!(on_the_line.join().unwrap(), "the call in progress ends with the server's BYE");
    let status = server.wait_exit(30).expect("the server exits");
    assert!(status.success(), "{status:?}");
    let recs = records(&server.records, 1, 5);
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["ended_by"], "shutdown", "{r}");
    let goodbye = voice_pipeline::session::SessionConfig::default().texts.shutdown;
    assert_eq!(said(r, "bot").last().map(String::as_str), Some(goodbye.as_str()), "{r}");
}

/// `kill -9` of the server with three calls in progress, each past a completed turn: after a
/// restart every completed turn is in the store with its words, and those calls are marked
/// interrupted.
#[test]
fn a_killed_server_loses_no_completed_turn_and_marks_its_calls_interrupted() {
    let dir = tempdir("sip-kill9");
    let mut server = serve_sip(&dir, 18605, "");
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "60000")];
    let _callers: Vec<SippCall> = (0..3).map(|k| sipp_spawn("call-question.xml", &server.sip, &vars, &dir, k)).collect();
    // Wait until each call has had its question heard and answered.
    let answered = |c: &serde_json::Value| said(c, "bot").iter().any(|t| t.contains("3 to 5 business days"));
    let until = std::time::Instant::now() + Duration::from_secs(90);
    let mut calls = Vec::new();
    while std::time::Instant::now() < until {
        calls = all_calls(&server.records);
        if calls.len() == 3 && calls.iter().all(answered) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(calls.len() == 3 && calls.iter().all(answered), "three answered calls in progress: {calls:?}");
    server.signal("KILL");
    server.wait_exit(10).expect("killed");
    // The same config, the same store: the new server marks the cut-off calls.
    let _again = serve_sip(&dir, 18606, "");
    let after = records(&server.records, 3, 10);
    assert_eq!(after.len(), 3, "{after:?}");
    for (before, after) in calls.iter().zip(&after) {
        assert_eq!(after["ended_by"], "interrupted", "{after}");
        assert!(said(after, "caller").iter().any(|t| t.to_lowercase().contains("deliver")), "{after}");
        assert!(answered(after), "{after}");
        assert!(after["turns"].as_array().unwrap().len() >= before["turns"].as_array().unwrap().len(), "{before}\n{after}");
    }
}

/// Bad HTTP while a call is in progress: a client sending its request a byte a second is cut off
/// by the header timeout, garbage and unknown paths get their 400 and 404, and the call goes on to
/// its answer as if nothing happened.
#[test]
fn bad_http_clients_do_not_disturb_a_call() {
    use std::io::{Read, Write};
    let dir = tempdir("sip-bad-http");
    let server = serve_sip(&dir, 18607, "");
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let (sip, d, q) = (server.sip.clone(), dir.clone(), question.clone());
    let call = std::thread::spawn(move || sipp("call-question.xml", &sip, &[("question", q.to_str().unwrap()), ("listen_ms", "16000")], &d));
    // A byte a second: the server closes the connection after its 5 s header timeout.
    let mut slow = std::net::TcpStream::connect(&server.http).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = std::time::Instant::now();
    let mut cut_off = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if slow.write_all(&[*b]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        if started.elapsed() > Duration::from_secs(12) {
            break;
        }
    }
    let mut rest = Vec::new();
    let closed = cut_off || slow.read_to_end(&mut rest).is_ok();
    assert!(closed && started.elapsed() < Duration::from_secs(15), "the slow client was cut off after {:?}", started.elapsed());
    assert!(request(&server.http, b"\x00\x01 nonsense\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert_eq!(get(&server.http, "/no/such/path").0, 404);
    // Bodies: too big (413), malformed JSON (400 saying where), a note on a call that is not there
    // (404); each with the JSON error shape.
    let http = reqwest::blocking::Client::new();
    let post = |body: Vec<u8>| {
        let r = http.post(format!("http://{}/api/v1/calls/nope/notes", server.http)).header("content-type", "application/json").body(body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap_or_default())
    };
    // Two megabytes announced, as curl sends a large body: the 413 comes before the body is sent.
    let big = request(&server.http, b"POST /api/v1/calls/nope/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
    assert!(big.starts_with("HTTP/1.1 413") && big.contains(r#""status":413"#), "{big}");
    let (status, body) = post(br#"{"author": "qa", "text": "unterminated"#.to_vec());
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line 1 column"), "the error says where: {body}");
    assert_eq!(post(br#"{"author": "qa", "text": "fine"}"#.to_vec()).0, 404);
    assert!(call.join().unwrap(), "the call ran to its end");
    let r = &records(&server.records, 1, 10)[0];
    assert!(said(r, "bot").iter().any(|t| t.contains("3 to 5 business days")), "{r}");
    // A note on the call itself is kept with it.
    let id = r["id"].as_str().unwrap();
    let posted = http
        .post(format!("http://{}/api/v1/calls/{id}/notes", server.http))
        .json(&serde_json::json!({"author": "supervisor", "text": "Answered well."}))
        .send()
        .unwrap();
    assert_eq!(posted.status().as_u16(), 201);
    let (status, call) = get(&server.http, &format!("/api/v1/calls/{id}"));
    assert_eq!(status, 200);
    assert_eq!(call["notes"][0]["text"], "Answered well.", "{call}");
}
