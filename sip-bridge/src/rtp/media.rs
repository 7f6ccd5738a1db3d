//! One call's media, sans-IO: RTP datagrams in (with their source and the time), 16 kHz frames out
//! for the call session, and the session's 16 kHz frames back out as RTP.
//!
//! Symmetric RTP: we send to where the caller's packets come from (once they come), which is what
//! works through NAT; before that, to the address in their SDP. Keypad events (RFC 4733) are
//! reported as digits; packets of other payload types or from a foreign SSRC burst are ignored by
//! the jitter buffer's rules. Time without packets is measured, so a dead call can be ended.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use audio_codec::{Decoder as _, Encoder as _};
use bytes::Bytes;
use webrtc_util::marshal::{Marshal, MarshalSize, Unmarshal};

use super::dtmf::DtmfReceiver;
use super::jitter::{Concealer, JitterBuffer, Packet, Playout};
use super::rtcp::{is_rtcp, RtcpSession, RtcpStats};
use crate::sdp::{Agreed, Codec};
use ivr_audio::g711;
use ivr_audio::resample::Resampler;
use ivr_audio::{FRAME, FRAME_SAMPLES, RATE};


#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// The least playout delay of the caller's audio. One frame: everything the caller says
    /// reaches turn-taking and barge-in that much later, so it grows only when packets come late.
    pub jitter_min_ms: u32,
    pub jitter_max_ms: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self { jitter_min_ms: 20, jitter_max_ms: 200 }
    }
}

/// What one outbound frame carries while digits are being sent.
enum DigitFrame {
    /// A telephone-event packet; `first` starts a key press (marker, new timestamp).
    Event { first: bool, payload: [u8; 4] },
    /// The pause between presses: ordinary audio.
    Gap,
}

/// Each key press lasts 100 ms (updates every 20 ms, three End packets), then 60 ms of pause:
/// what PBX feature-code detectors expect of a keypad.
const PRESS_TICKS: u16 = 800;
const GAP_FRAMES: usize = 3;

enum Dec {
    Pcmu,
    Pcma,
    G722(Box<audio_codec::g722::G722Decoder>),
}

enum Enc {
    Pcmu,
    Pcma,
    G722(Box<audio_codec::g722::G722Encoder>),
}

/// Counters for the call record and the load benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct MediaStats {
    pub packets_in: u64,
    pub packets_out: u64,
    /// Datagrams that were not RTP, or not ours.
    pub ignored: u64,
    pub concealed: u64,
    pub late: u64,
    /// The jitter buffer's playout delay when the stats were taken (what it added to the caller's
    /// audio before the bot heard it).
    pub playout_delay_ms: u32,
    pub rtcp: RtcpStats,
}

pub struct MediaSession {
    codec: Codec,
    payload_type: u8,
    telephone_event: Option<u8>,
    /// Where to send: the SDP's address until the caller's packets show the real one.
    remote: SocketAddr,
    latched: bool,
    jitter: JitterBuffer,
    conceal: Concealer,
    dtmf: DtmfReceiver,
    dec: Dec,
    enc: Enc,
    up: Resampler,
    down: Resampler,
    /// Decoded caller audio at 16 kHz not yet taken as a frame.
    inbound: VecDeque<f32>,
    /// One frame at the codec's rate, reused every 20 ms (no allocation per frame).
    scratch: Vec<f32>,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    /// Marker on the next packet (start of a talk spurt).
    marker: bool,
    last_packet: Option<Duration>,
    started: Duration,
    stats: MediaStats,
    rtcp: RtcpSession,
    /// Keypad digits being sent (RFC 4733), one frame's packet each.
    digits_out: VecDeque<DigitFrame>,
    /// RTP timestamp of the key press being sent (all its packets carry the press's start).
    digit_timestamp: u32,
    /// Where our RTCP goes: the SDP's RTCP address until the caller's reports show the real one.
    rtcp_remote: SocketAddr,
}

