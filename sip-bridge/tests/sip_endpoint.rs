//! The SIP endpoint replayed message by message in simulated time: answering, retransmissions,
//! CANCEL, BYE, OPTIONS, INFO DTMF, hold, limits and bad requests. Each test is one SIP feature.

use std::net::SocketAddr;
use std::time::Duration;

use sip_bridge::sdp::Codec;
use sip_bridge::sip::endpoint::{CallEvent, EndReason, Endpoint, EndpointConfig, Output, Peer};
use sip_bridge::sip::message::{HeaderName, Message, Method};

const CALLER: &str = "127.0.0.1:5061";

fn caller() -> Peer {
    Peer::Udp(CALLER.parse().unwrap())
}

fn endpoint(cfg: EndpointConfig) -> Endpoint {
    Endpoint::new(cfg, "127.0.0.1:5060".parse().unwrap())
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn invite_with(call_id: &str, branch: &str, sdp: &str) -> String {
    format!(
        "INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\r\nMax-Forwards: 70\r\n\
         From: \"Caller\" <sip:+4930111222@127.0.0.1>;tag=caller1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{CALLER}>\r\nRecord-Route: <sip:proxy@127.0.0.1:5070;lr>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn invite(call_id: &str) -> String {
    invite_with(call_id, "z9hG4bK-inv1", SDP)
}

fn in_dialog(method: &str, call_id: &str, to_tag: &str, cseq: u32, branch: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\nMax-Forwards: 70\r\n\
         From: \"Caller\" <sip:+4930111222@127.0.0.1>;tag=caller1\r\nTo: <sip:ivr@127.0.0.1>;tag={to_tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Everything the endpoint wants done: the messages it sends (parsed) and the call events.
fn drain(ep: &mut Endpoint) -> (Vec<(Peer, Message)>, Vec<CallEvent>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll() {
        match o {
            Output::Send { to, bytes } => sent.push((to, Message::parse(&bytes).expect("we send valid SIP"))),
            Output::Call(e) => events.push(e),
        }
    }
    (sent, events)
}

fn statuses(sent: &[(Peer, Message)]) -> Vec<u16> {
    sent.iter().filter_map(|(_, m)| m.status()).collect()
}

/// Answers a call and returns the 200 OK.
fn answered(ep: &mut Endpoint, call_id: &str) -> Message {
    ep.on_message(invite(call_id).as_bytes(), caller(), ms(0));
    let (sent, events) = drain(ep);
    assert_eq!(statuses(&sent), vec![100]);
    assert!(matches!(&events[..], [CallEvent::Incoming { media, .. }] if media.codec == Codec::Pcmu && media.telephone_event == Some(101)), "{events:?}");
    ep.accept(call_id, "127.0.0.1:7000".parse().unwrap(), ms(20));
    let (sent, _) = drain(ep);
    let (to, ok) = sent.into_iter().next().expect("200 OK");
    assert_eq!(to, caller(), "the answer goes where the INVITE came from");
    assert_eq!(ok.status(), Some(200));
    ok
}

#[test]
fn invite_is_answered_with_sdp_and_the_answer_is_retransmitted_until_acked() {
    let mut ep = endpoint(EndpointConfig::default());
    let ok = answered(&mut ep, "call-1");
    let body = String::from_utf8(ok.body.clone()).unwrap();
    assert!(body.contains("m=audio 7000 RTP/AVP 0 101"), "{body}");
    assert!(ok.header(HeaderName::Contact).is_some() && ok.to_tag().is_some());
    // No ACK yet: the 200 OK goes again after 500 ms, then 1 s later.
    let mut resent = Vec::new();
    for t in (20..2000).step_by(10) {
        ep.on_timeout(ms(t));
        let (sent, _) = drain(&mut ep);
        if !sent.is_empty() {
            resent.push(t);
        }
    }
    assert_eq!(resent, vec![520, 1520]);
    let tag = ok.to_tag().unwrap().to_string();
    ep.on_message(in_dialog("ACK", "call-1", &tag, 1, "z9hG4bK-ack1", "", "").as_bytes(), caller(), ms(2000));
    let (_, events) = drain(&mut ep);
    assert_eq!(events, vec![CallEvent::Confirmed { call_id: "call-1".into() }]);
    ep.on_timeout(ms(6000));
    assert!(drain(&mut ep).0.is_empty(), "no more retransmissions after the ACK");
}

#[test]
fn bye_from_the_caller_ends_the_call() {
    let mut ep = endpoint(EndpointConfig::default());
    let tag = answered(&mut ep, "call-2").to_tag().unwrap().to_string();
    ep.on_message(in_dialog("BYE", "call-2", &tag, 2, "z9hG4bK-bye", "", "").as_bytes(), caller(), ms(5000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200]);
    assert_eq!(events, vec![CallEvent::Ended { call_id: "call-2".into(), why: EndReason::RemoteBye }]);
    // A retransmitted BYE gets the same 200 from its transaction, not a 481.
    ep.on_message(in_dialog("BYE", "call-2", &tag, 2, "z9hG4bK-bye", "", "").as_bytes(), caller(), ms(5100));
    assert_eq!(statuses(&drain(&mut ep).0), vec![200]);
    assert_eq!(ep.calls(), 0);
}

#[test]
fn bye_from_us_follows_the_route_set_with_the_dialog_tags() {
    let mut ep = endpoint(EndpointConfig::default());
    let tag = answered(&mut ep, "call-3").to_tag().unwrap().to_string();
    ep.hangup("call-3", ms(3000));
    let (sent, events) = drain(&mut ep);
    let (to, bye) = &sent[0];
    assert_eq!(*to, caller());
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.from_tag(), Some(tag.as_str()));
    assert_eq!(bye.to_tag(), Some("caller1"));
    assert_eq!(bye.header(HeaderName::Route), Some("<sip:proxy@127.0.0.1:5070;lr>"));
    assert_eq!(events, vec![CallEvent::Ended { call_id: "call-3".into(), why: EndReason::LocalBye }]);
}

#[test]
fn cancel_before_the_answer_ends_the_invite_with_487() {
    let mut ep = endpoint(EndpointConfig::default());
    ep.on_message(invite("call-4").as_bytes(), caller(), ms(0));
    drain(&mut ep);
    let cancel = invite("call-4").replacen("INVITE sip:", "CANCEL sip:", 1).replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let cancel = cancel.split("Content-Type").next().unwrap().to_string() + "Content-Length: 0\r\n\r\n";
    ep.on_message(cancel.as_bytes(), caller(), ms(800));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200, 487]);
    assert_eq!(sent[1].1.cseq().unwrap().method, Method::Invite);
    assert_eq!(events, vec![CallEvent::Ended { call_id: "call-4".into(), why: EndReason::Cancelled }]);
    // The 487 is retransmitted until its ACK, which ends the transaction.
    ep.on_timeout(ms(1300));
    assert_eq!(statuses(&drain(&mut ep).0), vec![487]);
    let tag = sent[1].1.to_tag().unwrap().to_string();
    ep.on_message(in_dialog("ACK", "call-4", &tag, 1, "z9hG4bK-inv1", "", "").as_bytes(), caller(), ms(1400));
    ep.on_timeout(ms(3000));
    assert!(drain(&mut ep).0.is_empty());
}

