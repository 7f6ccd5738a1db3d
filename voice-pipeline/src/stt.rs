//! Speech-to-text with Whisper through whisper.cpp (whisper-rs).
//!
//! The model is loaded once ([`WhisperModel`]) and shared by every call; each transcription borrows a
//! decoding state from a small pool, so concurrent calls do not serialise on one state and do not pay
//! for a fresh one each turn.
//!
//! Latency: Whisper's encoder always works on a 30 s window, which is most of the CPU cost of a short
//! caller turn. `audio_ctx` shrinks that window to the turn's length (rounded up to a multiple of 64
//! frames, since an exact fit makes the decoder loop); decoding is greedy with timestamps off.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ivr_audio::RATE;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

/// Encoder frames per second of audio (Whisper: 2 mel frames per 20 ms, halved by the second conv).
const AUDIO_CTX_PER_SEC: f64 = 50.0;
const FULL_AUDIO_CTX: usize = 1500;
/// Turns shorter than this are decoded as one segment without timestamps.
const SHORT_TURN_SECS: f64 = 20.0;
const MAX_TOKENS_PER_SEC: f64 = 6.0;
/// Window for the second attempt after a loop (about 15 s): wide enough that no fixture needed the
/// full window after it, at a third of the full window's cost.
const RETRY_AUDIO_CTX: usize = 768;

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error(transparent)]
    Model(#[from] ivr_models::whisper_ggml::ValidateError),
    #[error("{path}: whisper.cpp could not load the model: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("transcription failed: {0}")]
    Run(String),
    #[error("audio must be {RATE} Hz for Whisper, got {0} Hz")]
    Rate(u32),
}

/// How to transcribe.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SttConfig {
    /// CPU threads per transcription.
    pub threads: usize,
    /// Spoken language ("en", "zh", ...), or "auto" to detect it (multilingual models only).
    pub language: String,
    /// Shrink the encoder window to the audio's length (short turns only; see the module docs).
    pub trim_audio_ctx: bool,
    /// Text that primes the decoder (names, product words).
    pub initial_prompt: Option<String>,
    /// Silence put before the audio (turns cut by a VAD start right on the first phoneme, which
    /// Whisper then tends to miss: "Refunds" heard as "We funds").
    pub lead_in_ms: u32,
    /// Silence put after the audio (a trimmed window that ends where the speech ends invites
    /// repetition loops; with 1 s, 9 of 37 test clips looped instead of 22).
    pub tail_pad_ms: u32,
    /// Candidates kept at each step: 1 decodes greedily (fastest), 5 is the reference's beam.
    pub beam_size: u32,
    /// Whisper's own safeguard: a decode whose average log-probability is below
    /// `logprob_threshold` is made again at a higher temperature (0.2 more each time).
    pub temperature_fallback: bool,
    pub logprob_threshold: f32,
    /// Audio the model itself judges to hold no speech (its no-speech probability above this, and
    /// the text unsure) gives no words.
    pub no_speech_threshold: f32,
    /// Drop what Whisper invents on short, unclear clips ("Hello hello hello", "Thank you."):
    /// a few known phrases and word loops, only when the decode is unsure of them.
    pub drop_hallucinations: bool,
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            threads: 2,
            language: "auto".into(),
            trim_audio_ctx: true,
            initial_prompt: None,
            lead_in_ms: 300,
            tail_pad_ms: 1000,
            beam_size: 1,
            temperature_fallback: true,
            logprob_threshold: -1.0,
            no_speech_threshold: 0.6,
            drop_hallucinations: true,
        }
    }
}

