//! RFC 4475's 49 torture messages sent to `ivr serve` one by one, over UDP and then each on a TCP
//! connection of its own: every one is answered as a UAS should (valid ones processed, a new call
//! rung and then cancelled; invalid ones 400 or the specific status; responses with no transaction
//! dropped); afterwards the server still takes a real call and answers the caller's question. The
//! same messages and expectations drive the in-memory test `sip-bridge/tests/rfc4475.rs`.

#[path = "../../sip-bridge/tests/rfc4475/cases.rs"]
mod cases;
mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use cases::{answer, follow_up, Want, CASES};
use common::*;
use sip_bridge::sip::message::{frame, HeaderName, Message, Method};

/// One peer of the server: a UDP socket, or a TCP connection of its own.
enum Wire {
    Udp(UdpSocket, String),
    Tcp(TcpStream, Vec<u8>),
}

impl Wire {
    fn open(tcp: bool, server: &str) -> Wire {
        if tcp {
            let s = TcpStream::connect(server).expect("TCP connect");
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            Wire::Tcp(s, Vec::new())
        } else {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            Wire::Udp(s, server.to_string())
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        match self {
            Wire::Udp(s, to) => {
                s.send_to(bytes, to.as_str()).expect("UDP send");
            }
            // The server may have closed a connection it cannot frame; what it sent is still read.
            Wire::Tcp(s, _) => {
                let _ = s.write_all(bytes);
            }
        }
    }

    /// What arrives within `wait`, stopping early once `enough` says so; 100 Trying and exact
    /// retransmissions are left out.
    fn receive(&mut self, wait: Duration, enough: impl Fn(&[Message]) -> bool) -> Vec<Message> {
        let (mut got, mut seen): (Vec<Message>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        let until = Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < until && !enough(&got) {
            let mut datagrams = Vec::new();
            match self {
                Wire::Udp(s, _) => {
                    if let Ok(n) = s.recv(&mut buf) {
                        datagrams.push(buf[..n].to_vec());
                    }
                }
                Wire::Tcp(s, pending) => {
                    if let Ok(n) = s.read(&mut buf) {
                        pending.extend_from_slice(&buf[..n]);
                    }
                    while let Ok(Some(n)) = frame(pending) {
                        datagrams.push(pending.drain(..n).collect());
                    }
                }
            }
            for d in datagrams {
                let m = answer(&d);
                if m.status() != Some(100) && !seen.contains(&d) {
                    seen.push(d);
                    got.push(m);
                }
            }
        }
        got
    }
}

/// Sends every case and checks its answers; returns the failures and when each case was sent.
/// `not_before`: when each case may be sent at the earliest.
fn check(server: &str, tcp: bool, not_before: &[Instant]) -> (Vec<String>, Vec<Instant>) {
    let (mut failures, mut sent_at) = (Vec::new(), Vec::new());
    for (i, case) in CASES.iter().enumerate() {
        if let Some(t) = not_before.get(i) {
            std::thread::sleep(t.saturating_duration_since(Instant::now()));
        }
        sent_at.push(Instant::now());
        let bytes = cases::load(case.name);
        let wants = if tcp { case.tcp } else { case.udp };
        let mut wire = Wire::open(tcp, server);
        wire.send(&bytes);
        // Silence is waited for; an answer is read as soon as it is complete.
        let wait = Duration::from_millis(if wants.is_empty() { 700 } else { 5_000 });
        let mut answers = wire.receive(wait, |got| got.len() >= wants.len() && !wants.is_empty());
        answers.extend(wire.receive(Duration::from_millis(150), |_| false));
        let transport = if tcp { "TCP" } else { "UDP" };
        let fail = |why: String| format!("{} ({}) over {transport}: {why}", case.name, case.section);
        let got: Vec<u16> = answers.iter().filter_map(Message::status).collect();
        if got.len() != wants.len() {
            failures.push(fail(format!("wanted {wants:?}, got {got:?}")));
            continue;
        }
        // The INVITEs sent (a TCP stream may hold two messages), for CANCEL and ACK.
        let mut sent = Vec::new();
        let mut rest = &bytes[..];
        while let Ok(Some(n)) = frame(rest) {
            sent.extend(Message::parse(&rest[..n]).ok());
            rest = &rest[n..];
        }
        sent.extend(Message::parse(&bytes).ok());
        for (want, answer) in wants.iter().zip(&answers) {
            let status = answer.status().unwrap_or(0);
            let ok = match want {
                Want::Status(s) => s.contains(&status),
                Want::Ring => status == 180,
                Want::Register(_) => status == 405, // `ivr serve` here has no registrar
            };
            if !ok {
                failures.push(fail(format!("wanted {want:?}, got {status} {:?}", answer.start)));
                continue;
            }
            let invite = sent.iter().find(|m| m.method() == Some(&Method::Invite) && m.call_id() == answer.call_id());
            let Some(invite) = invite else { continue };
            // Over TCP the CANCEL goes on a connection of its own: what follows the INVITE on its
            // stream need not frame (dblreq's INVITE is followed by three stray octets). The 487
            // still comes on the INVITE's connection.
            let mut side = if tcp { Some(Wire::open(true, server)) } else { None };
            if status == 180 {
                let cancel = follow_up(invite, "CANCEL", invite.header(HeaderName::To).unwrap());
                let via = side.as_mut().unwrap_or(&mut wire);
                via.send(&cancel);
                let mut after = via.receive(Duration::from_secs(5), |got| got.len() >= if tcp { 1 } else { 2 });
                if tcp {
                    after.extend(wire.receive(Duration::from_secs(5), |got| !got.is_empty()));
                }
                let mut statuses: Vec<u16> = after.iter().filter_map(Message::status).collect();
                statuses.sort();
                if statuses != [200, 487] {
                    let what: Vec<_> = after.iter().map(|m| (&m.start, m.header(HeaderName::CSeq).unwrap_or(""))).collect();
                    failures.push(fail(format!("CANCEL got {what:?}, wanted 200 and 487")));
                }
            }
            if status >= 300 || status == 180 {
                side.as_mut().unwrap_or(&mut wire).send(&follow_up(invite, "ACK", answer.header(HeaderName::To).unwrap()));
            }
        }
    }
    (failures, sent_at)
}

#[test]
fn the_rfc_4475_torture_messages_over_udp_and_tcp_then_a_real_call() {
    let dir = tempdir("sip-torture");
    // Calls ring before they are answered, so that a torture INVITE can be cancelled; the INVITEs
    // all come from this host, faster than the default flood limit allows.
    let server = serve_sip(&dir, 18611, "ring_ms = 3000\ninvites_per_sec = 100.0\n");
    let (mut failures, udp_sent) = check(&server.sip, false, &[]);
    // The same message again within 32 s (Timer J) is a retransmission whatever the transport (RFC
    // 3261 17.2.3 keys a transaction by branch, sent-by and method): each goes over TCP once its
    // UDP transaction is over.
    let after_udp: Vec<Instant> = udp_sent.iter().map(|t| *t + Duration::from_secs(33)).collect();
    failures.extend(check(&server.sip, true, &after_udp).0);
    assert!(failures.is_empty(), "{} of 98 not answered as a UAS should:\n{}", failures.len(), failures.join("\n"));
    // No torture call was answered, so none ran and none is recorded.
    assert!(records(&server.records, 0, 0).is_empty());
    // The server still takes a call, and answers the caller's question.
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "16000")];
    assert!(sipp_over("call-question.xml", &server.sip, &vars, &dir, "u1"), "a call after the torture");
    let recs = records(&server.records, 1, 10);
    assert!(said(&recs[0], "bot").iter().any(|t| t.contains("3 to 5 business days")), "{}", recs[0]);
    assert!(sipp_over("options.xml", &server.sip, &[], &dir, "t1"), "TCP still served");
    assert_eq!(health(&server.http)["status"], "ok");
}
