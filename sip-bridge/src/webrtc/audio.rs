//! A browser call's audio: Opus at 48 kHz (libopus through the `opus` binding) or PCMU at 8 kHz as
//! the fallback, to and from the 16 kHz frames of a leg. The caller's packets go through the same
//! adaptive jitter buffer as a phone's; a lost Opus packet is concealed by the decoder itself
//! (its packet loss concealment), a lost PCMU one by the shared [`Concealer`].

use std::collections::VecDeque;
use std::time::Duration;

use ivr_audio::g711;
use ivr_audio::resample::Resampler;
use ivr_audio::{FRAME, FRAME_SAMPLES, RATE};

use crate::rtp::jitter::{Concealer, JitterBuffer, Packet, Playout};
use crate::rtp::media::MediaConfig;

/// Below this RMS (about -50 dBFS) a decoded frame is a pause: a backlog may be dropped there.
const QUIET: f32 = 0.003;

/// The codec a browser call agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrowserCodec {
    /// Opus, 48 kHz (RFC 7587: the RTP clock is always 48 kHz).
    Opus,
    /// G.711 µ-law, 8 kHz: for a browser or gateway that offers no Opus.
    Pcmu,
}

impl BrowserCodec {
    /// The codec's sample rate, which is also its RTP clock rate.
    pub fn rate(self) -> u32 {
        match self {
            BrowserCodec::Opus => 48_000,
            BrowserCodec::Pcmu => 8_000,
        }
    }

    /// RTP timestamp ticks per 20 ms frame.
    pub fn ticks_per_frame(self) -> u32 {
        self.rate() / 50
    }
}

enum Decoder {
    Opus(Box<opus::Decoder>),
    Pcmu(Concealer),
}

enum Encoder {
    Opus(Box<opus::Encoder>),
    Pcmu,
}

