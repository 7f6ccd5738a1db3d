//! Calls the endpoint places (to an agent's phone), replayed message by message in simulated
//! time: the INVITE and its retransmissions, ringing, the answer and its ACK (again for each copy
//! of the 2xx), keys from the callee, BYE both ways, CANCEL before the answer (also when the 2xx
//! crosses it), refusals and no answer at all. The test plays the callee's phone.

use std::time::Duration;

use sip_bridge::sdp::Codec;
use sip_bridge::sip::endpoint::{CallEvent, EndReason, Endpoint, EndpointConfig, Output, OutgoingCall, Peer};
use sip_bridge::sip::message::{HeaderName, Message, Method};

const PHONE: &str = "127.0.0.1:5099";

fn phone() -> Peer {
    Peer::Udp(PHONE.parse().unwrap())
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn drain(ep: &mut Endpoint) -> (Vec<Message>, Vec<CallEvent>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll() {
        match o {
            Output::Send { to, bytes } => {
                assert_eq!(to, phone(), "everything goes to where the phone registered from");
                sent.push(Message::parse(&bytes).expect("we send valid SIP"));
            }
            Output::Call(e) => events.push(e),
        }
    }
    (sent, events)
}

fn methods(sent: &[Message]) -> Vec<String> {
    sent.iter().map(|m| m.method().map(|m| m.as_str().to_string()).unwrap_or_else(|| m.status().unwrap_or(0).to_string())).collect()
}

/// Places a call to the phone; returns the endpoint, the Call-ID and the INVITE.
fn place() -> (Endpoint, String, Message) {
    let mut ep = Endpoint::new(EndpointConfig { codecs: vec![Codec::Pcmu, Codec::Pcma], ..Default::default() }, "127.0.0.1:5060".parse().unwrap());
    let call = OutgoingCall {
        target: format!("sip:2001@{PHONE};transport=udp"),
        peer: phone(),
        to: "sip:2001@127.0.0.1".into(),
        caller_id: "sip:+4930111222@example.com".into(),
        rtp: "127.0.0.1:7000".parse().unwrap(),
        headers: vec![(HeaderName::Other("X-Summary".into()), "Caller asks for a person".into())],
    };
    let call_id = ep.invite(call, ms(0));
    let (sent, events) = drain(&mut ep);
    assert!(events.is_empty());
    assert_eq!(methods(&sent), ["INVITE"]);
    (ep, call_id, sent.into_iter().next().unwrap())
}

/// The phone's response to `req` (its tag `phone1` on everything but 100).
fn response(req: &Message, status: u16, reason: &str, body: &str) -> Vec<u8> {
    let mut r = req.response(status, reason, (status > 100).then_some("phone1"));
    if status == 200 {
        r.add_header(HeaderName::Contact, format!("<sip:2001@{PHONE}>"));
        r.add_header(HeaderName::RecordRoute, "<sip:p1@127.0.0.1:5070;lr>");
        r.add_header(HeaderName::RecordRoute, "<sip:p2@127.0.0.1:5071;lr>");
    }
    if !body.is_empty() {
        r.add_header(HeaderName::ContentType, "application/sdp");
        r.body = body.as_bytes().to_vec();
    }
    r.to_bytes()
}

const ANSWER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// A request from the phone inside the dialog.
fn from_phone(method: &str, invite: &Message, cseq: u32, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-ph{cseq}\r\nMax-Forwards: 70\r\n\
         From: <sip:2001@127.0.0.1>;tag=phone1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        invite.header(HeaderName::From).unwrap(),
        invite.call_id(),
        body.len()
    )
    .into_bytes()
}

