//! Audio basics every transport and model shares: a mono sample buffer, file decoding, WAV writing,
//! resampling and G.711.

pub mod decode;
pub mod g711;
pub mod resample;
pub mod wav;

pub use decode::{decode_file, DecodeError};
pub use resample::Resampler;

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
