//! Voice activity detection: Silero VAD's speech probability, turned into speech start/end events.
//!
//! Two parts, so the timing logic can be tested without the model:
//! - [`SileroVad`] runs the ONNX model on 32 ms chunks at 16 kHz, carrying its recurrent state and
//!   the 64-sample context across chunks (the model only sees the stream as a whole that way).
//! - [`SpeechSegmenter`] is a pure state machine from (probability, time) to [`VadEvent`]s with a
//!   start threshold, a lower end threshold (hysteresis), a minimum speech duration and a hangover.
//!
//! [`Vad`] joins them behind the sans-IO `push(frame, now) -> events` API.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::onnx::{self, OnnxError};
use ivr_audio::RATE;

/// Silero VAD's chunk size (at [`RATE`]).
pub const CHUNK: usize = 512;
const CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;

/// Timing of speech detection; every duration is named with its unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VadConfig {
    /// Probability at or above which a chunk is speech.
    pub start_threshold: f32,
    /// Probability below which a chunk is silence (lower than the start threshold, so speech that
    /// wavers around one value does not flap).
    pub end_threshold: f32,
    /// Speech shorter than this is not reported (clicks, coughs).
    pub min_speech_ms: u32,
    /// Silence that must follow speech before its end is reported.
    pub hangover_ms: u32,
    /// Margin added before the start and after the end of each reported segment.
    pub pad_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self { start_threshold: 0.5, end_threshold: 0.35, min_speech_ms: 100, hangover_ms: 400, pad_ms: 0 }
    }
}

/// What the segmenter reports. Times are stream times (the `now` the frames were pushed with).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum VadEvent {
    /// Speech has lasted `min_speech_ms`; it began at `at` (minus the pad).
    SpeechStart { at: Duration },
    /// Silence has lasted `hangover_ms`; speech ran from `start` to `end` (pads included).
    SpeechEnd { start: Duration, end: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silence,
    /// Above threshold since `start`, not yet `min_speech_ms` long.
    Onset { start: Duration, last_voiced: Duration },
    /// Confirmed speech; `silent_since` is set while in a pause that may be its end.
    Speech { start: Duration, silent_since: Option<Duration> },
}

/// Pure (probability, time) -> events state machine.
#[derive(Debug, Clone)]
pub struct SpeechSegmenter {
    cfg: VadConfig,
    state: State,
}

impl SpeechSegmenter {
    pub fn new(cfg: VadConfig) -> Self {
        Self { cfg, state: State::Silence }
    }

    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Changes the silence that ends speech (from the next chunk on).
    pub fn set_hangover_ms(&mut self, ms: u32) {
        self.cfg.hangover_ms = ms;
    }

    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    fn ms(v: u32) -> Duration {
        Duration::from_millis(v as u64)
    }

    /// Feeds the probability of the chunk spanning `start..end`.
    pub fn push(&mut self, prob: f32, start: Duration, end: Duration) -> Option<VadEvent> {
        let pad = Self::ms(self.cfg.pad_ms);
        let voiced = prob >= self.cfg.start_threshold;
        let silent = prob < self.cfg.end_threshold;
        match self.state {
            State::Silence => {
                if voiced {
                    self.state = State::Onset { start, last_voiced: end };
                    return self.confirm();
                }
                None
            }
            State::Onset { start: s, last_voiced } => {
                if silent && end.saturating_sub(last_voiced) >= Self::ms(self.cfg.hangover_ms) {
                    self.state = State::Silence;
                    return None;
                }
                if !silent {
                    self.state = State::Onset { start: s, last_voiced: end };
                }
                self.confirm()
            }
            State::Speech { start: s, silent_since } => {
                if !silent {
                    self.state = State::Speech { start: s, silent_since: None };
                    return None;
                }
                let since = silent_since.unwrap_or(start);
                if end.saturating_sub(since) >= Self::ms(self.cfg.hangover_ms) {
                    self.state = State::Silence;
                    return Some(VadEvent::SpeechEnd { start: s.saturating_sub(pad), end: since + pad });
                }
                self.state = State::Speech { start: s, silent_since: Some(since) };
                None
            }
        }
    }