/// Result of one transcription.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transcript {
    pub text: String,
    /// Language code Whisper used (detected, or the English-only model's "en").
    pub language: String,
    pub audio_secs: f64,
    /// Wall-clock time of the transcription itself.
    pub elapsed_ms: f64,
    /// Encoder window used (1500 = the full 30 s).
    pub audio_ctx: usize,
    /// Decodes repeated with a wider window after a repetition loop.
    pub retries: usize,
    /// Mean log-probability of the text's tokens (0 is certain; below about -1 is a guess).
    pub avg_logprob: f32,
    /// The model's probability that the audio holds no speech.
    pub no_speech_prob: f32,
    /// Words dropped as a hallucination of the model, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

/// A loaded Whisper model shared across calls.
#[derive(Clone)]
pub struct WhisperModel {
    ctx: Arc<WhisperContext>,
    states: Arc<Mutex<Vec<WhisperState>>>,
    path: PathBuf,
    multilingual: bool,
}

impl WhisperModel {
    /// Loads a whisper.cpp model file, checking its structure first so a damaged file gives a clear
    /// error rather than whatever whisper.cpp makes of it.
    pub fn load(path: &Path) -> Result<Self, SttError> {
        ivr_models::whisper_ggml::validate(path)?;
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let ctx = WhisperContext::new_with_params(path, params)
            .map_err(|e| SttError::Load { path: path.to_path_buf(), reason: e.to_string() })?;
        let multilingual = ctx.is_multilingual();
        Ok(Self { ctx: Arc::new(ctx), states: Arc::default(), path: path.to_path_buf(), multilingual })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    fn take_state(&self) -> Result<WhisperState, SttError> {
        if let Some(state) = self.states.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(state);
        }
        self.ctx.create_state().map_err(|e| SttError::Run(format!("cannot create a decoding state: {e}")))
    }

    fn return_state(&self, state: WhisperState) {
        self.states.lock().unwrap_or_else(|p| p.into_inner()).push(state);
    }

    /// Encoder window for `secs` of audio: enough frames, in multiples of 64, or the full window.
    pub fn audio_ctx_for(secs: f64) -> usize {
        let needed = (secs * AUDIO_CTX_PER_SEC).ceil() as usize;
        // Round up to a multiple of 64, never to an exact fit.
        let mut rounded = needed.div_ceil(64) * 64;
        if rounded == needed {
            rounded += 64;
        }
        if rounded >= FULL_AUDIO_CTX {
            FULL_AUDIO_CTX
        } else {
            rounded
        }
    }

    /// Transcribes mono 16 kHz audio.
    ///
    /// A trimmed encoder window occasionally sends the decoder into a repetition loop ("ten of
    /// clubs ten of clubs ..."). The token cap bounds what that costs; such a result is then decoded
    /// again with a wider window, and finally the full one.
    pub fn transcribe(&self, audio: &[f32], cfg: &SttConfig) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let audio_secs = audio.len() as f64 / RATE as f64;
        // Silence around the turn (see `SttConfig`); whisper.cpp also skips input under one second.
        let lead = (cfg.lead_in_ms as usize * RATE as usize) / 1000;
        let min_len = RATE as usize * 11 / 10;
        let mut padded = Vec::with_capacity(lead + audio.len().max(min_len));
        padded.resize(lead, 0.0);
        padded.extend_from_slice(audio);
        padded.resize(padded.len() + (cfg.tail_pad_ms as usize * RATE as usize) / 1000, 0.0);
        if padded.len() < min_len {
            padded.resize(min_len, 0.0);
        }
        let samples = &padded[..];
        let short = audio_secs < SHORT_TURN_SECS;
        let first_ctx = if cfg.trim_audio_ctx && short {
            Self::audio_ctx_for(samples.len() as f64 / RATE as f64)
        } else {
            FULL_AUDIO_CTX
        };
        let mut windows = vec![first_ctx];
        for wider in [RETRY_AUDIO_CTX.max(first_ctx + 64), FULL_AUDIO_CTX] {
            if wider > *windows.last().unwrap_or(&FULL_AUDIO_CTX) && wider <= FULL_AUDIO_CTX {
                windows.push(wider);
            }
        }
        let language = if self.multilingual { cfg.language.as_str() } else { "en" };
        let max_tokens = (audio_secs * MAX_TOKENS_PER_SEC).ceil() as usize + 8;