impl MediaSession {
    /// `seed` makes our SSRC and initial sequence number/timestamp (random per call in production,
    /// fixed in tests); `ntp_at_zero` is the wall-clock time (NTP format) at `now` = 0, for RTCP.
    pub fn new(agreed: &Agreed, cfg: &MediaConfig, seed: u64, ntp_at_zero: u64, now: Duration) -> Self {
        let rate = agreed.codec.audio_rate();
        let mix = seed.wrapping_mul(0x9e3779b97f4a7c15);
        let ssrc = (mix >> 8) as u32 | 1;
        Self {
            codec: agreed.codec,
            payload_type: agreed.payload_type,
            telephone_event: agreed.telephone_event,
            remote: agreed.remote,
            latched: false,
            jitter: JitterBuffer::new(8000, FRAME, Duration::from_millis(cfg.jitter_min_ms as u64), Duration::from_millis(cfg.jitter_max_ms as u64)),
            conceal: Concealer::default(),
            dtmf: DtmfReceiver::default(),
            dec: match agreed.codec {
                Codec::Pcmu => Dec::Pcmu,
                Codec::Pcma => Dec::Pcma,
                Codec::G722 => Dec::G722(Box::default()),
            },
            enc: match agreed.codec {
                Codec::Pcmu => Enc::Pcmu,
                Codec::Pcma => Enc::Pcma,
                Codec::G722 => Enc::G722(Box::default()),
            },
            up: Resampler::new(rate, RATE),
            down: Resampler::new(RATE, rate),
            inbound: VecDeque::with_capacity(FRAME_SAMPLES * 4),
            scratch: vec![0.0; (rate / 50) as usize],
            seq: (mix >> 48) as u16,
            timestamp: (mix >> 16) as u32,
            ssrc,
            marker: true,
            last_packet: None,
            started: now,
            stats: MediaStats::default(),
            rtcp: RtcpSession::new(ssrc, format!("ivr-{ssrc:08x}"), ntp_at_zero, mix, now),
            digits_out: VecDeque::new(),
            digit_timestamp: 0,
            rtcp_remote: agreed.remote_rtcp,
        }
    }

    pub fn stats(&self) -> MediaStats {
        let j = self.jitter.stats();
        MediaStats { concealed: j.concealed, late: j.late, playout_delay_ms: self.jitter.target() * 20, rtcp: self.rtcp.stats(), ..self.stats }
    }

