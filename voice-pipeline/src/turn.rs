//! Learned end-of-turn: Smart Turn v3 (pipecat-ai, BSD-2) tells from the sound of the last 8 s of
//! a turn whether the caller has finished, or only paused ("I want to return ... some headphones").
//!
//! The model is a Whisper-tiny-sized encoder with a one-value head. Its input is Whisper's log-mel
//! spectrogram of exactly 8 s at 16 kHz (the turn's end kept, zero-padded at the front), computed
//! here ([`log_mel_8s`]) as the Hugging Face `WhisperFeatureExtractor` does: the waveform first
//! normalised to zero mean and unit variance, a 400-point periodic Hann window every 160 samples
//! over the reflect-padded signal, the power spectrum through the 80 Slaney mel filters, log10,
//! floored 8 below the maximum, then `(x + 4) / 4`. Its output is the probability that the turn is
//! complete.
//!
//! The session asks it after a short silence and keeps listening while it says "not yet"
//! (`session::endpoint`); the model runs on the worker threads, never on a call's media thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use realfft::RealFftPlanner;

use crate::onnx::{self, OnnxError};
use ivr_audio::RATE;

/// The model's window: 8 s at [`RATE`].
pub const WINDOW_SAMPLES: usize = 8 * RATE as usize;
pub const N_MELS: usize = 80;
/// Mel frames of the window (10 ms each; the reflect padding makes 801, the last is dropped).
pub const N_FRAMES: usize = 800;
const N_FFT: usize = 400;
const HOP: usize = 160;
const N_FREQS: usize = N_FFT / 2 + 1;

/// The Hann window, FFT plan and mel filters, made once.
struct MelTables {
    window: Vec<f64>,
    filters: Vec<f64>,
    fft: Arc<dyn realfft::RealToComplex<f64>>,
}

fn tables() -> &'static MelTables {
    static TABLES: std::sync::OnceLock<MelTables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        // Periodic Hann (torch.hann_window's default): the window of length N + 1 without its last point.
        let window = (0..N_FFT).map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()).collect();
        let filters = ivr_models::mel::mel_filters_f64(RATE, N_FFT, N_MELS);
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        MelTables { window, filters, fft }
    })
}

/// The model's input for a turn: the log-mel spectrogram of its last 8 s, row-major
/// `[N_MELS][N_FRAMES]`. Shorter audio is zero-padded at the front (the model was trained so).
pub fn log_mel_8s(audio: &[f32]) -> Vec<f32> {
    let t = tables();
    let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
    let mut w = vec![0f32; WINDOW_SAMPLES - tail.len()];
    w.extend(tail.iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
    // Zero mean, unit variance over the whole window (padding included). The reference does this
    // in f32 with NumPy's pairwise sums, and so does this, to the bit: the model is quantised, and
    // on some turns a difference of 1e-5 in its input moves its answer by 0.3.
    let n = w.len() as f32;
    let mean = numpy_sum(&w) / n;
    let centred: Vec<f32> = w.iter().map(|v| (v - mean) * (v - mean)).collect();
    let std = (numpy_sum(&centred) / n + 1e-7f32).sqrt();
    let x: Vec<f64> = w.iter().map(|v| ((v - mean) / std) as f64).collect();
    // Reflect padding by half a window on each side (the edge sample itself is not repeated).
    let pad = N_FFT / 2;
    let mut padded = Vec::with_capacity(x.len() + 2 * pad);
    padded.extend((1..=pad).rev().map(|i| x[i]));
    padded.extend_from_slice(&x);
    padded.extend((0..pad).map(|i| x[x.len() - 2 - i]));

    let mut frame = t.fft.make_input_vec();
    let mut spectrum = t.fft.make_output_vec();
    let mut power = [0f64; N_FREQS];
    let mut out = vec![0f64; N_MELS * N_FRAMES];
    for f in 0..N_FRAMES {
        let start = f * HOP;
        for (k, slot) in frame.iter_mut().enumerate() {
            *slot = padded[start + k] * t.window[k];
        }
        // The plan's buffers have the plan's sizes, so this cannot fail.
        if t.fft.process(&mut frame, &mut spectrum).is_err() {
            continue;
        }
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for m in 0..N_MELS {
            let row = &t.filters[m * N_FREQS..(m + 1) * N_FREQS];
            let e: f64 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
            out[m * N_FRAMES + f] = e.max(1e-10).log10();
        }
    }
    let max = out.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    out.into_iter().map(|v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32).collect()
}

/// An f32 sum in NumPy's order (pairwise: blocks of up to 128 summed in eight lanes, halves
/// split on multiples of eight), so that the features match the reference's to the last bit.
fn numpy_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0f32, |acc, v| acc + v);
    }
    if n <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for block in a[8..whole].chunks_exact(8) {
            for (acc, v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[whole..] {
            res += v;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    numpy_sum(&a[..half]) + numpy_sum(&a[half..])
}

/// The Smart Turn model, loaded once and shared by every call (a small pool of sessions, as for
/// Silero: a call waits for one only while another call's question is being answered).
#[derive(Clone)]
pub struct TurnModel {
    sessions: Arc<Vec<Mutex<ort::session::Session>>>,
    path: PathBuf,
}

impl std::fmt::Debug for TurnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnModel").field("path", &self.path).finish()
    }
}

