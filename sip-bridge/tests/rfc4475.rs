//! RFC 4475's 49 torture messages, each given to the sans-IO endpoint as a UDP datagram and as a
//! TCP stream of its own, with and without a registrar: every one is answered as a UAS should
//! (valid ones processed, invalid ones 400 or the specific status, responses with no transaction
//! dropped), and everything the endpoint sends parses back. The same messages go over real
//! sockets to `ivr serve` in `ivr/tests/sip_torture.rs`.

#[path = "rfc4475/cases.rs"]
mod cases;

use std::net::SocketAddr;
use std::time::Duration;

use cases::{answer, follow_up, Want, CASES};
use sip_bridge::sip::endpoint::{CallEvent, Endpoint, EndpointConfig, Output, Peer};
use sip_bridge::sip::message::{best_effort_response, frame, HeaderName, Message, Method};
use sip_bridge::sip::registrar::{Account, Registrar, RegistrarConfig};

const FROM: &str = "127.0.0.1:5061";

fn endpoint(registrar: bool) -> Endpoint {
    let cfg = EndpointConfig { invites_per_sec: 1000.0, ..EndpointConfig::default() };
    let ep = Endpoint::new(cfg, "127.0.0.1:5060".parse().unwrap());
    if !registrar {
        return ep;
    }
    let accounts = ["user", "watson", "j.user"].iter().map(|u| Account { user: u.to_string(), password: "secret".into() }).collect();
    ep.with_registrar(Registrar::new(RegistrarConfig { accounts, ..RegistrarConfig::default() }, [7; 16]))
}

/// The messages the endpoint sent (parsed: they must be valid SIP), ringing every new call.
fn drain(ep: &mut Endpoint, now: Duration) -> Vec<Message> {
    let mut sent = Vec::new();
    while let Some(o) = ep.poll() {
        match o {
            Output::Send { bytes, .. } => sent.push(answer(&bytes)),
            Output::Call(CallEvent::Incoming { call_id, .. }) => ep.ringing(&call_id, now),
            Output::Call(_) => {}
        }
    }
    sent.retain(|m| m.status() != Some(100));
    sent
}

/// The messages a peer's bytes hold: one datagram, or what a TCP stream frames (with the 400 the
/// server sends before closing a stream that cannot be framed).
fn messages(bytes: &[u8], tcp: bool) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    if !tcp {
        return (vec![bytes.to_vec()], None);
    }
    let (mut out, mut rest) = (Vec::new(), bytes);
    loop {
        match frame(rest) {
            Ok(Some(n)) => {
                out.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, best_effort_response(rest, e.status(), &e.to_string())),
        }
    }
}

fn check(registrar: bool, tcp: bool) -> Vec<String> {
    let mut ep = endpoint(registrar);
    let mut now = Duration::from_secs(1);
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let addr: SocketAddr = FROM.parse().unwrap();
        let peer = if tcp { Peer::Tcp(i as u64, addr) } else { Peer::Udp(addr) };
        let (sent, closing) = messages(&cases::load(case.name), tcp);
        let mut answers = Vec::new();
        for bytes in &sent {
            ep.on_message(bytes, peer, now);
            answers.extend(drain(&mut ep, now));
        }
        answers.extend(closing.map(|b| answer(&b)));
        let wants = if tcp { case.tcp } else { case.udp };
        let got: Vec<u16> = answers.iter().filter_map(Message::status).collect();
        let fail = |why: String| format!("{} ({}) over {}: {why}", case.name, case.section, if tcp { "TCP" } else { "UDP" });
        if got.len() != wants.len() {
            failures.push(fail(format!("wanted {wants:?}, got {got:?}")));
            continue;
        }
        for (want, answer) in wants.iter().zip(&answers) {
            let status = answer.status().unwrap_or(0);
            let ok = match want {
                Want::Status(s) => s.contains(&status),
                Want::Ring => status == 180,
                Want::Register(s) if registrar => s.contains(&status),
                Want::Register(_) => status == 405,
            };
            if !ok {
                failures.push(fail(format!("wanted {want:?}, got {status} {:?}", answer.start)));
                continue;
            }
            // The INVITE this answers, among what was sent.
            let invite = sent.iter().filter_map(|b| Message::parse(b).ok()).find(|m| m.method() == Some(&Method::Invite) && m.call_id() == answer.call_id());
            let Some(invite) = invite else { continue };
            now += Duration::from_millis(10);
            if status == 180 {
                let to = invite.header(HeaderName::To).unwrap().to_string();
                ep.on_message(&follow_up(&invite, "CANCEL", &to), peer, now);
                let after: Vec<u16> = drain(&mut ep, now).iter().filter_map(Message::status).collect();
                if after != [200, 487] {
                    failures.push(fail(format!("CANCEL got {after:?}, wanted [200, 487]")));
                }
            }
            if status >= 300 || status == 180 {
                ep.on_message(&follow_up(&invite, "ACK", answer.header(HeaderName::To).unwrap()), peer, now);
                let more = drain(&mut ep, now);
                if !more.is_empty() {
                    failures.push(fail(format!("the ACK was answered: {:?}", more.iter().map(|m| &m.start).collect::<Vec<_>>())));
                }
            }
        }
        // The next message arrives after every timer of this one has run out (several torture
        // messages share a branch and sent-by, and would otherwise be retransmissions of each other).
        now += Duration::from_secs(40);
        ep.on_timeout(now);
        drain(&mut ep, now);
    }
    // Still a working server: an OPTIONS is answered.
    let options = "OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-after\r\nMax-Forwards: 70\r\n\
        From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: after-torture\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    ep.on_message(options.as_bytes(), Peer::Udp(FROM.parse().unwrap()), now);
    let after: Vec<u16> = drain(&mut ep, now).iter().filter_map(Message::status).collect();
    if after != [200] {
        failures.push(format!("after the torture an OPTIONS got {after:?}"));
    }
    failures
}

#[test]
fn the_49_messages_are_all_there() {
    assert_eq!(CASES.len(), 49);
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 49, "one case per message");
    for c in &CASES {
        assert!(!cases::load(c.name).is_empty(), "{}", c.name);
    }
}

#[test]
fn every_torture_message_is_answered_as_a_uas_should() {
    let mut failures = Vec::new();
    for registrar in [false, true] {
        for tcp in [false, true] {
            failures.extend(check(registrar, tcp).into_iter().map(|f| format!("{f}{}", if registrar { " (registrar on)" } else { "" })));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