        let mut state = self.take_state()?;
        let mut last = None;
        let eot = self.ctx.token_eot();
        for (attempt, &audio_ctx) in windows.iter().enumerate() {
            let strategy = if cfg.beam_size > 1 {
                SamplingStrategy::BeamSearch { beam_size: cfg.beam_size as i32, patience: -1.0 }
            } else {
                SamplingStrategy::Greedy { best_of: if cfg.temperature_fallback { 3 } else { 1 } }
            };
            let mut params = FullParams::new(strategy);
            params.set_n_threads(cfg.threads.max(1) as i32);
            params.set_language(Some(language));
            params.set_translate(false);
            // Short turns: one segment, no timestamps (fastest). Longer audio keeps timestamps,
            // which is how Whisper moves through its 30 s windows.
            params.set_no_timestamps(short);
            params.set_single_segment(short);
            if short {
                params.set_max_tokens(max_tokens as i32);
            }
            params.set_no_context(true);
            params.set_print_progress(false);
            params.set_print_realtime(false);
            params.set_print_special(false);
            params.set_print_timestamps(false);
            params.set_suppress_blank(true);
            params.set_temperature(0.0);
            if cfg.temperature_fallback {
                params.set_temperature_inc(0.2);
                params.set_logprob_thold(cfg.logprob_threshold);
                params.set_no_speech_thold(cfg.no_speech_threshold);
            } else {
                params.set_temperature_inc(0.0);
                // whisper.cpp drops a segment as no speech only with both tests failing; without
                // the safeguards nothing is dropped.
                params.set_no_speech_thold(f32::INFINITY);
            }
            if audio_ctx < FULL_AUDIO_CTX {
                params.set_audio_ctx(audio_ctx as i32);
            }
            if let Some(prompt) = &cfg.initial_prompt {
                params.set_initial_prompt(prompt);
            }
            // A failed state may hold half a decode: it is dropped, not returned to the pool.
            state.full(params, samples).map_err(|e| SttError::Run(e.to_string()))?;
            let mut text = String::new();
            let mut tokens = 0;
            let (mut logprob_sum, mut text_tokens, mut no_speech_prob) = (0.0f32, 0usize, 0.0f32);
            for segment in state.as_iter() {
                text.push_str(&segment.to_str_lossy().map_err(|e| SttError::Run(e.to_string()))?);
                tokens += segment.n_tokens().max(0) as usize;
                no_speech_prob = no_speech_prob.max(segment.no_speech_probability());
                for i in 0..segment.n_tokens() {
                    if let Some(token) = segment.get_token(i) {
                        let data = token.token_data();
                        // Text tokens only: the special ones (end of text, timestamps) follow it.
                        if data.id < eot {
                            logprob_sum += data.plog;
                            text_tokens += 1;
                        }
                    }
                }
            }
            let avg_logprob = if text_tokens > 0 { logprob_sum / text_tokens as f32 } else { 0.0 };
            let mut text = clean_text(&text);
            let mut looped = short && (tokens >= max_tokens || has_repetition_loop(&text));
            // The commonest loop repeats the whole utterance ("I'd like to return ... last week.
            // I'd like to return ... last week. I'd like"): its first round is the transcript, and
            // a second decode (hundreds of milliseconds) is not needed.
            if looped {
                if let Some(unit) = leading_repeat(&text) {
                    tracing::debug!(text = %ivr_privacy::mask(&text), unit = %ivr_privacy::mask(&unit), "repetition loop of the whole utterance; kept its first round");
                    text = unit;
                    looped = false;
                }
            }
            let lang_id = state.full_lang_id_from_state();
            let detected = whisper_rs::get_lang_str(lang_id).unwrap_or(language).to_string();
            last = Some(Transcript {
                text,
                language: detected,
                audio_secs,
                elapsed_ms: 0.0,
                audio_ctx,
                retries: attempt,
                avg_logprob,
                no_speech_prob,
                dropped: None,
            });
            if !looped {
                break;
            }
            tracing::debug!(audio_ctx, tokens, max_tokens, text = %ivr_privacy::mask(last.as_ref().map_or("", |t| t.text.as_str())), "repetition loop; decoding again with a wider window");
        }
        self.return_state(state);
        let mut t = last.ok_or_else(|| SttError::Run("no decoding window".into()))?;
        if cfg.drop_hallucinations {
            if let Some(fixed) = hallucination_fix(&t.text, t.audio_secs, t.avg_logprob, t.no_speech_prob) {
                tracing::debug!(text = %ivr_privacy::mask(&t.text), fixed = %ivr_privacy::mask(&fixed), avg_logprob = t.avg_logprob, no_speech_prob = t.no_speech_prob, "hallucination");
                t.dropped = Some(std::mem::replace(&mut t.text, fixed));
            }
        }
        t.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(t)
    }
}