#[test]
fn options_and_unknown_methods_are_answered() {
    let mut ep = endpoint(EndpointConfig::default());
    let options = in_dialog("OPTIONS", "o-1", "x", 1, "z9hG4bK-o1", "", "").replace(";tag=x", "");
    ep.on_message(options.as_bytes(), caller(), ms(0));
    let (sent, _) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200]);
    assert!(sent[0].1.header(HeaderName::Allow).unwrap().contains("INVITE"));
    let frob = in_dialog("FROB", "o-2", "x", 1, "z9hG4bK-o2", "", "");
    ep.on_message(frob.as_bytes(), caller(), ms(0));
    assert_eq!(statuses(&drain(&mut ep).0), vec![501]);
    // A copy of the OPTIONS from another port (a NAT rebinding): the same answer, sent there.
    let moved = Peer::Udp("127.0.0.1:6061".parse().unwrap());
    ep.on_message(options.as_bytes(), moved, ms(100));
    let (again, _) = drain(&mut ep);
    assert_eq!((statuses(&again), again[0].0), (vec![200], moved));
    assert_eq!(again[0].1.to_tag(), sent[0].1.to_tag(), "the stored answer, not a new one");
}

#[test]
fn malformed_and_oversize_requests_get_400_and_513_with_the_reason() {
    let mut ep = endpoint(EndpointConfig::default());
    let bad = invite("bad-1").replace("CSeq: 1 INVITE", "CSeq: x INVITE");
    ep.on_message(bad.as_bytes(), caller(), ms(0));
    // The response echoes the broken CSeq as it came, so it is read here as text.
    let Some(Output::Send { to, bytes }) = ep.poll() else { panic!("no response") };
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(to, caller());
    assert!(text.starts_with("SIP/2.0 400 malformed CSeq header\r\n"), "{text}");
    assert!(text.contains("Call-ID: bad-1\r\n") && text.contains("branch=z9hG4bK-inv1"), "{text}");
    let mut huge = invite("big-1").into_bytes();
    huge.extend(std::iter::repeat_n(b'a', 70_000));
    ep.on_message(&huge, caller(), ms(0));
    assert_eq!(statuses(&drain(&mut ep).0), vec![513]);
    // Bytes with nobody to answer are dropped.
    ep.on_message(b"\x00\x01garbage", caller(), ms(0));
    ep.on_message(b"SIP/2.0 200 OK\r\n\r\n", caller(), ms(0));
    assert!(drain(&mut ep).0.is_empty());
}

