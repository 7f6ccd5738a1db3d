//! Any bytes as an SDP offer, negotiated and answered: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_bridge::sdp::{describe, negotiate, Codec, Offer};

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = Offer::parse(data) {
        if let Ok(agreed) = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma, Codec::G722]) {
            let answer = describe(&agreed, "127.0.0.1:7000".parse().unwrap(), 1, 1);
            Offer::parse(answer.as_bytes()).expect("our answer parses");
        }
    }
});