    /// Onset long enough: speech starts.
    fn confirm(&mut self) -> Option<VadEvent> {
        if let State::Onset { start, last_voiced } = self.state {
            if last_voiced.saturating_sub(start) >= Self::ms(self.cfg.min_speech_ms) {
                self.state = State::Speech { start, silent_since: None };
                return Some(VadEvent::SpeechStart { at: start.saturating_sub(Self::ms(self.cfg.pad_ms)) });
            }
        }
        None
    }

    /// Ends the stream at `now`: speech still open is closed there.
    pub fn finish(&mut self, now: Duration) -> Option<VadEvent> {
        let pad = Self::ms(self.cfg.pad_ms);
        let event = match self.state {
            State::Speech { start, silent_since } => Some(VadEvent::SpeechEnd {
                start: start.saturating_sub(pad),
                end: silent_since.map(|s| (s + pad).min(now)).unwrap_or(now),
            }),
            _ => None,
        };
        self.state = State::Silence;
        event
    }
}

/// The Silero model, loaded once and shared by every stream. A run takes well under a
/// millisecond, so streams take turns on a small pool of sessions (one per core): with hundreds of
/// calls, one session's lock became a queue.
#[derive(Clone)]
pub struct SileroModel {
    sessions: Arc<Vec<Mutex<ort::session::Session>>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
}

impl SileroModel {
    pub fn load(path: &Path) -> Result<Self, OnnxError> {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            sessions.push(Mutex::new(Self::load_one(path)?));
        }
        Ok(Self { sessions: Arc::new(sessions), next: Arc::default() })
    }

    fn load_one(path: &Path) -> Result<ort::session::Session, OnnxError> {
        let session = onnx::session(path, 1)?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if !(inputs.contains(&"input") && inputs.contains(&"state") && inputs.contains(&"sr")) {
            return Err(OnnxError::Model {
                path: path.to_path_buf(),
                reason: format!("inputs {inputs:?} are not Silero VAD's (input, state, sr)"),
            });
        }
        Ok(session)
    }

    /// A free session if there is one, else a turn on the next in line.
    fn session(&self) -> std::sync::MutexGuard<'_, ort::session::Session> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            if let Ok(g) = self.sessions[(start + i) % n].try_lock() {
                return g;
            }
        }
        self.sessions[start % n].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Peak level (about -50 dBFS) under which a chunk is taken as silence without running the model:
/// well below the quietest speech on a phone line, above digital silence and G.711's idle noise.
pub const QUIET_PEAK: f32 = 0.003;

/// A chunk within this factor (6 dB) of the line's noise floor is the line's noise, not speech.
const NOISE_MARGIN: f32 = 2.0;
/// The floor follows a quieter chunk at once and creeps up 5 dB a second otherwise, so a louder
/// line is learnt in seconds while the pauses between words keep pulling it back down.
const FLOOR_RISE_PER_CHUNK: f32 = 1.0202; // 10^(5 dB * 32 ms / 20)
/// Chunks seen before the floor is trusted (about a second).
const FLOOR_LEARNING_CHUNKS: u64 = 30;
/// After a chunk at least this likely to be speech the model keeps running, so it sees the
/// tail of a word however quiet.
const SPEECHY: f32 = 0.2;

/// Tells speech from silence, one 512-sample chunk (16 kHz) at a time: Silero in service. The
/// session holds it as a trait object so that call control's in-memory tests, which may load no
/// model, can stand a level meter in its place.
pub trait SpeechDetector: Send {
    /// The probability that the next chunk is speech.
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, OnnxError>;
}

impl SpeechDetector for SileroVad {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, OnnxError> {
        SileroVad::probability(self, chunk)
    }
}

/// One stream's Silero state: speech probability per 512-sample chunk.
pub struct SileroVad {
    model: SileroModel,
    state: Vec<f32>,
    context: Vec<f32>,
    /// RMS of the line's noise (None before the first chunk).
    floor: Option<f32>,
    last_prob: f32,
    chunks: u64,
    model_runs: u64,
}

impl SileroVad {
    pub fn new(model: SileroModel) -> Self {
        Self { model, state: vec![0.0; STATE_LEN], context: vec![0.0; CONTEXT], floor: None, last_prob: 0.0, chunks: 0, model_runs: 0 }
    }

    /// (chunks seen, chunks the model ran on).
    pub fn model_share(&self) -> (u64, u64) {
        (self.chunks, self.model_runs)
    }

