//! The 49 messages of RFC 4475 (SIP torture tests) and what a UAS answers to each. Shared by the
//! in-memory test (`sip-bridge/tests/rfc4475.rs`) and the one over UDP and TCP against `ivr serve`
//! (`ivr/tests/sip_torture.rs`).
//!
//! The `.sip` files are written in the RFC's own notation (its section 2): lines end in LF here and
//! CRLF on the wire, `<hex>..</hex>` stands for octets that are not printable, and
//! `<repeat count=N>x</repeat>` for a long run. Every Content-Length that the RFC meant to be right
//! matches its body. One stand-in: mpart01's binary S/MIME part is other binary octets of the same
//! length (the RFC's exact signature bytes are not needed to test a binary body).

#![allow(dead_code)]

use std::path::PathBuf;

use sip_bridge::sip::message::{HeaderName, Message, StartLine};

/// What the server sends back for one message sent to it.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// A final response with one of these statuses (retransmissions and 100 Trying aside).
    Status(&'static [u16]),
    /// A valid new call: 180 Ringing (the server is set to ring before answering); the test
    /// then CANCELs it and expects 200 for the CANCEL and 487 for the INVITE.
    Ring,
    /// A valid REGISTER: 405 from a server with no registrar; with one, these statuses.
    Register(&'static [u16]),
}

pub struct Case {
    pub name: &'static str,
    /// Its section in RFC 4475.
    pub section: &'static str,
    /// Whether the RFC calls the message valid.
    pub valid: bool,
    /// What each message in the datagram gets, in order; empty: nothing at all (a response with
    /// no transaction, or a message that is not whole).
    pub udp: &'static [Want],
    /// The same over a TCP connection of its own.
    pub tcp: &'static [Want],
}

const BAD: &[Want] = &[Want::Status(&[400])];
const NOTHING: &[Want] = &[];

const fn both(name: &'static str, section: &'static str, valid: bool, want: &'static [Want]) -> Case {
    Case { name, section, valid, udp: want, tcp: want }
}

pub const CASES: [Case; 49] = [
    // 3.1.1 Valid messages.
    // An INVITE with a To tag for a dialog that does not exist.
    both("wsinv", "3.1.1.1", true, &[Want::Status(&[481])]),
    // An extension method nobody implements.
    both("intmeth", "3.1.1.2", true, &[Want::Status(&[501])]),
    both("esc01", "3.1.1.3", true, &[Want::Ring]),
    both("escnull", "3.1.1.4", true, &[Want::Register(&[404])]),
    // "RE%47IST%45R" is not REGISTER (no escaping in a method): an unknown method.
    both("esc02", "3.1.1.5", true, &[Want::Status(&[501])]),
    both("lwsdisp", "3.1.1.6", true, &[Want::Status(&[200])]),
    both("longreq", "3.1.1.7", true, &[Want::Ring]),
    // UDP: the octets after the REGISTER's body are ignored. TCP: they are the next message.
    Case { name: "dblreq", section: "3.1.1.8", valid: true, udp: &[Want::Register(&[401])], tcp: &[Want::Register(&[401]), Want::Ring] },
    both("semiuri", "3.1.1.9", true, &[Want::Status(&[200])]),
    both("transports", "3.1.1.10", true, &[Want::Status(&[200])]),
    // MESSAGE is not something a voice agent takes.
    both("mpart01", "3.1.1.11", true, &[Want::Status(&[405])]),
    // Responses that match no transaction are dropped.
    both("unreason", "3.1.1.12", true, NOTHING),
    both("noreason", "3.1.1.13", true, NOTHING),
    // 3.1.2 Invalid messages.
    both("badinv01", "3.1.2.1", false, BAD),
    // UDP: the body is shorter than announced. TCP: the rest may still come, so no answer yet.
    Case { name: "clerr", section: "3.1.2.2", valid: false, udp: BAD, tcp: NOTHING },
    both("ncl", "3.1.2.3", false, BAD),
    both("scalar02", "3.1.2.4", false, BAD),
    both("scalarlg", "3.1.2.5", false, NOTHING),
    both("quotbal", "3.1.2.6", false, BAD),
    both("ltgtruri", "3.1.2.7", false, BAD),
    both("lwsruri", "3.1.2.8", false, BAD),
    both("lwsstart", "3.1.2.9", false, BAD),
    both("trws", "3.1.2.10", false, BAD),
    both("escruri", "3.1.2.11", false, BAD),
    both("baddate", "3.1.2.12", false, BAD),
    both("regbadct", "3.1.2.13", false, BAD),
    both("badaspec", "3.1.2.14", false, BAD),
    both("baddn", "3.1.2.15", false, BAD),
    both("badvers", "3.1.2.16", false, &[Want::Status(&[505])]),
    both("mismatch01", "3.1.2.17", false, BAD),
    both("mismatch02", "3.1.2.18", false, BAD),
    both("bigcode", "3.1.2.19", false, NOTHING),
    // 3.2 Transaction layer: a branch that is only the magic cookie; matched the RFC 2543 way.
    both("badbranch", "3.2.1", true, &[Want::Status(&[200])]),
    // 3.3 Application layer.
    both("insuf", "3.3.1", false, BAD),
    both("unkscm", "3.3.2", true, &[Want::Status(&[416])]),
    both("novelsc", "3.3.3", true, &[Want::Status(&[416])]),
    // A registrar needs a SIP or SIPS URI as the address of record.
    both("unksm2", "3.3.4", true, &[Want::Register(&[400])]),
    both("bext01", "3.3.5", true, &[Want::Status(&[420])]),
    both("invut", "3.3.6", true, &[Want::Status(&[415])]),
    both("regaut01", "3.3.7", true, &[Want::Register(&[401])]),
    both("multi01", "3.3.8", false, BAD),
    both("mcl01", "3.3.9", false, BAD),
    both("bcast", "3.3.10", true, NOTHING),
    // A UAS is where the request ends: Max-Forwards 0 is not a reason to refuse it.
    both("zeromf", "3.3.11", true, &[Want::Status(&[200])]),
    both("cparam01", "3.3.12", true, &[Want::Register(&[401])]),
    both("cparam02", "3.3.13", true, &[Want::Register(&[401])]),
    both("regescrt", "3.3.14", true, &[Want::Register(&[401])]),
    // The caller accepts no SDP, and the answer would be SDP.
    both("sdp01", "3.3.15", true, &[Want::Status(&[406])]),
    // 3.4 RFC 2543 syntax: no branch, no Max-Forwards, no Content-Length. Over TCP a message must
    // say its length (RFC 3261 18.3), so there it is a 400.
    Case { name: "inv2543", section: "3.4.1", valid: true, udp: &[Want::Ring], tcp: BAD },
];

/// What the server sent, parsed: valid SIP, except that the 400 for a message that could not be
/// parsed copies the request's Via, From, To, Call-ID and CSeq as they were (so they may be as
/// broken as the request); then only its status line is kept.
pub fn answer(bytes: &[u8]) -> Message {
    let text = String::from_utf8_lossy(bytes).to_string();
    Message::parse(bytes).unwrap_or_else(|e| {
        let status: u16 = text.strip_prefix("SIP/2.0 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!(matches!(status, 400 | 505 | 513), "we sent invalid SIP ({e}):\n{text}");
        Message { start: StartLine::Response { status, reason: String::new() }, headers: Vec::new(), body: Vec::new() }
    })
}

/// A CANCEL or ACK for an INVITE we sent (RFC 3261 9.1, 17.1.1.3): same Request-URI, top Via,
/// From, Call-ID and CSeq number; the ACK takes the To of the response.
pub fn follow_up(invite: &Message, method: &str, to: &str) -> Vec<u8> {
    let StartLine::Request { uri, .. } = &invite.start else { unreachable!() };
    let number = invite.cseq().unwrap().number;
    format!(
        "{method} {uri} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {number} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        invite.header_values(HeaderName::Via)[0],
        invite.header(HeaderName::From).unwrap(),
        invite.call_id()
    )
    .into_bytes()
}

/// The message's octets as sent.
pub fn load(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip-bridge/tests/rfc4475").join(format!("{name}.sip"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    expand(&text)
}

fn expand(text: &str) -> Vec<u8> {
    let mut repeated = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("<repeat count=") {
        repeated.push_str(&rest[..i]);
        let after = &rest[i + "<repeat count=".len()..];
        let (count, after) = after.split_once('>').expect("<repeat count=N>");
        let (unit, after) = after.split_once("</repeat>").expect("</repeat>");
        repeated.push_str(&unit.repeat(count.parse().expect("a count")));
        rest = after;
    }
    repeated.push_str(rest);
    let mut out = Vec::new();
    let mut rest = repeated.as_str();
    loop {
        let (plain, after) = match rest.split_once("<hex>") {
            Some((p, a)) => (p, Some(a)),
            None => (rest, None),
        };
        out.extend_from_slice(plain.replace('\n', "\r\n").as_bytes());
        let Some(after) = after else { break };
        let (hex, after) = after.split_once("</hex>").expect("</hex>");
        out.extend((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")));
        rest = after;
    }
    out
}