#[test]
fn too_many_calls_get_503_with_retry_after() {
    let mut ep = endpoint(EndpointConfig { max_calls: 1, ..Default::default() });
    answered(&mut ep, "c-1");
    ep.on_message(invite_with("c-2", "z9hG4bK-2", SDP).as_bytes(), caller(), ms(100));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![503]);
    assert_eq!(sent[0].1.header(HeaderName::RetryAfter), Some("5"));
    assert!(events.is_empty());
}

#[test]
fn an_offer_without_a_common_codec_gets_488() {
    let mut ep = endpoint(EndpointConfig::default());
    let opus = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
    ep.on_message(invite_with("c-opus", "z9hG4bK-3", opus).as_bytes(), caller(), ms(0));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![488]);
    assert!(sent[0].1.header(HeaderName::Warning).unwrap().contains("opus"));
    assert!(events.is_empty());
}

#[test]
fn sip_info_carries_keypad_digits() {
    let mut ep = endpoint(EndpointConfig::default());
    let tag = answered(&mut ep, "c-info").to_tag().unwrap().to_string();
    let info = in_dialog("INFO", "c-info", &tag, 2, "z9hG4bK-i1", "Content-Type: application/dtmf-relay\r\n", "Signal=5\r\nDuration=160\r\n");
    ep.on_message(info.as_bytes(), caller(), ms(100));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200]);
    assert_eq!(events, vec![CallEvent::Dtmf { call_id: "c-info".into(), digit: '5' }]);
}

#[test]
fn a_hold_reinvite_is_answered_recvonly() {
    let mut ep = endpoint(EndpointConfig::default());
    let tag = answered(&mut ep, "c-hold").to_tag().unwrap().to_string();
    let hold = SDP.replace("a=sendrecv", "a=sendonly");
    let reinvite = in_dialog("INVITE", "c-hold", &tag, 2, "z9hG4bK-h1", "Content-Type: application/sdp\r\n", &hold);
    ep.on_message(reinvite.as_bytes(), caller(), ms(100));
    let (sent, _) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200]);
    assert!(String::from_utf8_lossy(&sent[0].1.body).contains("a=recvonly"));
    assert!(String::from_utf8_lossy(&sent[0].1.body).contains("m=audio 7000"), "same media port");
}

#[test]
fn an_answer_never_acknowledged_ends_the_call() {
    let mut ep = endpoint(EndpointConfig::default());
    answered(&mut ep, "c-noack");
    let mut events = Vec::new();
    let mut t = ms(20);
    while let Some(next) = ep.poll_timeout() {
        t = next;
        ep.on_timeout(t);
        events.extend(drain(&mut ep).1);
    }
    assert!(t >= ms(32_000));
    assert_eq!(events, vec![CallEvent::Ended { call_id: "c-noack".into(), why: EndReason::NoAck }]);
    let _: SocketAddr = CALLER.parse().unwrap();
}