    /// Where our packets go.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// How long since the caller's last packet (or since the call started, if none came).
    pub fn silent_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_packet.unwrap_or(self.started))
    }

    /// A datagram on the call's RTCP port (or RTCP muxed on the RTP port).
    pub fn on_rtcp_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Duration) {
        match self.rtcp.on_rtcp(bytes, now) {
            // Symmetric, as for RTP: reports go back where the caller's come from.
            Ok(()) if from.port() != 0 && !from.ip().is_unspecified() => self.rtcp_remote = from,
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(%from, "RTCP: {e}");
                self.stats.ignored += 1;
            }
        }
    }

    /// A report to send now, and where to, when one is due.
    pub fn poll_rtcp(&mut self, now: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.rtcp.poll_report(now).map(|r| (r, self.rtcp_remote))
    }

    /// The RTCP BYE that ends our stream.
    pub fn rtcp_bye(&mut self) -> Option<(Vec<u8>, SocketAddr)> {
        self.rtcp.bye().map(|r| (r, self.rtcp_remote))
    }

    /// A datagram on the call's RTP port. Returns a keypad digit when one starts.
    pub fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Duration) -> Option<char> {
        if is_rtcp(bytes) {
            self.on_rtcp_datagram(bytes, from, now);
            return None;
        }
        let mut buf = bytes;
        let Ok(packet) = rtp::packet::Packet::unmarshal(&mut buf) else {
            self.stats.ignored += 1;
            return None;
        };
        let h = &packet.header;
        if h.version != 2 {
            self.stats.ignored += 1;
            return None;
        }
        if (!self.latched || from != self.remote) && from.port() != 0 && !from.ip().is_unspecified() {
            // Symmetric RTP: answer where the media comes from (never to port 0, which some
            // senders put in packets they replay, and which cannot be sent to).
            self.remote = from;
            self.latched = true;
        }
        self.last_packet = Some(now);
        self.stats.packets_in += 1;
        self.rtcp.on_rtp_received(h.ssrc, h.sequence_number, h.timestamp, now);
        if Some(h.payload_type) == self.telephone_event {
            return self.dtmf.on_packet(h.timestamp, &packet.payload);
        }
        if h.payload_type != self.payload_type {
            self.stats.ignored += 1;
            return None;
        }
        self.jitter.push(Packet { ssrc: h.ssrc, seq: h.sequence_number, timestamp: h.timestamp, payload: packet.payload.to_vec() }, now);
        None
    }

    /// The caller's next 20 ms at 16 kHz (call once per frame time): played out of the jitter
    /// buffer, decoded, concealed when lost, silence before the first packet.
    pub fn next_frame(&mut self, out: &mut [f32; FRAME_SAMPLES]) {
        let rate = self.codec.audio_rate();
        let mut samples = std::mem::take(&mut self.scratch);
        samples.fill(0.0);
        match self.jitter.pop() {
            Playout::Frame(payload) => {
                self.decode(&payload, &mut samples);
                self.conceal.good(&mut samples);
            }
            Playout::Missing => self.conceal.conceal(&mut samples),
            Playout::Waiting => {}
        }
        if rate == RATE {
            self.inbound.extend(samples.iter().copied());
        } else {
            self.inbound.extend(self.up.process(&samples));
        }
        self.scratch = samples;
        for o in out.iter_mut() {
            *o = self.inbound.pop_front().unwrap_or(0.0);
        }
        // Keep the resampler's output from drifting ahead.
        while self.inbound.len() > FRAME_SAMPLES * 3 {
            self.inbound.pop_front();
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut [f32]) {
        let to_f32 = |s: i16| s as f32 / 32768.0;
        match &mut self.dec {
            Dec::Pcmu => out.iter_mut().zip(payload).for_each(|(o, &b)| *o = to_f32(g711::ulaw_to_linear(b))),
            Dec::Pcma => out.iter_mut().zip(payload).for_each(|(o, &b)| *o = to_f32(g711::alaw_to_linear(b))),
            Dec::G722(d) => {
                let mut pcm = vec![0i16; d.max_decode_samples(payload.len())];
                let n = d.decode_into(payload, &mut pcm).unwrap_or(0);
                out.iter_mut().zip(&pcm[..n]).for_each(|(o, &s)| *o = to_f32(s));
            }
        }
    }

    /// Queues keypad digits to send as RFC 4733 events in place of audio. False (nothing queued)
    /// when the caller did not offer telephone-event, or a character is not a keypad digit.
    pub fn send_digits(&mut self, digits: &str) -> bool {
        if self.telephone_event.is_none() || digits.is_empty() || !digits.chars().all(|d| super::dtmf::event_code(d).is_some()) {
            return false;
        }
        for d in digits.chars() {
            let packets = super::dtmf::key_press(d, PRESS_TICKS, 160);
            for (i, (_, payload)) in packets.into_iter().enumerate() {
                self.digits_out.push_back(DigitFrame::Event { first: i == 0, payload });
            }
            self.digits_out.extend((0..GAP_FRAMES).map(|_| DigitFrame::Gap));
        }
        true
    }

    /// Whether digits are still being sent.
    pub fn sending_digits(&self) -> bool {
        !self.digits_out.is_empty()
    }

    /// The bot's next 20 ms (16 kHz) as an RTP datagram for [`Self::remote`]. `speaking` false
    /// marks silence: the packet is still sent (many gateways treat a gap as a dead line), and the
    /// next speech gets the marker bit.
    pub fn packetize(&mut self, frame: &[f32], speaking: bool, now: Duration) -> Vec<u8> {
        let rate = self.codec.audio_rate();
        let samples: Vec<f32> = if rate == RATE { frame.to_vec() } else { self.down.process(frame) };
        let per_frame = (rate / 50) as usize;
        let mut pcm: Vec<i16> = samples.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect();
        pcm.resize(per_frame, 0);
        let payload: Vec<u8> = match &mut self.enc {
            Enc::Pcmu => pcm.iter().map(|&s| g711::linear_to_ulaw(s)).collect(),
            Enc::Pcma => pcm.iter().map(|&s| g711::linear_to_alaw(s)).collect(),
            Enc::G722(e) => {
                let mut out = vec![0u8; e.max_encode_bytes(pcm.len())];
                let n = e.encode_into(&pcm, &mut out).unwrap_or(0);
                out.truncate(n);
                out
            }
        };
        let marker = speaking && self.marker;
        self.marker = !speaking;
        let (marker, payload_type, timestamp, payload) = match (self.digits_out.pop_front(), self.telephone_event) {
            (Some(DigitFrame::Event { first, payload: event }), Some(pt)) => {
                if first {
                    self.digit_timestamp = self.timestamp;
                }
                // Audio after the digits starts a new talk spurt.
                self.marker = true;
                (first, pt, self.digit_timestamp, event.to_vec())
            }
            _ => (marker, self.payload_type, self.timestamp, payload),
        };
        let packet = rtp::packet::Packet {
            header: rtp::header::Header {
                version: 2,
                marker,
                payload_type,
                sequence_number: self.seq,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        self.rtcp.on_rtp_sent(self.timestamp, packet.payload.len(), now);
        self.seq = self.seq.wrapping_add(1);
        // The RTP clock of all three codecs runs at 8 kHz (G.722's by RFC 3551's old mistake).
        self.timestamp = self.timestamp.wrapping_add(160);
        self.stats.packets_out += 1;
        let mut buf = vec![0u8; packet.marshal_size()];
        match packet.marshal_to(&mut buf) {
            Ok(n) => buf.truncate(n),
            Err(_) => buf.clear(),
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(codec: Codec) -> Agreed {
        Agreed {
            codec,
            payload_type: codec.payload_type(),
            telephone_event: Some(101),
            remote: "127.0.0.1:6000".parse().unwrap(),
            remote_rtcp: "127.0.0.1:6001".parse().unwrap(),
            direction: crate::sdp::Direction::SendRecv,
        }
    }

    fn tone(n: usize, offset: usize) -> Vec<f32> {
        (0..n).map(|i| 0.3 * ((i + offset) as f32 * 2.0 * std::f32::consts::PI * 440.0 / 16000.0).sin()).collect()
    }

    /// Our packets fed to a second session (the "caller"): the audio comes through.
    fn loopback(codec: Codec) -> f32 {
        let mut us = MediaSession::new(&agreed(codec), &MediaConfig::default(), 1, 0, Duration::ZERO);
        let mut them = MediaSession::new(&agreed(codec), &MediaConfig::default(), 2, 0, Duration::ZERO);
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let mut got = Vec::new();
        for i in 0..100 {
            let now = Duration::from_millis(i * 20);
            let p = us.packetize(&tone(FRAME_SAMPLES, i as usize * FRAME_SAMPLES), true, Duration::ZERO);
            assert_eq!(them.on_datagram(&p, from, now), None);
            let mut f = [0.0; FRAME_SAMPLES];
            them.next_frame(&mut f);
            got.extend_from_slice(&f);
        }
        assert_eq!(them.remote(), from, "symmetric RTP latches onto the source");
        // Loudness of the second half (after the jitter delay and filters settle) vs the tone's.
        let tail = &got[got.len() / 2..];
        (tail.iter().map(|s| s * s).sum::<f32>() / tail.len() as f32).sqrt() / (0.3 / 2f32.sqrt())
    }

    #[test]
    fn audio_survives_each_codec() {
        for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722] {
            let level = loopback(codec);
            assert!((0.8..1.2).contains(&level), "{codec:?}: {level}");
        }
    }

    #[test]
    fn keypad_events_and_junk_are_told_apart() {
        let mut s = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 1, 0, Duration::ZERO);
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let event = rtp::packet::Packet {
            header: rtp::header::Header { version: 2, payload_type: 101, sequence_number: 1, timestamp: 500, ssrc: 9, marker: true, ..Default::default() },
            payload: Bytes::from_static(&[5, 10, 0, 160]),
        };
        let bytes = event.marshal().unwrap();
        assert_eq!(s.on_datagram(&bytes, from, Duration::ZERO), Some('5'));
        assert_eq!(s.on_datagram(&bytes, from, Duration::ZERO), None, "the same press");
        assert_eq!(s.on_datagram(b"not rtp", from, Duration::ZERO), None);
        assert_eq!(s.on_datagram(&[0u8; 12], from, Duration::ZERO), None, "version 0");
        assert_eq!(s.stats().ignored, 2);
        assert_eq!(s.silent_for(Duration::from_secs(3)), Duration::from_secs(3));
    }

    #[test]
    fn outbound_packets_count_up_and_mark_talk_spurts() {
        let mut s = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 1, 0, Duration::ZERO);
        let silence = [0.0f32; FRAME_SAMPLES];
        let parse = |b: &[u8]| rtp::packet::Packet::unmarshal(&mut &b[..]).unwrap().header;
        let a = parse(&s.packetize(&silence, false, Duration::ZERO));
        let b = parse(&s.packetize(&tone(FRAME_SAMPLES, 0), true, Duration::ZERO));
        let c = parse(&s.packetize(&tone(FRAME_SAMPLES, 320), true, Duration::ZERO));
        assert_eq!((a.marker, b.marker, c.marker), (false, true, false));
        assert_eq!(b.sequence_number, a.sequence_number.wrapping_add(1));
        assert_eq!(c.timestamp, b.timestamp.wrapping_add(160));
        assert_eq!(a.payload_type, 0);
    }

    #[test]
    fn digits_go_out_as_rfc_4733_events_and_come_back_as_digits() {
        let mut us = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 1, 0, Duration::ZERO);
        let mut them = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 2, 0, Duration::ZERO);
        assert!(!us.send_digits("12x"), "not a keypad digit");
        assert!(us.send_digits("#12"));
        let silence = [0.0f32; FRAME_SAMPLES];
        let mut got = String::new();
        let mut frames = 0;
        while us.sending_digits() {
            let p = us.packetize(&silence, false, Duration::from_millis(frames * 20));
            if let Some(d) = them.on_datagram(&p, "127.0.0.1:6000".parse().unwrap(), Duration::from_millis(frames * 20)) {
                got.push(d);
            }
            frames += 1;
        }
        assert_eq!(got, "#12");
        assert_eq!(frames, 3 * (7 + 3), "each press: 5 updates + 2 more End packets, then 3 frames of pause");
        // Audio resumes with the marker, at a timestamp that kept running.
        let p = rtp::packet::Packet::unmarshal(&mut &us.packetize(&tone(FRAME_SAMPLES, 0), true, Duration::ZERO)[..]).unwrap();
        assert_eq!(p.header.payload_type, 0);
        assert!(p.header.marker);
        let mut plain = MediaSession::new(&Agreed { telephone_event: None, ..agreed(Codec::Pcmu) }, &MediaConfig::default(), 1, 0, Duration::ZERO);
        assert!(!plain.send_digits("1"), "no telephone-event offered");
    }

    /// Replayed captures can come from port 0; answering there would silence the bot.
    #[test]
    fn media_from_port_zero_does_not_move_our_stream() {
        let mut us = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 1, 0, Duration::ZERO);
        let mut them = MediaSession::new(&agreed(Codec::Pcmu), &MediaConfig::default(), 2, 0, Duration::ZERO);
        let p = them.packetize(&tone(FRAME_SAMPLES, 0), true, Duration::ZERO);
        us.on_datagram(&p, "127.0.0.1:0".parse().unwrap(), Duration::ZERO);
        assert_eq!(us.remote(), "127.0.0.1:6000".parse().unwrap());
        us.on_datagram(&p, "127.0.0.1:7000".parse().unwrap(), Duration::ZERO);
        assert_eq!(us.remote(), "127.0.0.1:7000".parse().unwrap(), "symmetric RTP");
    }
}