/// Errors setting up the codec (libopus refused its settings).
#[derive(Debug, thiserror::Error)]
#[error("Opus codec: {0}")]
pub struct CodecError(#[from] opus::Error);

/// Both directions of a browser call's audio.
pub struct BrowserAudio {
    codec: BrowserCodec,
    jitter: JitterBuffer,
    decoder: Decoder,
    encoder: Encoder,
    /// Codec rate -> 16 kHz and back.
    up: Resampler,
    down: Resampler,
    /// Decoded caller audio at 16 kHz not yet taken as a frame.
    inbound: VecDeque<f32>,
    /// One decoded packet at the codec's rate (Opus may carry up to 120 ms).
    scratch: Vec<f32>,
    deepest: u32,
}

impl BrowserAudio {
    pub fn new(codec: BrowserCodec, cfg: &MediaConfig) -> Result<Self, CodecError> {
        let rate = codec.rate();
        let (decoder, encoder) = match codec {
            BrowserCodec::Opus => {
                let dec = opus::Decoder::new(rate, opus::Channels::Mono)?;
                let mut enc = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
                // Speech for a phone conversation: 32 kbit/s is wideband-transparent; FEC lets
                // the browser recover a lost packet from the next one.
                enc.set_bitrate(opus::Bitrate::Bits(32_000))?;
                enc.set_inband_fec(true)?;
                enc.set_packet_loss_perc(5)?;
                (Decoder::Opus(Box::new(dec)), Encoder::Opus(Box::new(enc)))
            }
            BrowserCodec::Pcmu => (Decoder::Pcmu(Concealer::default()), Encoder::Pcmu),
        };
        Ok(Self {
            codec,
            jitter: JitterBuffer::new(rate, FRAME, Duration::from_millis(cfg.jitter_min_ms as u64), Duration::from_millis(cfg.jitter_max_ms as u64)),
            decoder,
            encoder,
            up: Resampler::new(rate, RATE),
            down: Resampler::new(RATE, rate),
            inbound: VecDeque::with_capacity(FRAME_SAMPLES * 4),
            scratch: vec![0.0; (rate as usize) * 120 / 1000],
            deepest: 0,
        })
    }

    pub fn codec(&self) -> BrowserCodec {
        self.codec
    }

    pub fn jitter_stats(&self) -> crate::rtp::jitter::Stats {
        self.jitter.stats()
    }

    /// The jitter buffer's playout delay now.
    pub fn playout_delay_ms(&self) -> u32 {
        self.jitter.target() * 20
    }

    /// The most frames the jitter buffer has held.
    pub fn deepest_frames(&self) -> u32 {
        self.deepest
    }

    /// A media packet from the browser (its RTP header's fields and payload).
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Vec<u8>, now: Duration) {
        self.jitter.push(Packet { ssrc: 0, seq, timestamp, payload }, now);
        self.deepest = self.deepest.max(self.jitter.depth() as u32);
    }

    /// The browser's next 20 ms at 16 kHz (call once per frame time).
    pub fn next_frame(&mut self, out: &mut [f32; FRAME_SAMPLES]) {
        // A packet longer than 20 ms leaves audio over; take no new one until it is used.
        if self.inbound.len() < FRAME_SAMPLES {
            let n = self.play_one();
            let decoded = &self.scratch[..n];
            // In a pause, a backlog (packets that piled up while the call's thread or the network
            // stalled, typically as the call starts) is dropped: otherwise the caller stays that
            // far behind until the buffer's slow shrinking catches up, many seconds later.
            let energy = decoded.iter().map(|s| s * s).sum::<f32>() / n.max(1) as f32;
            if energy < QUIET * QUIET {
                self.jitter.trim();
            }
            if self.codec.rate() == RATE {
                self.inbound.extend(decoded.iter().copied());
            } else {
                let up = self.up.process(decoded);
                self.inbound.extend(up);
            }
        }
        for o in out.iter_mut() {
            *o = self.inbound.pop_front().unwrap_or(0.0);
        }
        while self.inbound.len() > FRAME_SAMPLES * 6 {
            self.inbound.pop_front();
        }
    }

    /// Plays one packet out of the jitter buffer into `scratch`; returns how many samples.
    fn play_one(&mut self) -> usize {
        let per_frame = self.codec.ticks_per_frame() as usize;
        let playout = self.jitter.pop();
        match (&mut self.decoder, playout) {
            (_, Playout::Waiting) => {
                self.scratch[..per_frame].fill(0.0);
                per_frame
            }
            (Decoder::Opus(d), Playout::Frame(payload)) => match d.decode_float(&payload, &mut self.scratch, false) {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("undecodable Opus packet: {e}");
                    self.scratch[..per_frame].fill(0.0);
                    per_frame
                }
            },
            (Decoder::Opus(d), Playout::Missing) => {
                // An empty packet asks libopus to conceal one frame.
                let n = d.decode_float(&[], &mut self.scratch[..per_frame], false).unwrap_or(0);
                if n == 0 {
                    self.scratch[..per_frame].fill(0.0);
                }
                per_frame
            }
            (Decoder::Pcmu(c), Playout::Frame(payload)) => {
                let n = payload.len().min(self.scratch.len());
                for (o, &b) in self.scratch.iter_mut().zip(&payload[..n]) {
                    *o = ivr_audio::i16_to_f32(g711::ulaw_to_linear(b));
                }
                c.good(&mut self.scratch[..n]);
                n
            }
            (Decoder::Pcmu(c), Playout::Missing) => {
                c.conceal(&mut self.scratch[..per_frame]);
                per_frame
            }
        }
    }

    /// One 20 ms frame (16 kHz) encoded for the browser.
    pub fn encode(&mut self, frame: &[f32; FRAME_SAMPLES]) -> Vec<u8> {
        let per_frame = self.codec.ticks_per_frame() as usize;
        let mut samples = if self.codec.rate() == RATE { frame.to_vec() } else { self.down.process(frame) };
        samples.resize(per_frame, 0.0);
        match &mut self.encoder {
            Encoder::Opus(e) => match e.encode_vec_float(&samples, 1500) {
                Ok(bytes) => bytes,
                Err(err) => {
                    tracing::warn!("Opus encoder: {err}");
                    Vec::new()
                }
            },
            Encoder::Pcmu => samples.iter().map(|&s| g711::linear_to_ulaw(ivr_audio::f32_to_i16(s))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frame: usize) -> [f32; FRAME_SAMPLES] {
        let mut out = [0.0f32; FRAME_SAMPLES];
        for (i, o) in out.iter_mut().enumerate() {
            let t = (frame * FRAME_SAMPLES + i) as f32 / RATE as f32;
            *o = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
        }
        out
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Each codec carries a tone through encode, the jitter buffer and decode at about its level.
    #[test]
    fn both_codecs_carry_a_tone_both_ways() {
        for codec in [BrowserCodec::Opus, BrowserCodec::Pcmu] {
            let (mut tx, mut rx) = (BrowserAudio::new(codec, &MediaConfig::default()).unwrap(), BrowserAudio::new(codec, &MediaConfig::default()).unwrap());
            let mut heard = Vec::new();
            for i in 0..50usize {
                let payload = tx.encode(&tone(i));
                assert!(!payload.is_empty());
                if codec == BrowserCodec::Pcmu {
                    assert_eq!(payload.len(), 160);
                }
                let now = FRAME * i as u32;
                rx.push(i as u16, i as u32 * codec.ticks_per_frame(), payload, now);
                let mut out = [0.0f32; FRAME_SAMPLES];
                rx.next_frame(&mut out);
                heard.extend_from_slice(&out);
            }
            let level = rms(&heard[heard.len() / 2..]);
            assert!((0.15..0.3).contains(&level), "{codec:?}: level {level}");
        }
    }

    /// A lost Opus packet is concealed by the decoder (no click: never louder than the signal), and
    /// the stream goes on at its level.
    #[test]
    fn a_lost_opus_packet_is_concealed() {
        let (mut tx, mut rx) = (BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap(), BrowserAudio::new(BrowserCodec::Opus, &MediaConfig::default()).unwrap());
        let mut levels = Vec::new();
        for i in 0..40usize {
            let payload = tx.encode(&tone(i));
            if i != 30 {
                rx.push(i as u16, i as u32 * 960, payload, FRAME * i as u32);
            }
            let mut out = [0.0f32; FRAME_SAMPLES];
            rx.next_frame(&mut out);
            levels.push(rms(&out));
        }
        assert!(rx.jitter_stats().concealed >= 1);
        assert!(levels.iter().all(|&l| l < 0.25), "{levels:?}");
        assert!(levels[33..].iter().all(|&l| l > 0.15), "{levels:?}");
    }
}
