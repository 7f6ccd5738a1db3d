//! Whatever bytes arrive, the SIP and SDP parsers answer with a value or an error, never a panic.
//! Seeds are real requests; each is mutated many times (bytes flipped, cut, repeated, inserted),
//! with a fixed random sequence so a failure can be replayed.

#[path = "rfc4475/cases.rs"]
mod cases;

use sip_bridge::sdp::{negotiate, Codec, Offer};
use sip_bridge::sip::endpoint::{Endpoint, Peer};
use sip_bridge::sip::message::{frame, Message};

const SEEDS: &[&str] = &[
    "INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\nMax-Forwards: 70\r\nFrom: \"Caller\" <sip:caller@127.0.0.1:5061>;tag=abc\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: call-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5061>\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    "SIP/2.0 200 OK\r\nv: SIP/2.0/TCP [::1]:5062;branch=z9hG4bK-2\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: x\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n",
    "REFER sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bK3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: y\r\nCSeq: 3 REFER\r\nRefer-To: <sip:agent@127.0.0.1:5070>\r\n\r\n",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_messages_are_parsed_or_refused_without_panicking() {
    let mut rng = Rng(7);
    let interesting: &[&[u8]] = &[b"\r\n", b":", b";", b"<", b">", b"\"", b" ", b"\xff", b"\0", b"SIP/2.0", b"Content-Length: 99999999999999999999", b"[", b"]:"];
    let mut parsed = 0;
    // The whole endpoint too: mutated requests arrive one after another, with its timers running.
    let mut ep = Endpoint::new(Default::default(), "127.0.0.1:5060".parse().unwrap());
    let peer = Peer::Udp("127.0.0.1:5061".parse().unwrap());
    // RFC 4475's valid torture messages are seeds too: whitespace, folding, escapes, odd tokens.
    let mut seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    seeds.extend(cases::CASES.iter().filter(|c| c.valid).map(|c| cases::load(c.name)));
    for round in 0..30_000 {
        let mut m = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(m.len() + 1);
            match rng.below(5) {
                0 if at < m.len() => m[at] = rng.next() as u8,
                1 => m.truncate(at),
                2 => {
                    let piece = interesting[rng.below(interesting.len())];
                    m.splice(at..at, piece.iter().copied());
                }
                3 if at < m.len() => {
                    let end = (at + rng.below(40)).min(m.len());
                    let dup = m[at..end].to_vec();
                    m.splice(at..at, dup);
                }
                _ => {
                    let end = (at + rng.below(20)).min(m.len());
                    m.drain(at..end);
                }
            }
        }
        if let Ok(msg) = Message::parse(&m) {
            parsed += 1;
            // What we accept, we can write and read back.
            let again = Message::parse(&msg.to_bytes()).expect("a parsed message round-trips");
            assert_eq!(again.call_id(), msg.call_id());
            let _ = msg.top_via();
            let _ = (msg.from_tag(), msg.to_tag(), msg.cseq());
        }
        let _ = frame(&m);
        let now = std::time::Duration::from_millis(round as u64 * 10);
        ep.on_message(&m, peer, now);
        if round % 7 == 0 {
            if let Some(id) = m.windows(9).position(|w| w == b"Call-ID: ").map(|i| String::from_utf8_lossy(&m[i + 9..(i + 15).min(m.len())]).into_owned()) {
                ep.accept(&id, "127.0.0.1:7000".parse().unwrap(), now);
            }
        }
        ep.on_timeout(now);
        while ep.poll().is_some() {}
        // The same bytes as a session description (the INVITE seed carries one).
        if let Some(i) = m.windows(4).position(|w| w == b"v=0\r") {
            if let Ok(offer) = Offer::parse(&m[i..]) {
                let _ = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma, Codec::G722]);
            }
        }
    }
    // The mutations are not all fatal: the parser's accepting path is exercised too.
    assert!(parsed > 1000, "{parsed}");
}