#[test]
fn the_invite_offers_our_codecs_as_the_caller_and_is_retransmitted_until_answered() {
    let (mut ep, call_id, inv) = place();
    assert_eq!(inv.uri(), Some(format!("sip:2001@{PHONE};transport=udp").as_str()));
    let from = inv.header(HeaderName::From).unwrap();
    assert!(from.contains("sip:+4930111222@") && from.contains(";tag="), "the caller's number as caller ID: {from}");
    assert_eq!(inv.header(HeaderName::To), Some("<sip:2001@127.0.0.1>"));
    assert_eq!(inv.header(HeaderName::Other("x-summary".into())), Some("Caller asks for a person"));
    let sdp = String::from_utf8(inv.body.clone()).unwrap();
    assert!(sdp.contains("m=audio 7000 RTP/AVP 0 8 101") && sdp.contains("telephone-event/8000"), "{sdp}");
    // Timer A: 500 ms, then 1 s later, until something comes back.
    ep.on_timeout(ms(499));
    assert!(drain(&mut ep).0.is_empty());
    ep.on_timeout(ms(500));
    assert_eq!(methods(&drain(&mut ep).0), ["INVITE"]);
    ep.on_timeout(ms(1500));
    assert_eq!(methods(&drain(&mut ep).0), ["INVITE"]);
    ep.on_message(&response(&inv, 100, "Trying", ""), phone(), ms(1600));
    ep.on_message(&response(&inv, 180, "Ringing", ""), phone(), ms(1700));
    let (sent, events) = drain(&mut ep);
    assert!(sent.is_empty());
    assert_eq!(events, [CallEvent::Progress { call_id: call_id.clone(), status: 180 }]);
    ep.on_timeout(ms(20_000));
    assert!(drain(&mut ep).0.is_empty(), "no retransmission while it rings");

    ep.on_message(&response(&inv, 200, "OK", ANSWER), phone(), ms(21_000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["ACK"]);
    let ack = &sent[0];
    assert_eq!(ack.uri(), Some(format!("sip:2001@{PHONE}").as_str()), "to the answer's Contact");
    assert!(ack.header(HeaderName::To).unwrap().ends_with(";tag=phone1"));
    assert_eq!(ack.cseq().unwrap().number, 1);
    assert_ne!(ack.top_via().unwrap().branch, inv.top_via().unwrap().branch, "the 2xx's ACK is a transaction of its own");
    assert_eq!(ack.header_values(HeaderName::Route), ["<sip:p2@127.0.0.1:5071;lr>", "<sip:p1@127.0.0.1:5070;lr>"], "route set reversed");
    let [CallEvent::Answered { call_id: answered, media }] = &events[..] else { panic!("{events:?}") };
    assert_eq!((answered, media.codec, media.telephone_event, media.remote.port()), (&call_id, Codec::Pcma, Some(101), 8000));
    // A copy of the 2xx (our ACK was lost): acknowledged again, no second event.
    ep.on_message(&response(&inv, 200, "OK", ANSWER), phone(), ms(21_500));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["ACK"]);
    assert!(events.is_empty());

    // The agent keys 1 by SIP INFO; then we hang up: BYE with our tags and the route set.
    ep.on_message(&from_phone("INFO", &inv, 2, "Content-Type: application/dtmf-relay\r\n", "Signal=1\r\nDuration=160\r\n"), phone(), ms(22_000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(sent[0].status(), Some(200));
    assert_eq!(events, [CallEvent::Dtmf { call_id: call_id.clone(), digit: '1' }]);
    ep.hangup(&call_id, ms(30_000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["BYE"]);
    assert_eq!(sent[0].header(HeaderName::From), inv.header(HeaderName::From));
    assert!(sent[0].header(HeaderName::To).unwrap().ends_with(";tag=phone1"));
    assert_eq!(sent[0].cseq().unwrap().number, 2);
    assert_eq!(events, [CallEvent::Ended { call_id, why: EndReason::LocalBye }]);
}

#[test]
fn the_agent_hanging_up_ends_the_call() {
    let (mut ep, call_id, inv) = place();
    ep.on_message(&response(&inv, 200, "OK", ANSWER), phone(), ms(100));
    drain(&mut ep);
    ep.on_message(&from_phone("BYE", &inv, 2, "", ""), phone(), ms(5_000));
    let (sent, events) = drain(&mut ep);
    assert_eq!(sent[0].status(), Some(200));
    assert_eq!(events, [CallEvent::Ended { call_id, why: EndReason::RemoteBye }]);
}

#[test]
fn hanging_up_while_it_rings_cancels_and_acknowledges_the_487() {
    // Before any provisional response a CANCEL may not be sent: it waits for the first one.
    let (mut ep, call_id, inv) = place();
    ep.hangup(&call_id, ms(100));
    let (sent, events) = drain(&mut ep);
    assert!(sent.is_empty(), "{:?}", methods(&sent));
    assert_eq!(events, [CallEvent::Ended { call_id: call_id.clone(), why: EndReason::LocalBye }]);
    ep.on_message(&response(&inv, 180, "Ringing", ""), phone(), ms(300));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["CANCEL"]);
    assert!(events.is_empty(), "the application heard the end already");
    let cancel = &sent[0];
    assert_eq!(cancel.top_via().unwrap().branch, inv.top_via().unwrap().branch);
    assert_eq!((cancel.uri(), cancel.cseq().unwrap().number), (inv.uri(), 1));
    assert_eq!(cancel.header(HeaderName::To), inv.header(HeaderName::To));
    ep.on_message(&response(cancel, 200, "OK", ""), phone(), ms(350));
    ep.on_message(&response(&inv, 487, "Request Terminated", ""), phone(), ms(360));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["ACK"]);
    assert_eq!(sent[0].top_via().unwrap().branch, inv.top_via().unwrap().branch, "a refusal's ACK is part of the INVITE's transaction");
    assert!(events.is_empty());
    // A copy of the 487: acknowledged again; after Timer D, nothing is left.
    ep.on_message(&response(&inv, 487, "Request Terminated", ""), phone(), ms(400));
    assert_eq!(methods(&drain(&mut ep).0), ["ACK"]);
    ep.on_timeout(ms(40_000));
    drain(&mut ep);
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(ep.calls(), 0);
}

#[test]
fn a_2xx_that_crosses_our_cancel_is_acknowledged_and_ended_with_bye() {
    let (mut ep, call_id, inv) = place();
    ep.on_message(&response(&inv, 180, "Ringing", ""), phone(), ms(100));
    drain(&mut ep);
    ep.hangup(&call_id, ms(200));
    assert_eq!(methods(&drain(&mut ep).0), ["CANCEL"]);
    ep.on_message(&response(&inv, 200, "OK", ANSWER), phone(), ms(250));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["ACK", "BYE"]);
    assert!(sent[1].header(HeaderName::To).unwrap().ends_with(";tag=phone1"));
    assert!(events.is_empty());
}

#[test]
fn refusals_and_silence_end_the_call_with_their_status() {
    let (mut ep, call_id, inv) = place();
    ep.on_message(&response(&inv, 486, "Busy Here", ""), phone(), ms(100));
    let (sent, events) = drain(&mut ep);
    assert_eq!(methods(&sent), ["ACK"]);
    assert_eq!(sent[0].method(), Some(&Method::Ack));
    assert_eq!(events, [CallEvent::Ended { call_id, why: EndReason::Unanswered(486) }]);

    // Nobody there: retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 32 s.
    let (mut ep, call_id, _) = place();
    let mut resent = 0;
    let mut t = ms(0);
    let mut ended = Vec::new();
    while t < ms(40_000) {
        t += ms(100);
        if ep.poll_timeout().is_some_and(|d| d <= t) {
            ep.on_timeout(t);
        }
        let (sent, events) = drain(&mut ep);
        resent += sent.len();
        ended.extend(events);
    }
    assert_eq!(resent, 6);
    assert_eq!(ended, [CallEvent::Ended { call_id, why: EndReason::Unanswered(408) }]);
    assert_eq!(ep.calls(), 0);
}
