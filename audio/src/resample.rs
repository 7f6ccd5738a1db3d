//! Streaming sample-rate conversion with a windowed-sinc (Kaiser) interpolator.
//!
//! Calls mix rates: 8 kHz G.711, 16 kHz for Whisper and Silero, 22.05 kHz Piper voices, 48 kHz WebRTC.
//! Naive (linear) interpolation aliases audibly and costs STT accuracy, so this filters properly: the
//! cut-off sits just below the lower of the two Nyquist frequencies. It keeps its history between
//! calls, so 20 ms frames can be pushed one at a time with the same result as one long buffer.

use std::f64::consts::PI;

/// Zero crossings of the sinc on each side of the centre; 16 gives about 90 dB of stop-band at a
/// cost of 32 taps per output sample.
const HALF_TAPS: usize = 16;
/// Filter phases per input sample; positions between phases are interpolated linearly.
const PHASES: usize = 256;
const KAISER_BETA: f64 = 8.6;

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Input samples per output sample.
    step: f64,
    /// Taps for phases 0..=PHASES, each 2 * HALF_TAPS wide (scaled by the cut-off when downsampling).
    table: Vec<f32>,
    /// Unconsumed input, starting HALF_TAPS samples before `pos`.
    history: Vec<f32>,
    /// Position of the next output sample, in input samples; input sample `n` (counted from the last
    /// drain) sits at `history[n + HALF_TAPS]`.
    pos: f64,
    /// Input samples taken and output samples given, so `flush` knows how much output is owed.
    total_in: u64,
    total_out: u64,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let step = from as f64 / to as f64;
        // Cut-off relative to the input Nyquist: 1 when upsampling, to/from when downsampling, a
        // little lower to leave room for the transition band.
        let cutoff = 0.95 * (to as f64 / from as f64).min(1.0);
        let width = 2 * HALF_TAPS;
        let mut table = vec![0f32; (PHASES + 1) * width];
        for phase in 0..=PHASES {
            let frac = phase as f64 / PHASES as f64;
            for t in 0..width {
                // Distance from the output position to input tap t.
                let x = t as f64 - (HALF_TAPS as f64 - 1.0) - frac;
                let sinc = if x.abs() < 1e-9 { 1.0 } else { (PI * x * cutoff).sin() / (PI * x * cutoff) };
                let r = x / HALF_TAPS as f64;
                let window = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA)
                };
                table[phase * width + t] = (cutoff * sinc * window) as f32;
            }
        }
        Self { from, to, step, table, history: vec![0.0; HALF_TAPS], pos: 0.0, total_in: 0, total_out: 0 }
    }

    /// Converts the next block of input; returns what output it completes.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        if self.from == self.to {
            return input.to_vec();
        }
        self.history.extend_from_slice(input);
        self.total_in += input.len() as u64;
        let width = 2 * HALF_TAPS;
        let mut out = Vec::with_capacity((input.len() as f64 / self.step) as usize + 2);
        // Output at position p mixes input samples floor(p) - HALF_TAPS + 1 ..= floor(p) + HALF_TAPS,
        // which sit at history[floor(p) + 1 ..= floor(p) + 2 * HALF_TAPS].
        while (self.pos.floor() as usize) + 1 + width <= self.history.len() {
            let whole = self.pos.floor();
            let base = whole as usize + 1;
            let frac = (self.pos - whole) * PHASES as f64;
            let phase = frac.floor() as usize;
            let mix = (frac - phase as f64) as f32;
            let a = &self.table[phase * width..(phase + 1) * width];
            let b = &self.table[(phase + 1) * width..(phase + 2) * width];
            let window = &self.history[base..base + width];
            let mut acc = 0f32;
            for i in 0..width {
                acc += window[i] * (a[i] + mix * (b[i] - a[i]));
            }
            out.push(acc);
            self.pos += self.step;
        }
        let consumed = (self.pos.floor() as usize).min(self.history.len());
        self.history.drain(..consumed);
        self.pos -= consumed as f64;
        self.total_out += out.len() as u64;
        out
    }

    /// Pushes enough silence to emit the output still held back by the filter delay.
    pub fn flush(&mut self) -> Vec<f32> {
        if self.from == self.to {
            return Vec::new();
        }
        let owed = ((self.total_in as f64 / self.step).ceil() as u64).saturating_sub(self.total_out) as usize;
        let mut out = self.process(&vec![0.0; HALF_TAPS * 2 + 2]);
        out.truncate(owed);
        *self = Self::new(self.from, self.to);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize).map(|i| (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5).collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    /// Amplitude of `freq` in `x` by correlation with a sine and cosine.
    fn amplitude_at(x: &[f32], freq: f64, rate: u32) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            let ph = 2.0 * PI * freq * i as f64 / rate as f64;
            s += *v as f64 * ph.sin();
            c += *v as f64 * ph.cos();
        }
        2.0 * (s * s + c * c).sqrt() / x.len() as f64
    }

    #[test]
    fn length_follows_the_ratio() {
        for (from, to) in [(8000, 16000), (16000, 8000), (22050, 8000), (22050, 48000), (48000, 16000)] {
            let a = crate::Audio::new(tone(440.0, from, 1.0), from);
            let b = a.resampled(to);
            assert!((b.samples.len() as i64 - to as i64).abs() <= 2, "{from}->{to}: {}", b.samples.len());
        }
    }

    #[test]
    fn passband_tone_keeps_its_level_and_frequency() {
        for (from, to) in [(8000, 16000), (22050, 8000), (22050, 16000), (48000, 8000)] {
            let out = crate::Audio::new(tone(1000.0, from, 1.0), from).resampled(to);
            let mid = &out.samples[to as usize / 10..to as usize * 9 / 10];
            assert!((rms(mid) - 0.5 / 2f32.sqrt()).abs() < 0.01, "{from}->{to} rms {}", rms(mid));
            assert!((amplitude_at(mid, 1000.0, to) - 0.5).abs() < 0.01, "{from}->{to}");
        }
    }

    #[test]
    fn tone_above_target_nyquist_is_removed_not_aliased() {
        // 6 kHz at 22.05 kHz would alias to 2 kHz at 8 kHz if not filtered.
        let out = crate::Audio::new(tone(6000.0, 22050, 1.0), 22050).resampled(8000);
        let mid = &out.samples[800..7200];
        assert!(amplitude_at(mid, 2000.0, 8000) < 0.005, "alias {}", amplitude_at(mid, 2000.0, 8000));
        assert!(rms(mid) < 0.01, "rms {}", rms(mid));
    }

    #[test]
    fn streaming_in_frames_equals_one_block() {
        let input = tone(700.0, 8000, 0.5);
        let mut whole = Resampler::new(8000, 22050);
        let mut a = whole.process(&input);
        a.extend(whole.flush());
        let mut framed = Resampler::new(8000, 22050);
        let mut b = Vec::new();
        for chunk in input.chunks(160) {
            b.extend(framed.process(chunk));
        }
        b.extend(framed.flush());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
