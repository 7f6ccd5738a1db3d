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

/// The Silero model, loaded once and shared by every stream. Streams that ask while the model is
/// running wait and are run together next: the first stream to find it free takes everything
/// waiting (up to [`MAX_BATCH`]) and runs it as one batch, each stream with its own state; a lone
/// stream runs at once, alone. A run of one chunk costs about 260 us here, most of it per run
/// rather than per stream; in a batch of 32 a stream costs about 110 us (AMD EPYC, ONNX Runtime
/// on one thread). With hundreds of callers speaking at once this is what keeps the VAD from
/// overrunning the calls' 20 ms media ticks: at 200 calls on 2 cores, with the inference threads
/// idle-class, late frames were 1-4.5% with a session per core and about 0.5% with one session,
/// batched (docs/architecture.md).
#[derive(Clone)]
pub struct SileroModel {
    sessions: Arc<Vec<Mutex<ort::session::Session>>>,
    queue: Arc<(Mutex<Queue>, std::sync::Condvar)>,
}

/// Most chunks in one batch (a larger one would keep its first stream waiting too long).
pub const MAX_BATCH: usize = 64;

/// One stream's chunk waiting for the model: its input (context and chunk) and its state.
struct Ask {
    ticket: u64,
    input: Vec<f32>,
    state: Vec<f32>,
}

/// What waits and what is done, under one lock.
#[derive(Default)]
struct Queue {
    waiting: Vec<Ask>,
    /// Finished chunks by ticket: the probability and the new state, or the run's error.
    done: std::collections::HashMap<u64, Result<(f32, Vec<f32>), String>>,
    /// Sessions not running a batch.
    free: Vec<usize>,
    next_ticket: u64,
    /// Model runs and the chunks they carried, since loading.
    runs: u64,
    chunks: u64,
}

impl SileroModel {
    /// One session: the VAD takes at most one core at a time, in batches as large as the moment
    /// allows, and leaves the other cores to the calls' media ticks.
    pub fn load(path: &Path) -> Result<Self, OnnxError> {
        Self::load_sessions(path, 1)
    }

    /// The model with `n` sessions (at most `n` batches run at once).
    pub fn load_sessions(path: &Path, n: usize) -> Result<Self, OnnxError> {
        let n = n.max(1);
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            sessions.push(Mutex::new(Self::load_one(path)?));
        }
        let queue = Queue { free: (0..n).collect(), ..Queue::default() };
        Ok(Self { sessions: Arc::new(sessions), queue: Arc::new((Mutex::new(queue), std::sync::Condvar::new())) })
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

    /// (model runs, chunks they carried) since loading: more chunks than runs means batches.
    pub fn runs_and_chunks(&self) -> (u64, u64) {
        let q = self.queue.0.lock().unwrap_or_else(|p| p.into_inner());
        (q.runs, q.chunks)
    }

    /// The speech probability of one stream's chunk (`input`: context then chunk) and its new
    /// state, run alone or in a batch with other streams' chunks.
    fn infer(&self, input: Vec<f32>, state: Vec<f32>) -> Result<(f32, Vec<f32>), OnnxError> {
        let (lock, ready) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push(Ask { ticket, input, state });
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                return result.map_err(OnnxError::Run);
            }
            // A session is free and chunks wait (ours among them, or earlier ones): run them.
            if !q.waiting.is_empty() {
                if let Some(index) = q.free.pop() {
                    let take = q.waiting.len().min(MAX_BATCH);
                    let batch: Vec<Ask> = q.waiting.drain(..take).collect();
                    drop(q);
                    let results = {
                        let mut session = self.sessions[index].lock().unwrap_or_else(|p| p.into_inner());
                        run_batch(&mut session, &batch)
                    };
                    q = lock.lock().unwrap_or_else(|p| p.into_inner());
                    q.free.push(index);
                    q.runs += 1;
                    q.chunks += batch.len() as u64;
                    for (ask, result) in batch.iter().zip(results) {
                        q.done.insert(ask.ticket, result);
                    }
                    ready.notify_all();
                    continue;
                }
            }
            q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One run of the model over several streams' chunks: inputs stacked `[n, context + chunk]`,
/// states `[2, n, 128]` (layer, stream, unit), as Silero takes a batch.
fn run_batch(session: &mut ort::session::Session, batch: &[Ask]) -> Vec<Result<(f32, Vec<f32>), String>> {
    let n = batch.len();
    let half = STATE_LEN / 2;
    let mut run = || -> Result<Vec<(f32, Vec<f32>)>, String> {
        let input: Vec<f32> = batch.iter().flat_map(|a| a.input.iter().copied()).collect();
        let mut state = vec![0.0f32; STATE_LEN * n];
        for (i, a) in batch.iter().enumerate() {
            for layer in 0..2 {
                state[(layer * n + i) * half..][..half].copy_from_slice(&a.state[layer * half..][..half]);
            }
        }
        let input = ort::value::Tensor::from_array(([n, CONTEXT + CHUNK], input.into_boxed_slice())).map_err(|e| e.to_string())?;
        let state = ort::value::Tensor::from_array(([2usize, n, half], state.into_boxed_slice())).map_err(|e| e.to_string())?;
        let sr = ort::value::Tensor::from_array(([1usize], vec![RATE as i64].into_boxed_slice())).map_err(|e| e.to_string())?;
        let outputs = session.run(ort::inputs!["input" => input, "state" => state, "sr" => sr]).map_err(|e| e.to_string())?;
        let (_, prob) = outputs["output"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        let (_, new_state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        if prob.len() != n || new_state.len() != STATE_LEN * n {
            return Err(format!("a batch of {n} gave {} probabilities and {} state values", prob.len(), new_state.len()));
        }
        Ok((0..n)
            .map(|i| {
                let mut s = vec![0.0f32; STATE_LEN];
                for layer in 0..2 {
                    s[layer * half..][..half].copy_from_slice(&new_state[(layer * n + i) * half..][..half]);
                }
                (prob[i], s)
            })
            .collect())
    };
    match run() {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(e) => vec![Err(e); n],
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
        let mut input = Vec::with_capacity(CONTEXT + CHUNK);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(chunk);
        let (p, new_state) = self.model.infer(input, self.state.clone())?;
        self.state = new_state;
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