/// True when the text ends in the same 1-4 word phrase four or more times in a row, or repeats a
/// phrase of three or more words twice: Whisper's typical failures on a trimmed window (a caller
/// rarely says the same thing four times, or the same sentence twice in one breath).
fn has_repetition_loop(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    for n in 1..=4 {
        // Allow a cut-off repeat at the very end.
        for tail_cut in 0..n {
            let body = &words[..words.len().saturating_sub(tail_cut)];
            if body.len() < 4 * n {
                continue;
            }
            let last = &body[body.len() - n..];
            let repeats = body.rchunks_exact(n).take_while(|c| *c == last).count();
            if repeats >= 4 {
                return true;
            }
        }
    }
    (3..=words.len() / 2).any(|n| words[words.len() - n..] == words[words.len() - 2 * n..words.len() - n])
}

/// The text's first words, when the rest only repeats them (the last round possibly cut off): at
/// least three words, some of them not numbers (a run of digits that repeats may be the caller's
/// real number, so it is decoded again instead).
fn leading_repeat(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let norm: Vec<String> =
        words.iter().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect();
    (3..=words.len() * 2 / 3).find_map(|n| {
        let repeats = (n..norm.len()).all(|i| norm[i] == norm[i % n]);
        let wordy = norm[..n].iter().any(|w| w.chars().any(char::is_alphabetic));
        (repeats && wordy).then(|| words[..n].join(" "))
    })
}

/// What Whisper says when it hears no words: phrases of the subtitles it learnt from. (Words a
/// caller really says, "hello", "okay", "bye", are not here: only doubt about them drops them.)
const HALLUCINATED_PHRASES: &[&str] = &[
    "thank you", "thanks for watching", "thank you for watching", "thank you so much for watching", "you",
    "please subscribe", "subscribe to my channel", "see you next time", "see you in the next video", "the end",
];

/// What to make of `text`, decoded from `audio_secs` of audio, if it is the model's invention
/// rather than the caller's words: `Some("")` drops it, `Some(word)` keeps one round of a word
/// the decoder looped on, `None` keeps the text.
/// - One word over and over on a short clip ("Hello. Hello. Hello." from a caller's "Hello."): a
///   decoding loop of a trimmed window; the word once, or nothing when the decode was unsure.
/// - A phrase Whisper produces from noise ("Thank you.", "Thanks for watching!"), decoded unsure
///   of itself or with speech itself in doubt: nothing. Said clearly, it is kept.
pub fn hallucination_fix(text: &str, audio_secs: f64, avg_logprob: f32, no_speech_prob: f32) -> Option<String> {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let words: Vec<String> = raw
        .iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let unsure = avg_logprob < -0.8 || no_speech_prob > 0.5;
    // A short clip cannot hold the same word three times over, said at a caller's pace.
    if words.len() >= 3 && words.iter().all(|w| *w == words[0]) && audio_secs < 0.45 * words.len() as f64 {
        return Some(if unsure { String::new() } else { raw[0].to_string() });
    }
    (unsure && HALLUCINATED_PHRASES.contains(&words.join(" ").as_str())).then(String::new)
}