    /// Whether a chunk is the line's own quiet or noise, so the model need not run: quieter than
    /// [`QUIET_PEAK`], or (once the floor is learnt, and not just after speech) within
    /// [`NOISE_MARGIN`] of the noise floor.
    fn is_line_noise(&mut self, chunk: &[f32]) -> bool {
        let peak = chunk.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let rms = (chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32).sqrt().max(1e-5);
        let floor = self.floor.get_or_insert(rms);
        let noise = rms < *floor * NOISE_MARGIN;
        *floor = if rms < *floor { rms } else { *floor * FLOOR_RISE_PER_CHUNK };
        self.chunks += 1;
        peak < QUIET_PEAK || (noise && self.chunks > FLOOR_LEARNING_CHUNKS && self.last_prob < SPEECHY)
    }

    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|v| *v = 0.0);
        self.context.iter_mut().for_each(|v| *v = 0.0);
        self.last_prob = 0.0;
    }

    /// Speech probability of the next 512 samples (16 kHz).
    ///
    /// The line's own quiet or steady noise is silence without asking the model
    /// ([`Self::is_line_noise`]): callers are quiet most of a call (listening to the bot), and
    /// the model is most of a call's CPU. Its memory is cleared then, so it starts fresh on the
    /// next sound.
    pub fn probability(&mut self, chunk: &[f32]) -> Result<f32, OnnxError> {
        debug_assert_eq!(chunk.len(), CHUNK);
        if self.is_line_noise(chunk) {
            self.state.iter_mut().for_each(|v| *v = 0.0);
            self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);
            self.last_prob = 0.0;
            return Ok(0.0);
        }
        self.model_runs += 1;
        let run = |e: &dyn std::fmt::Display| OnnxError::Run(e.to_string());
        let mut input = Vec::with_capacity(CONTEXT + CHUNK);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(chunk);
        let input = ort::value::Tensor::from_array(([1usize, CONTEXT + CHUNK], input.into_boxed_slice())).map_err(|e| run(&e))?;
        let state = ort::value::Tensor::from_array(([2usize, 1, 128], self.state.clone().into_boxed_slice())).map_err(|e| run(&e))?;
        let sr = ort::value::Tensor::from_array(([1usize], vec![RATE as i64].into_boxed_slice())).map_err(|e| run(&e))?;
        let mut session = self.model.session();
        let outputs = session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
            .map_err(|e| run(&e))?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(|e| run(&e))?;
        let (_, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(|e| run(&e))?;
        let p = prob.first().copied().unwrap_or(0.0);
        if new_state.len() == STATE_LEN {
            self.state.copy_from_slice(new_state);
        }
        self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);
        self.last_prob = p;
        Ok(p)
    }
}

/// Streaming VAD: push 16 kHz frames of any length with the stream time of their first sample.
pub struct Vad {
    silero: SileroVad,
    segmenter: SpeechSegmenter,
    pending: Vec<f32>,
    /// Stream time of `pending[0]`.
    pending_start: Duration,
    last_prob: f32,
}

impl Vad {
    pub fn new(model: SileroModel, cfg: VadConfig) -> Self {
        Self {
            silero: SileroVad::new(model),
            segmenter: SpeechSegmenter::new(cfg),
            pending: Vec::with_capacity(CHUNK * 2),
            pending_start: Duration::ZERO,
            last_prob: 0.0,
        }
    }

    /// Probability of the most recent chunk.
    pub fn last_probability(&self) -> f32 {
        self.last_prob
    }

    pub fn in_speech(&self) -> bool {
        self.segmenter.in_speech()
    }

    /// Feeds a 16 kHz frame whose first sample is at stream time `now`.
    pub fn push(&mut self, frame: &[f32], now: Duration) -> Result<Vec<VadEvent>, OnnxError> {
        if self.pending.is_empty() {
            self.pending_start = now;
        }
        self.pending.extend_from_slice(frame);
        let mut events = Vec::new();
        let chunk_time = Duration::from_secs_f64(CHUNK as f64 / RATE as f64);
        while self.pending.len() >= CHUNK {
            let prob = self.silero.probability(&self.pending[..CHUNK])?;
            self.pending.drain(..CHUNK);
            self.last_prob = prob;
            let start = self.pending_start;
            self.pending_start += chunk_time;
            events.extend(self.segmenter.push(prob, start, start + chunk_time));
        }
        Ok(events)
    }