#[test]
fn refer_asks_the_caller_to_call_the_target_and_notify_reports_progress() {
    let mut ep = endpoint(EndpointConfig::default());
    let tag = answered(&mut ep, "c-refer").to_tag().unwrap().to_string();
    ep.refer("c-refer", "sip:agent@127.0.0.1:5070", &[("X-Summary".into(), "Goal: a person".into())], ms(1000));
    let (sent, _) = drain(&mut ep);
    let (to, refer) = &sent[0];
    assert_eq!(*to, caller());
    assert_eq!(refer.method(), Some(&Method::Refer));
    assert_eq!(refer.header(HeaderName::ReferTo), Some("<sip:agent@127.0.0.1:5070>"));
    assert_eq!(refer.header(HeaderName::Other("X-Summary".into())), Some("Goal: a person"), "the headers given go in the REFER");
    assert_eq!((refer.from_tag(), refer.to_tag()), (Some(tag.as_str()), Some("caller1")));
    // Retransmitted until answered.
    ep.on_timeout(ms(1500));
    let refers = |sent: Vec<(Peer, Message)>| sent.iter().filter(|(_, m)| m.method() == Some(&Method::Refer)).count();
    assert_eq!(refers(drain(&mut ep).0), 1);
    let accepted = refer.response(202, "Accepted", Some("caller1"));
    ep.on_message(&accepted.to_bytes(), caller(), ms(1600));
    ep.on_timeout(ms(3000));
    assert_eq!(refers(drain(&mut ep).0), 0, "answered: no more retransmissions");
    let notify = in_dialog(
        "NOTIFY",
        "c-refer",
        &tag,
        3,
        "z9hG4bK-n1",
        "Event: refer\r\nSubscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag;version=2.0\r\n",
        "SIP/2.0 200 OK\r\n",
    );
    ep.on_message(notify.as_bytes(), caller(), ms(4000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(statuses(&sent), vec![200]);
    assert_eq!(events, vec![CallEvent::Transfer { call_id: "c-refer".into(), status: 200 }]);
}

#[test]
fn an_unanswered_refer_reports_408() {
    let mut ep = endpoint(EndpointConfig::default());
    answered(&mut ep, "c-refer2");
    ep.refer("c-refer2", "sip:agent@127.0.0.1:5070", &[], ms(0));
    drain(&mut ep);
    let mut events = Vec::new();
    while let Some(t) = ep.poll_timeout() {
        ep.on_timeout(t);
        events.extend(drain(&mut ep).1);
        if t > ms(40_000) {
            break;
        }
    }
    assert!(events.contains(&CallEvent::Transfer { call_id: "c-refer2".into(), status: 408 }), "{events:?}");
}

#[test]
fn a_flood_of_invites_from_one_address_is_refused() {
    let mut ep = endpoint(EndpointConfig { invites_per_sec: 2.0, max_calls: 1000, ..Default::default() });
    let mut codes = Vec::new();
    for i in 0..10 {
        ep.on_message(invite_with(&format!("f-{i}"), &format!("z9hG4bK-f{i}"), SDP).as_bytes(), caller(), ms(i * 10));
        codes.push(statuses(&drain(&mut ep).0)[0]);
    }
    assert_eq!(codes, vec![100, 100, 100, 100, 503, 503, 503, 503, 503, 503], "a burst of twice the rate, then 503");
    // Another address is not affected, and the first recovers with time.
    let other = Peer::Udp("127.0.0.2:5061".parse().unwrap());
    ep.on_message(invite_with("f-other", "z9hG4bK-o", SDP).as_bytes(), other, ms(100));
    assert_eq!(statuses(&drain(&mut ep).0), vec![100]);
    ep.on_message(invite_with("f-later", "z9hG4bK-l", SDP).as_bytes(), caller(), ms(1200));
    assert_eq!(statuses(&drain(&mut ep).0), vec![100]);
}
