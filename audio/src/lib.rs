//! Audio basics every transport and model shares: a mono sample buffer, file decoding, WAV writing,
//! resampling and G.711.

pub mod decode;
pub mod g711;
pub mod resample;
pub mod wav;

pub use decode::{decode_file, DecodeError};
pub use resample::Resampler;

/// The rate every stage inside a call works at (VAD, STT, the end-of-turn model, the session):
/// transports resample to and from it at their edge.
pub const RATE: u32 = 16_000;
/// One frame of call audio: 20 ms, the packet time of telephone RTP and the session's tick.
pub const FRAME: std::time::Duration = std::time::Duration::from_millis(20);
/// Samples in one [`FRAME`] at [`RATE`].
pub const FRAME_SAMPLES: usize = (RATE as usize) * 20 / 1000;

/// Mono PCM audio as f32 in [-1, 1] at a known rate. Every stage exchanges audio in this form; codecs
/// and files convert at the edges.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Audio {
    pub fn new(samples: Vec<f32>, rate: u32) -> Self {
        Self { samples, rate }
    }

    pub fn silence(rate: u32, seconds: f32) -> Self {
        Self { samples: vec![0.0; (rate as f32 * seconds) as usize], rate }
    }

    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }

    /// The same audio at `rate` (a copy when the rate already matches).
    pub fn resampled(&self, rate: u32) -> Audio {
        if rate == self.rate {
            return self.clone();
        }
        let mut r = Resampler::new(self.rate, rate);
        let mut out = r.process(&self.samples);
        out.extend(r.flush());
        Audio { samples: out, rate }
    }

    /// Peak-normalised RMS level in dBFS, for diagnostics and tests.
    pub fn rms_dbfs(&self) -> f32 {
        if self.samples.is_empty() {
            return f32::NEG_INFINITY;
        }
        let ms = self.samples.iter().map(|s| s * s).sum::<f32>() / self.samples.len() as f32;
        10.0 * ms.max(1e-20).log10()
    }
}

/// Converts i16 PCM to f32.
pub fn i16_to_f32(s: i16) -> f32 {
    s as f32 / 32768.0
}

/// Converts f32 to i16 PCM, clipping.
pub fn f32_to_i16(s: f32) -> i16 {
    (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}
