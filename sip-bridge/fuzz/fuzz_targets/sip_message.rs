//! Any bytes as a SIP message, a TCP stream, and a request to the endpoint: never a panic, and
//! whatever parses must write out and parse again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_bridge::sip::endpoint::{Endpoint, Peer};
use sip_bridge::sip::message::{frame, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        Message::parse(&m.to_bytes()).expect("a parsed message round-trips");
    }
    let _ = frame(data);
    let mut ep = Endpoint::new(Default::default(), "127.0.0.1:5060".parse().unwrap());
    ep.on_message(data, Peer::Udp("127.0.0.1:5061".parse().unwrap()), std::time::Duration::ZERO);
    while ep.poll().is_some() {}
});
