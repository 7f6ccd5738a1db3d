//! Any datagrams on a call's RTP port, then playout: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ivr_audio::FRAME_SAMPLES;
use sip_bridge::rtp::media::{MediaConfig, MediaSession};
use sip_bridge::sdp::{Agreed, Codec, Direction};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    for codec in [Codec::Pcmu, Codec::G722] {
        let agreed = Agreed {
            codec,
            payload_type: codec.payload_type(),
            telephone_event: Some(101),
            remote: "127.0.0.1:6000".parse().unwrap(),
            remote_rtcp: "127.0.0.1:6001".parse().unwrap(),
            direction: Direction::SendRecv,
        };
        let mut m = MediaSession::new(&agreed, &MediaConfig::default(), 1, 0, Duration::ZERO);
        let mut frame = [0.0f32; FRAME_SAMPLES];
        // The input split into datagrams at 0xff bytes.
        for (i, d) in data.split(|&b| b == 0xff).enumerate() {
            m.on_datagram(d, "127.0.0.1:7000".parse().unwrap(), Duration::from_millis(i as u64 * 20));
            m.next_frame(&mut frame);
        }
    }
});