impl TurnModel {
    /// Loads the ONNX file, checking that it takes Smart Turn's `input_features`.
    pub fn load(path: &Path, threads: usize) -> Result<Self, OnnxError> {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 2);
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let session = onnx::session(path, threads)?;
            let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            if inputs != ["input_features"] {
                return Err(OnnxError::Model {
                    path: path.to_path_buf(),
                    reason: format!("inputs {inputs:?} are not Smart Turn's (input_features)"),
                });
            }
            sessions.push(Mutex::new(session));
        }
        Ok(Self { sessions: Arc::new(sessions), path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn session(&self) -> std::sync::MutexGuard<'_, ort::session::Session> {
        for s in self.sessions.iter() {
            if let Ok(g) = s.try_lock() {
                return g;
            }
        }
        self.sessions[0].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The probability that the turn ending with `audio` (16 kHz mono) is complete.
    pub fn probability(&self, audio: &[f32]) -> Result<f32, OnnxError> {
        let run = |e: &dyn std::fmt::Display| OnnxError::Run(e.to_string());
        let features = log_mel_8s(audio);
        let input = ort::value::Tensor::from_array(([1usize, N_MELS, N_FRAMES], features.into_boxed_slice())).map_err(|e| run(&e))?;
        let mut session = self.session();
        let outputs = session.run(ort::inputs!["input_features" => input]).map_err(|e| run(&e))?;
        let (_, value) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run(&e))?;
        let p = value.first().copied().ok_or_else(|| run(&"the model returned no value"))?;
        if !p.is_finite() {
            return Err(run(&format!("the model returned {p}")));
        }
        Ok(p.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_gives_the_floor_everywhere() {
        // All zeros: every mel energy is the 1e-10 floor, log10 = -10, the maximum too: (-10 + 4) / 4.
        let m = log_mel_8s(&[0.0; 16_000]);
        assert_eq!(m.len(), N_MELS * N_FRAMES);
        assert!(m.iter().all(|&v| (v + 1.5).abs() < 1e-6), "{}", m[0]);
    }

    #[test]
    fn a_tone_lands_in_its_mel_band_at_the_end_of_the_window() {
        // One second of 1 kHz at the end of the window: loud in the band around 1 kHz in the last
        // 100 frames, at the floor (8 below the maximum) in the silent front.
        let tone: Vec<f32> = (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5).collect();
        let m = log_mel_8s(&tone);
        let at = |mel: usize, frame: usize| m[mel * N_FRAMES + frame];
        let max = m.iter().cloned().fold(f32::MIN, f32::max);
        let (loudest_band, _) = (0..N_MELS).map(|b| (b, at(b, 750))).fold((0, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
        // 1 kHz is mel 15 of 0..~45 (Slaney), band 15/45.2*81 - 1 = about 26 of 80.
        assert!((24..=28).contains(&loudest_band), "{loudest_band}");
        assert!((at(loudest_band, 750) - max).abs() < 0.05);
        assert!((at(loudest_band, 100) - (max - 2.0)).abs() < 1e-5, "front is at the floor");
        // Longer audio keeps its end: the same features for a tone with 20 s of silence before it.
        let mut long = vec![0.0f32; 20 * 16_000];
        long.extend_from_slice(&tone);
        assert_eq!(log_mel_8s(&long), m);
    }
}