/// Trims whitespace and drops Whisper's non-speech annotations ("[BLANK_AUDIO]", "(music)").
fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_covers_the_audio_in_multiples_of_64() {
        for secs in [0.5, 1.0, 2.0, 3.7, 10.0] {
            let ctx = WhisperModel::audio_ctx_for(secs);
            assert_eq!(ctx % 64, 0);
            assert!(ctx as f64 > secs * 50.0, "{secs}s -> {ctx}");
        }
        assert_eq!(WhisperModel::audio_ctx_for(29.5), 1500);
        assert_eq!(WhisperModel::audio_ctx_for(60.0), 1500);
    }

    #[test]
    fn repetition_loops_are_recognised() {
        assert!(has_repetition_loop("10 of clubs 10 of clubs 10 of clubs 10 of clubs 10"));
        assert!(has_repetition_loop("5 5 5 5 5 5 5"));
        assert!(has_repetition_loop("Front Center. Front Center. Front Center. Front Center."));
        assert!(has_repetition_loop("other participants in the conference. Other participants in the conference."));
        assert!(!has_repetition_loop("five five"));
        assert!(!has_repetition_loop("no no no, I said the order 41234567"));
        assert!(!has_repetition_loop("please enter your password followed by the pound key"));
    }

    #[test]
    fn a_loop_of_the_whole_utterance_is_cut_to_its_first_round() {
        let looped = "I'd like to return a pair of headphones I bought last week. I'd like to return a pair of headphones I bought last week. I'd like";
        assert_eq!(leading_repeat(looped).as_deref(), Some("I'd like to return a pair of headphones I bought last week."));
        assert_eq!(leading_repeat("10 of clubs 10 of clubs 10 of clubs 10").as_deref(), Some("10 of clubs"));
        assert_eq!(leading_repeat("4 1 2 3 4 1 2 3 4 1"), None, "numbers are decoded again");
        assert_eq!(leading_repeat("Front Center. Front Center."), None, "too short to tell");
        assert_eq!(leading_repeat("please hold please wait"), None);
    }

    #[test]
    fn short_clip_hallucinations_are_recognised() {
        assert_eq!(hallucination_fix("Hello. Hello. Hello.", 0.6, -0.3, 0.1).as_deref(), Some("Hello."), "one round kept");
        assert_eq!(hallucination_fix("you you you you", 1.0, -1.2, 0.0).as_deref(), Some(""), "unsure: dropped");
        assert_eq!(hallucination_fix("Thank you.", 0.8, -1.2, 0.2).as_deref(), Some(""), "unsure");
        assert_eq!(hallucination_fix("Thanks for watching!", 2.0, -0.4, 0.7).as_deref(), Some(""), "speech in doubt");
        assert_eq!(hallucination_fix("Thank you.", 0.8, -0.2, 0.05), None, "said clearly: kept");
        assert_eq!(hallucination_fix("Hello.", 0.8, -1.5, 0.9), None, "a caller's word, not a subtitle");
        assert_eq!(hallucination_fix("no no no", 1.8, -0.3, 0.1), None, "said at a caller's pace");
        assert_eq!(hallucination_fix("Where is my order?", 1.2, -1.5, 0.9), None, "not a known phrase");
        assert_eq!(hallucination_fix("", 0.5, -2.0, 0.9), None);
    }

    #[test]
    fn annotations_are_removed() {
        assert_eq!(clean_text(" [BLANK_AUDIO] "), "");
        assert_eq!(clean_text(" Hello (music) there. "), "Hello there.");
    }
}