    /// Ends the stream at `now`, closing open speech.
    pub fn finish(&mut self, now: Duration) -> Option<VadEvent> {
        self.pending.clear();
        self.silero.reset();
        self.segmenter.finish(now)
    }
}

/// Speech segments of a whole 16 kHz recording, as (start, end) seconds.
pub fn segments(model: &SileroModel, cfg: &VadConfig, audio16k: &[f32]) -> Result<Vec<(f64, f64)>, OnnxError> {
    let mut vad = Vad::new(model.clone(), cfg.clone());
    let mut out = Vec::new();
    let collect = |e: VadEvent, out: &mut Vec<(f64, f64)>| {
        if let VadEvent::SpeechEnd { start, end } = e {
            out.push((start.as_secs_f64(), end.as_secs_f64()));
        }
    };
    for (i, frame) in audio16k.chunks(320).enumerate() {
        let now = Duration::from_secs_f64(i as f64 * 320.0 / RATE as f64);
        for e in vad.push(frame, now)? {
            collect(e, &mut out);
        }
    }
    let end = Duration::from_secs_f64(audio16k.len() as f64 / RATE as f64);
    if let Some(e) = vad.finish(end) {
        collect(e, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Duration = Duration::from_millis(32);

    fn run(cfg: VadConfig, probs: &[f32]) -> Vec<VadEvent> {
        let mut seg = SpeechSegmenter::new(cfg);
        let mut out: Vec<VadEvent> = probs
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| seg.push(p, C * i as u32, C * (i as u32 + 1)))
            .collect();
        out.extend(seg.finish(C * probs.len() as u32));
        out
    }

    fn cfg() -> VadConfig {
        VadConfig { pad_ms: 0, ..VadConfig::default() }
    }

    #[test]
    fn speech_between_silences_gives_start_and_end() {
        let mut p = vec![0.0; 10];
        p.extend([0.9; 20]);
        p.extend([0.0; 20]);
        let ev = run(cfg(), &p);
        assert_eq!(ev[0], VadEvent::SpeechStart { at: C * 10 });
        assert_eq!(ev[1], VadEvent::SpeechEnd { start: C * 10, end: C * 30 });
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn start_is_reported_once_min_speech_has_passed() {
        let mut seg = SpeechSegmenter::new(cfg());
        // 100 ms minimum: chunks ending at 32, 64, 96 ms are not enough; 128 ms is.
        for i in 0..3 {
            assert_eq!(seg.push(0.9, C * i, C * (i + 1)), None);
        }
        assert_eq!(seg.push(0.9, C * 3, C * 4), Some(VadEvent::SpeechStart { at: Duration::ZERO }));
    }

    #[test]
    fn a_click_shorter_than_min_speech_is_ignored() {
        let mut p = vec![0.0; 5];
        p.extend([0.95; 2]);
        p.extend([0.0; 30]);
        assert!(run(cfg(), &p).is_empty());
    }

    #[test]
    fn a_pause_shorter_than_the_hangover_does_not_split_speech() {
        let mut p = vec![0.9; 10];
        p.extend([0.1; 8]); // 256 ms < 400 ms hangover
        p.extend([0.9; 10]);
        p.extend([0.0; 20]);
        let ev = run(cfg(), &p);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[1], VadEvent::SpeechEnd { start: Duration::ZERO, end: C * 28 });
    }

    #[test]
    fn values_between_thresholds_keep_speech_going() {
        let mut p = vec![0.9; 10];
        p.extend([0.4; 30]); // between end (0.35) and start (0.5) thresholds
        p.extend([0.0; 20]);
        let ev = run(cfg(), &p);
        assert_eq!(ev[1], VadEvent::SpeechEnd { start: Duration::ZERO, end: C * 40 });
    }

    #[test]
    fn open_speech_is_closed_at_finish() {
        let ev = run(cfg(), &[0.9; 10]);
        assert_eq!(ev[1], VadEvent::SpeechEnd { start: Duration::ZERO, end: C * 10 });
    }

    #[test]
    fn pads_widen_segments_but_not_below_zero() {
        let mut p = vec![0.9; 10];
        p.extend([0.0; 20]);
        let ev = run(VadConfig { pad_ms: 30, ..VadConfig::default() }, &p);
        assert_eq!(ev[1], VadEvent::SpeechEnd { start: Duration::ZERO, end: C * 10 + Duration::from_millis(30) });
    }
}
