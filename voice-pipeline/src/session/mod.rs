//! One call's conversation engine as a sans-IO state machine.
//!
//! [`CallSession`] takes what happens on the call — inbound audio frames, keypad digits, the
//! results of the work it asked for — each with the call time `now`, and tells its driver what to
//! do: run a job (transcribe, understand, ask the LLM, synthesise), cancel one, transfer or hang up.
//! The driver pulls the outgoing audio one frame at a time with [`CallSession::fill_frame`]. It
//! never reads a clock, so a call can be replayed exactly, and faster than real time.
//!
//! Turn-taking lives here: endpointing (VAD hangover, with transcription started early on a
//! tentative end), barge-in (caller speech pauses the bot within a few tens of milliseconds; a
//! backchannel or a noise resumes it, real words flush it), echo of the bot's own voice (ignored),
//! dead air (a filler when a stage is slow, an apology and a transfer when one fails), caller
//! silence (a reprompt, then goodbye), keypad digits and per-turn timings.
//!
//! What is said is decided by the dialogue's `Conversation`, which the driver owns and runs as the
//! `Understand` job, so its state and this one's stay separate.

pub mod echo;
pub mod live;
pub mod playback;
pub mod words;
pub mod workers;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dialogue::manager::{Action, LlmJob, LlmPurpose, Turn};

use crate::vad::{SileroModel, SileroVad, SpeechDetector, SpeechSegmenter, VadConfig, VadEvent, CHUNK};
use echo::EchoGuard;
use playback::Playback;
use words::Interruption;

// The session's audio is mono f32 at 16 kHz in 20 ms frames, what Whisper, Silero and the TTS cache use.
use ivr_audio::RATE;

fn ms(v: u32) -> Duration {
    Duration::from_millis(v as u64)
}

fn samples(d: Duration) -> usize {
    (d.as_secs_f64() * RATE as f64).round() as usize
}

/// Turn-taking settings; every duration is named with its unit.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Speech detection (the config file's `[vad]`). `hangover_ms` is the silence that ends a
    /// caller's turn.
    #[serde(skip)]
    pub vad: VadConfig,
    /// Silence after which transcription starts early, before the turn is known to have ended.
    pub tentative_end_ms: u32,
    /// Ask the learned end-of-turn model (Smart Turn) whether the caller has finished, instead of
    /// waiting out the fixed `[vad] hangover_ms`; without the model the hangover is used.
    pub end_of_turn_model: bool,
    /// With the model: the least silence after which a turn may end (the model is asked then)...
    pub min_endpointing_delay_ms: u32,
    /// ...and the most: a turn whose words stop mid-sentence ends after this much silence.
    pub max_endpointing_delay_ms: u32,
    /// When the model and the words disagree (the words are a finished sentence, the sound is
    /// not), the turn ends after this much silence.
    pub unsure_endpointing_delay_ms: u32,
    /// While the model says "not finished", it is asked again each time the silence has grown
    /// by this much.
    pub end_of_turn_recheck_ms: u32,
    /// The model's probability at or above which the turn is complete.
    pub end_of_turn_threshold: f32,
    /// A caller who goes on speaking within this pause after a turn ended (the answer just
    /// starting) was not finished: the answer is dropped and both parts are one turn.
    pub rejoin_pause_ms: u32,
    /// The silence that ends a turn while the bot waits for spoken digits (people read numbers in
    /// groups, with pauses).
    pub digits_hangover_ms: u32,
    /// Speech over the bot for this long pauses it (a barge-in).
    pub barge_in_ms: u32,
    /// A pause that has heard no speech start for this long resumes.
    pub barge_in_give_up_ms: u32,
    /// Nothing said this long after the caller stopped: a short filler.
    pub filler_after_ms: u32,
    /// The LLM's wording is waited for this long; then the fixed reply is spoken.
    pub llm_budget_ms: u32,
    /// Caller silence after the bot finished: reprompt, and after as long again, goodbye.
    pub silence_timeout_ms: u32,
    pub reprompts: u32,
    /// Keyed digits with no '#' for this long are taken as complete.
    pub dtmf_timeout_ms: u32,
    /// A caller turn longer than this is cut and answered.
    pub max_turn_ms: u32,
    /// Echo detection: delays considered, window compared and the correlation that means echo.
    pub echo_max_delay_ms: u32,
    pub echo_window_ms: u32,
    pub echo_threshold: f32,
    /// The bot's own sentences.
    pub texts: SessionTexts,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionTexts {
    pub greeting: String,
    /// The greeting of a returning caller whose last call this week was about an order:
    /// `{order}` is its number (the bot then takes "yes" as asking about it).
    pub returning_greeting: String,
    pub filler: String,
    pub reprompt: String,
    pub goodbye: String,
    /// Said when a stage fails, before the transfer.
    pub apology: String,
    /// Said to the callers still on the line when the service stops.
    pub shutdown: String,
}

impl Default for SessionTexts {
    fn default() -> Self {
        Self {
            greeting: "Hello, thank you for calling Lumen Home Electronics. How can I help you today?".into(),
            returning_greeting: "Hello, thank you for calling Lumen Home Electronics. Are you calling about order {order}?".into(),
            filler: "One moment, please.".into(),
            reprompt: "Are you still there? How can I help you?".into(),
            goodbye: "I haven't heard anything, so I'll end the call now. Goodbye!".into(),
            apology: "I'm sorry, something went wrong on my side. Let me put you through to a colleague.".into(),
            shutdown: "I'm sorry, this service has to end the call now. Please call again in a few minutes. Goodbye!".into(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            vad: VadConfig::default(),
            tentative_end_ms: 150,
            end_of_turn_model: true,
            min_endpointing_delay_ms: 200,
            max_endpointing_delay_ms: 2000,
            unsure_endpointing_delay_ms: 800,
            end_of_turn_recheck_ms: 300,
            end_of_turn_threshold: 0.5,
            rejoin_pause_ms: 900,
            digits_hangover_ms: 1100,
            barge_in_ms: 64,
            barge_in_give_up_ms: 600,
            filler_after_ms: 1500,
            llm_budget_ms: 900,
            silence_timeout_ms: 8000,
            reprompts: 1,
            dtmf_timeout_ms: 3000,
            max_turn_ms: 20_000,
            echo_max_delay_ms: 400,
            echo_window_ms: 300,
            echo_threshold: 0.8,
            texts: SessionTexts::default(),
        }
    }
}

/// Something that happened on the call.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// The call is connected: greet.
    Answered,
    /// Inbound audio (16 kHz mono), contiguous with the previous frame.
    Audio(&'a [f32]),
    /// A keypad digit (0-9, *, #).
    Dtmf(char),
    /// Part of an LLM job's answer, as it streams.
    LlmDelta { job: JobId, text: &'a str },
    /// A job finished.
    Done { job: JobId, result: JobResult },
    /// The caller hung up.
    RemoteHangup,
    /// The service is stopping: say goodbye and hang up, taking no more turns.
    Shutdown,
}

pub type JobId = u64;

/// Work the session needs done; the driver runs it off the call's thread and reports back.
#[derive(Debug, Clone)]
pub enum Job {
    /// 16 kHz audio of one caller turn.
    Transcribe { audio: Arc<[f32]> },
    /// The caller's words or key, for the conversation.
    Understand(CallerInput),
    /// Wording by the LLM (stream deltas, then `Done` with the whole text).
    Llm(LlmJob),
    /// One sentence of speech.
    Synthesize { text: String, language: String },
    /// Has the caller finished? The turn so far, its silence included (16 kHz).
    EndOfTurn { audio: Arc<[f32]> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallerInput {
    Speech { text: String, language: String },
    Dtmf(char),
}

#[derive(Debug, Clone)]
pub enum JobResult {
    Transcript { text: String, language: String },
    Turn(Box<Turn>),
    Llm { text: String },
    Speech(Arc<[f32]>),
    /// The end-of-turn model's probability that the turn is complete.
    EndOfTurn { complete: f32 },
    Failed(String),
}

/// What the session wants done.
#[derive(Debug, Clone)]
pub enum Output {
    Job { id: JobId, job: Job },
    /// The result of this job is no longer wanted.
    Cancel(JobId),
    /// Transfer or hang up; the call's part is over.
    Action(Action),
    /// A line of the call's transcript.
    Said { who: Speaker, text: String, at: Duration },
    /// A turn's timings, once its first reply audio has gone out.
    Timing(TurnTiming),
    /// The caller's speech (starting at `at`) paused the bot.
    BargeIn { at: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Bot,
}

/// Where one turn's time went, as call times.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TurnTiming {
    /// The caller's last voiced audio.
    pub speech_end: Duration,
    /// The turn's end confirmed (hangover), or the key that ended it.
    pub endpoint: Duration,
    pub stt_final: Option<Duration>,
    pub understood: Option<Duration>,
    pub first_llm_token: Option<Duration>,
    pub first_tts_audio: Option<Duration>,
    pub first_frame_out: Option<Duration>,
    /// The transcription started before the endpoint (and was used).
    pub early_stt: bool,
    /// The reply's words came from the LLM.
    pub llm: bool,
    /// A filler was played while waiting.
    pub filler: bool,
    /// The turn was ended by the end-of-turn model (else by the silence reaching the hangover).
    pub model_endpoint: bool,
    /// The model's last probability that the turn was complete.
    pub end_of_turn_prob: Option<f32>,
    /// The caller went on after an earlier end, and this turn joins both parts.
    pub rejoined: bool,
}

impl TurnTiming {
    /// Caller stops -> first reply audio, the latency a caller hears.
    pub fn voice_to_voice(&self) -> Option<Duration> {
        self.first_frame_out.map(|t| t.saturating_sub(self.speech_end))
    }
}

/// What the session is waiting for in the current turn.
#[derive(Debug, Default)]
struct PendingTurn {
    timing: TurnTiming,
    stt: Option<JobId>,
    understand: Option<JobId>,
    llm: Option<LlmState>,
    /// The reply is queued for playback (no filler needed any more).
    replied: bool,
    /// The first sentence of the reply (for its timings).
    first_reply_job: Option<JobId>,
    filler_played: bool,
}

#[derive(Debug)]
struct LlmState {
    id: JobId,
    job: LlmJob,
    turn: Turn,
    asked_at: Duration,
    text: String,
    /// Sentences of the LLM's answer already queued.
    spoken: usize,
}

/// Caller speech in progress (or just ended, being transcribed).
#[derive(Debug)]
struct Utterance {
    /// Call time of `audio[0]`.
    start: Duration,
    audio: Vec<f32>,
    /// Time of the end of the last voiced chunk.
    last_voiced: Duration,
    /// A transcription started on a tentative end, and its result if it came before the endpoint.
    early: Option<JobId>,
    early_result: Option<(String, String)>,
    /// Judged to be the bot's own voice coming back.
    echo: bool,
}

impl Utterance {
    /// The words of the early transcription, once it is in (and still covers the whole turn).
    fn early_text(&self) -> Option<&str> {
        self.early.and(self.early_result.as_ref()).map(|(text, _)| text.as_str())
    }
}

/// A barge-in in progress: the bot is paused until the caller's words are known.
#[derive(Debug, Clone, Copy)]
struct Pause {
    at: Duration,
    /// Speech was confirmed by the VAD (a transcription will decide); else noise, resume soon.
    confirmed: bool,
}

pub struct CallSession {
    cfg: SessionConfig,
    detector: Box<dyn SpeechDetector>,
    segmenter: SpeechSegmenter,
    echo: EchoGuard,
    /// Inbound audio not yet given to the VAD, and the call time of its first sample.
    pending: Vec<f32>,
    pending_start: Duration,
    /// The last half second of inbound audio, to give a turn its beginning.
    preroll: VecDeque<f32>,
    inbound_end: Duration,
    utterance: Option<Utterance>,
    /// Consecutive voiced chunks while the bot speaks (for barge-in).
    voiced_over_bot: u32,
    pause: Option<Pause>,
    turn: Option<PendingTurn>,
    playback: Playback,
    language: String,
    /// Done when the queued speech has been played.
    after_playback: Option<Action>,
    next_job: JobId,
    outputs: VecDeque<Output>,
    /// Since when nobody has said anything (for reprompts), and how many were made.
    quiet_since: Option<Duration>,
    reprompted: u32,
    keyed: usize,
    last_key: Duration,
    answered: bool,
    ended: bool,
    /// The service is stopping: the goodbye plays and the caller is no longer heard.
    closing: bool,
    /// A stage failed: the apology is playing and the transfer follows.
    failing: bool,
    /// When the bot was last audible (its echo can arrive a little later).
    last_sound_out: Option<Duration>,
    /// Whether an LLM is there to word replies (without one, the fixed words are spoken at once).
    use_llm: bool,
    /// The silence that currently ends a turn (longer while digits are expected).
    hangover_ms: u32,
    /// Digits are expected: the fixed digits hangover ends turns, not the model.
    expecting_digits: bool,
    /// The end-of-turn model is there (and has not failed during this call).
    turn_model: bool,
    /// The question put to the model about the current silence, if one is out.
    eot_asked: Option<EotAsk>,
    /// Silence after which the model is asked next.
    eot_next_ask_ms: u32,
    /// The model called the silence that began at this time the end of the turn.
    eot_complete: Option<Duration>,
    eot_last_prob: Option<f32>,
    /// The last answered turn's audio, kept in case the caller goes on (see `rejoin_pause_ms`).
    last_turn: Option<LastTurn>,
    /// The utterance in progress continues the last turn.
    rejoined: bool,
}

/// A question to the end-of-turn model: its job, and the silence it is about (the end of the last
/// voiced audio when it was asked).
#[derive(Debug, Clone, Copy)]
struct EotAsk {
    id: JobId,
    silence_from: Duration,
}

#[derive(Debug)]
struct LastTurn {
    start: Duration,
    audio: Vec<f32>,
    speech_end: Duration,
}

impl CallSession {
    pub fn new(cfg: SessionConfig, vad: SileroModel) -> Self {
        Self::with_detector(cfg, Box::new(SileroVad::new(vad)))
    }

    /// A session that tells speech by `detector` (Silero in service, see [`Self::new`]).
    pub fn with_detector(cfg: SessionConfig, detector: Box<dyn SpeechDetector>) -> Self {
        let echo = EchoGuard::new(cfg.echo_max_delay_ms, cfg.echo_window_ms, cfg.echo_threshold);
        let hangover_ms = cfg.vad.hangover_ms;
        let eot_next_ask_ms = cfg.tentative_end_ms.min(cfg.min_endpointing_delay_ms);
        Self {
            segmenter: SpeechSegmenter::new(cfg.vad.clone()),
            detector,
            echo,
            cfg,
            pending: Vec::with_capacity(CHUNK * 2),
            pending_start: Duration::ZERO,
            preroll: VecDeque::with_capacity(RATE as usize / 2),
            inbound_end: Duration::ZERO,
            utterance: None,
            voiced_over_bot: 0,
            pause: None,
            turn: None,
            playback: Playback::default(),
            language: "en".into(),
            after_playback: None,
            next_job: 1,
            outputs: VecDeque::new(),
            quiet_since: None,
            reprompted: 0,
            keyed: 0,
            last_key: Duration::ZERO,
            answered: false,
            ended: false,
            closing: false,
            failing: false,
            last_sound_out: None,
            use_llm: true,
            hangover_ms,
            expecting_digits: false,
            turn_model: false,
            eot_asked: None,
            eot_next_ask_ms,
            eot_complete: None,
            eot_last_prob: None,
            last_turn: None,
            rejoined: false,
        }
        .with_turn_model(false)
    }

    /// Whether the driver can run `EndOfTurn` jobs. With the model (and `end_of_turn_model` on),
    /// turns end when it says so, between the min and max endpointing delays; without it, after
    /// the fixed `[vad] hangover_ms`.
    pub fn with_turn_model(mut self, available: bool) -> Self {
        self.turn_model = available && self.cfg.end_of_turn_model;
        self.apply_hangover();
        self
    }

    /// The model is first asked with the early transcription, so that both answers are there by
    /// the time the turn may end.
    fn first_ask_ms(&self) -> u32 {
        self.cfg.tentative_end_ms.min(self.cfg.min_endpointing_delay_ms)
    }

    /// Whether turns are being ended by the model now (not while digits are expected).
    fn model_endpointing(&self) -> bool {
        self.turn_model && !self.expecting_digits
    }

    /// The silence after which the VAD itself ends a turn: the digits hangover, the model's
    /// maximum delay, or the fixed hangover.
    fn apply_hangover(&mut self) {
        self.hangover_ms = if self.expecting_digits {
            self.cfg.digits_hangover_ms
        } else if self.turn_model {
            self.cfg.max_endpointing_delay_ms
        } else {
            self.cfg.vad.hangover_ms
        };
        self.segmenter.set_hangover_ms(self.hangover_ms);
    }

    /// Greets a returning caller about the order their last call was about (the
    /// `returning_greeting` with its number) instead of the usual greeting.
    pub fn greet_about_order(mut self, order: &str) -> Self {
        self.cfg.texts.greeting = self.cfg.texts.returning_greeting.replace("{order}", order);
        self
    }

    /// Without an LLM the session speaks the fixed replies and asks for no LLM work.
    pub fn with_llm(mut self, available: bool) -> Self {
        self.use_llm = available;
        self
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next thing the driver must do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether the bot is audible now.
    pub fn is_speaking(&self) -> bool {
        self.playback.is_sounding()
    }

    fn job(&mut self, job: Job) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        self.outputs.push_back(Output::Job { id, job });
        id
    }

    fn cancel(&mut self, id: JobId) {
        self.outputs.push_back(Output::Cancel(id));
    }

    /// Queues `text` for speech, one synthesis job per sentence.
    fn speak(&mut self, text: &str) {
        for sentence in crate::tts::split_sentences(&crate::tts::speakable(text)) {
            let id = self.job(Job::Synthesize { text: sentence.clone(), language: self.language.clone() });
            self.playback.reserve(id, &sentence);
        }
    }

    fn say(&mut self, text: &str, now: Duration) {
        if text.trim().is_empty() {
            return;
        }
        self.outputs.push_back(Output::Said { who: Speaker::Bot, text: text.to_string(), at: now });
        self.speak(text);
    }

    /// Speaks the reply of the pending turn (its first sentence is what the timings follow).
    fn say_reply(&mut self, text: &str, now: Duration) {
        let first = self.next_job;
        self.say(text, now);
        if let Some(t) = self.turn.as_mut() {
            t.replied = true;
            if self.next_job > first && t.first_reply_job.is_none() {
                t.first_reply_job = Some(first);
            }
        }
    }

    /// Stops the bot: queued speech and the jobs making it.
    fn flush(&mut self) {
        for id in self.playback.flush() {
            self.cancel(id);
        }
        self.pause = None;
        if let Some(t) = self.turn.as_mut() {
            if let Some(llm) = t.llm.take() {
                self.outputs.push_back(Output::Cancel(llm.id));
            }
        }
        self.after_playback = None;
    }

    /// Handles one event at call time `now`.
    pub fn handle(&mut self, event: Event<'_>, now: Duration) {
        if self.ended {
            return;
        }
        match event {
            Event::Answered => {
                if !self.answered {
                    self.answered = true;
                    let greeting = self.cfg.texts.greeting.clone();
                    self.say(&greeting, now);
                }
            }
            Event::Audio(frame) => self.on_audio(frame, now),
            Event::Dtmf(d) => self.on_dtmf(d, now),
            Event::LlmDelta { job, text } => self.on_llm_delta(job, text, now),
            Event::Done { job, result } => self.on_done(job, result, now),
            Event::RemoteHangup => {
                self.flush();
                self.ended = true;
            }
            Event::Shutdown => self.on_shutdown(now),
        }
        self.on_timers(now);
    }

    /// Writes the next outbound frame (20 ms at 16 kHz; silence when the bot is quiet). Call it
    /// once per inbound frame, with the same `now`, so the echo guard sees both in step.
    pub fn fill_frame(&mut self, out: &mut [f32], now: Duration) {
        self.on_timers(now);
        let f = if self.ended {
            out.fill(0.0);
            Default::default()
        } else {
            self.playback.fill(out)
        };
        self.echo.push_outbound(out);
        if f.samples > 0 {
            self.last_sound_out = Some(now);
        }
        if let (Some(job), Some(t)) = (f.started, self.turn.as_mut()) {
            if t.first_reply_job.is_some_and(|first| job >= first) && t.timing.first_frame_out.is_none() {
                t.timing.first_frame_out = Some(now);
                let timing = t.timing.clone();
                self.outputs.push_back(Output::Timing(timing));
            }
        }
        if f.finished {
            self.quiet_since = Some(now);
            if let Some(action) = self.after_playback.take() {
                self.finish_with(action);
            }
        }
    }

    fn finish_with(&mut self, action: Action) {
        self.flush();
        self.ended = true;
        self.outputs.push_back(Output::Action(action));
    }

    // --- caller audio -------------------------------------------------------------------------

    /// Stops whatever the bot was doing, drops the caller's turn in progress, says the shutdown
    /// words and hangs up after them; callers are not heard any more (`closing`).
    fn on_shutdown(&mut self, now: Duration) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.flush();
        if let Some(t) = self.turn.take() {
            for id in [t.stt, t.understand].into_iter().flatten() {
                self.cancel(id);
            }
        }
        self.utterance = None;
        if !self.answered {
            self.outputs.push_back(Output::Action(Action::Hangup));
            return;
        }
        let text = self.cfg.texts.shutdown.clone();
        self.say(&text, now);
        self.after_playback = Some(Action::Hangup);
    }

    fn on_audio(&mut self, frame: &[f32], now: Duration) {
        // Once the bot has decided to transfer or hang up, it finishes its sentence and does so:
        // the caller talking over "I'm putting you through" neither stops it nor starts a turn
        // (a new turn would drop the transfer, and the caller would be left with the bot).
        if self.closing || self.after_playback.is_some() {
            return;
        }
        // A transport bug or a corrupt packet must not poison the VAD's state with NaN.
        let clean: Vec<f32>;
        let frame = if frame.iter().all(|s| s.is_finite()) {
            frame
        } else {
            clean = frame.iter().map(|s| if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 }).collect();
            &clean
        };
        self.echo.push_inbound(frame);
        if self.pending.is_empty() {
            self.pending_start = now;
        }
        self.pending.extend_from_slice(frame);
        self.inbound_end = now + Duration::from_secs_f64(frame.len() as f64 / RATE as f64);
        let chunk_time = Duration::from_secs_f64(CHUNK as f64 / RATE as f64);
        while self.pending.len() >= CHUNK {
            let chunk: Vec<f32> = self.pending.drain(..CHUNK).collect();
            let start = self.pending_start;
            self.pending_start += chunk_time;
            let prob = match self.detector.probability(&chunk) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("VAD failed: {e}");
                    self.stage_failed(start);
                    return;
                }
            };
            self.on_chunk(&chunk, prob, start, start + chunk_time);
        }
    }

    fn on_chunk(&mut self, chunk: &[f32], prob: f32, start: Duration, end: Duration) {
        // Keep the audio: of the turn in progress, or the recent past for the next turn's start.
        match self.utterance.as_mut() {
            Some(u) => {
                u.audio.extend_from_slice(chunk);
                if prob >= self.cfg.vad.end_threshold {
                    u.last_voiced = end;
                }
            }
            None => {
                self.preroll.extend(chunk.iter().copied());
                let keep = RATE as usize * 3 / 10;
                while self.preroll.len() > keep {
                    self.preroll.pop_front();
                }
            }
        }
        self.barge_in_check(prob);
        match self.segmenter.push(prob, start, end) {
            Some(VadEvent::SpeechStart { .. }) => self.on_speech_start(end),
            Some(VadEvent::SpeechEnd { end: speech_end, .. }) => self.on_speech_end(speech_end, end),
            None => {}
        }
        self.early_transcription(end);
        self.end_of_turn(end);
        if let Some(u) = &self.utterance {
            if end.saturating_sub(u.start) >= ms(self.cfg.max_turn_ms) {
                self.segmenter = SpeechSegmenter::new(self.cfg.vad.clone());
                self.on_speech_end(end, end);
            }
        }
    }

    /// Whether the bot was audible recently enough for its echo to be arriving now.
    fn near_bot_audio(&self, now: Duration) -> bool {
        self.playback.is_sounding()
            || self.last_sound_out.is_some_and(|t| now.saturating_sub(t) <= ms(self.cfg.echo_max_delay_ms + self.cfg.echo_window_ms))
    }

    /// Speech over the bot pauses it at once, unless it is the bot's own echo.
    fn barge_in_check(&mut self, prob: f32) {
        if prob >= self.cfg.vad.start_threshold && (self.playback.is_sounding() || self.pause.is_some()) {
            self.voiced_over_bot += 1;
        } else if prob < self.cfg.vad.end_threshold {
            self.voiced_over_bot = 0;
        }
        let chunk_ms = (CHUNK as u32 * 1000) / RATE;
        if self.pause.is_none() && self.playback.is_sounding() && self.voiced_over_bot * chunk_ms >= self.cfg.barge_in_ms {
            if self.echo.is_echo() {
                if let Some(u) = self.utterance.as_mut() {
                    u.echo = true;
                }
                return;
            }
            let at = self.pending_start;
            tracing::debug!(?at, correlation = self.echo.correlation(), "barge-in: pausing the bot");
            self.playback.pause();
            self.pause = Some(Pause { at, confirmed: false });
            self.outputs.push_back(Output::BargeIn { at });
            if let Some(u) = self.utterance.as_mut() {
                u.echo = false;
            }
        }
    }

    fn on_speech_start(&mut self, now: Duration) {
        self.quiet_since = None;
        // The caller went on after an endpoint: the turn is not over. Drop the answer in progress
        // if it has not been acted on, and transcribe both parts together.
        let mut carried: Option<(Duration, Vec<f32>)> = None;
        if let Some(id) = self.turn.as_ref().and_then(|t| t.stt) {
            self.cancel(id);
            carried = self.utterance.take().map(|u| (u.start, u.audio));
            self.turn = None;
        } else if let Some(last) = self.rejoinable(now) {
            // "Hello." ... "I have a question about my bill": the answer to the first part was
            // about to start or had just started. It is dropped unheard (or cut off at once), and
            // both parts are heard as one turn. The conversation has seen the first part alone;
            // it hears the whole again.
            tracing::debug!(pause_ms = now.saturating_sub(last.speech_end).as_millis() as u64, "the caller went on: one turn");
            if let Some(id) = self.turn.as_ref().and_then(|t| t.understand) {
                self.cancel(id);
            }
            self.flush();
            self.turn = None;
            let pre: Vec<f32> = self.preroll.drain(..).collect();
            let pre_start = now.saturating_sub(Duration::from_secs_f64(pre.len() as f64 / RATE as f64));
            let kept_end = last.start + Duration::from_secs_f64(last.audio.len() as f64 / RATE as f64);
            let mut audio = last.audio;
            audio.resize(audio.len() + samples(pre_start.saturating_sub(kept_end).min(Duration::from_secs(2))), 0.0);
            audio.extend_from_slice(&pre);
            carried = Some((last.start, audio));
            self.rejoined = true;
        }
        let over_bot = self.near_bot_audio(now) || self.pause.is_some();
        if let Some(p) = self.pause.as_mut() {
            p.confirmed = true;
        }
        let echo = over_bot && self.pause.is_none() && self.echo.is_echo();
        let (start, mut audio) = carried.unwrap_or_else(|| {
            let pre: Vec<f32> = self.preroll.drain(..).collect();
            (now.saturating_sub(Duration::from_secs_f64(pre.len() as f64 / RATE as f64)), pre)
        });
        if audio.is_empty() {
            audio.reserve(RATE as usize * 4);
        }
        self.utterance = Some(Utterance { start, audio, last_voiced: now, early: None, early_result: None, echo });
    }

    /// The last turn, if the caller's new speech (confirmed at `now`) continues it: it began within
    /// `rejoin_pause_ms` of that turn's end, and the answer has not been acted on (a transfer or
    /// hangup already under way is not undone).
    fn rejoinable(&mut self, now: Duration) -> Option<LastTurn> {
        let last = self.last_turn.as_ref()?;
        let onset = now.saturating_sub(ms(self.cfg.vad.min_speech_ms));
        let pause = onset.saturating_sub(last.speech_end);
        // The answer is still being prepared or played (one already over was heard in full).
        let answering = self.turn.as_ref().is_some_and(|t| !t.replied || !self.playback.is_empty());
        (answering && !self.failing && pause <= ms(self.cfg.rejoin_pause_ms)).then(|| self.last_turn.take()).flatten()
    }

    /// Transcription started on a tentative end, so the result is ready when the hangover ends.
    fn early_transcription(&mut self, now: Duration) {
        // As far ahead of the endpoint as configured for ordinary turns (so the transcript is
        // ready when the turn ends), and no earlier (so it is not wasted on every pause between
        // digit groups when the hangover is longer).
        let tentative = if self.expecting_digits {
            let lead = self.cfg.vad.hangover_ms.saturating_sub(self.cfg.tentative_end_ms);
            ms(self.hangover_ms.saturating_sub(lead).max(self.cfg.tentative_end_ms))
        } else {
            ms(self.cfg.tentative_end_ms)
        };
        let Some(u) = self.utterance.as_mut() else { return };
        if self.turn.as_ref().is_some_and(|t| !t.replied) || u.echo {
            return;
        }
        let silent_for = now.saturating_sub(u.last_voiced);
        match u.early {
            None if self.segmenter.in_speech() && silent_for >= tentative => {
                let audio: Arc<[f32]> = Arc::from(&u.audio[..]);
                let id = self.next_job;
                self.next_job += 1;
                u.early = Some(id);
                self.outputs.push_back(Output::Job { id, job: Job::Transcribe { audio } });
            }
            Some(id) if silent_for < tentative => {
                // The caller went on: that transcription is of half a sentence.
                u.early = None;
                u.early_result = None;
                self.cancel(id);
            }
            _ => {}
        }
    }

    /// The learned end of turn: once the early transcript is in and its words could end the turn
    /// (not mid-sentence, not a greeting or a digit group alone), the model is asked whether the
    /// caller has finished (on the turn so far, its silence included); "yes" ends the turn, "no"
    /// keeps listening and asks again as the silence grows. The VAD's own hangover
    /// (`max_endpointing_delay_ms` then) ends the turn in the end whatever the model says.
    /// The words come first: where they already decide, the model is not run, and the two never
    /// compete for the cores (a transcription sharing them with the model took 2-4x as long).
    fn end_of_turn(&mut self, now: Duration) {
        if !self.model_endpointing() || !self.segmenter.in_speech() {
            return;
        }
        let Some(u) = self.utterance.as_ref() else { return };
        if u.echo || self.turn.as_ref().is_some_and(|t| !t.replied) {
            return;
        }
        let silent_for = now.saturating_sub(u.last_voiced);
        if silent_for.is_zero() {
            // The caller is speaking: any question about an earlier silence is moot.
            if let Some(ask) = self.eot_asked.take() {
                self.cancel(ask.id);
            }
            self.eot_next_ask_ms = self.first_ask_ms();
            self.eot_complete = None;
            return;
        }
        let last_voiced = u.last_voiced;
        if self.try_model_end(now) {
            return;
        }
        let Some(u) = self.utterance.as_ref() else { return };
        let words_could_end = u.early_text().is_some_and(|text| !words::sounds_unfinished(text) && words::may_go_on(text).is_none());
        if self.eot_asked.is_none() && words_could_end && silent_for >= ms(self.eot_next_ask_ms) {
            // The model hears the last 8 s only; a long turn is not copied whole at every ask.
            let audio: Arc<[f32]> = Arc::from(&u.audio[u.audio.len().saturating_sub(crate::turn::WINDOW_SAMPLES)..]);
            let id = self.job(Job::EndOfTurn { audio });
            self.eot_asked = Some(EotAsk { id, silence_from: last_voiced });
            self.eot_next_ask_ms = (silent_for.as_millis() as u32).max(self.eot_next_ask_ms) + self.cfg.end_of_turn_recheck_ms;
        }
    }

    fn on_end_of_turn(&mut self, id: JobId, complete: f32, now: Duration) {
        let Some(ask) = self.eot_asked.filter(|a| a.id == id) else { return };
        self.eot_asked = None;
        self.eot_last_prob = Some(complete);
        let still_silent = self.utterance.as_ref().is_some_and(|u| u.last_voiced == ask.silence_from);
        tracing::debug!(complete, still_silent, "end-of-turn model");
        if !still_silent || complete < self.cfg.end_of_turn_threshold {
            return;
        }
        self.eot_complete = Some(ask.silence_from);
        self.try_model_end(now);
    }

    /// Ends the turn if everything says it is over: the model called this silence the end, it has
    /// lasted `min_endpointing_delay_ms`, and the early transcript of the turn is there and does
    /// not stop mid-sentence ("My order number is"). The model judges the sound, the words judge
    /// the grammar; a synthetic or flat voice can sound finished where the words are not.
    fn try_model_end(&mut self, now: Duration) -> bool {
        if !self.model_endpointing() || !self.segmenter.in_speech() {
            return false;
        }
        let Some(u) = self.utterance.as_ref() else { return false };
        let judged = self.eot_complete == Some(u.last_voiced);
        let silent_for = now.saturating_sub(u.last_voiced);
        let early_text = u.early_text();
        let words_done = early_text.is_some_and(|text| !words::sounds_unfinished(text));
        // Both agree: after the short delay. Only the words: after the longer one. Words that
        // stop mid-sentence: the VAD's hangover (the maximum delay) decides. A greeting alone or
        // a digit group is usually followed by more: as long as if the model were unsure, and
        // for digits as long as when the bot asked for them.
        let after = match early_text.and_then(words::may_go_on) {
            Some(words::MayGoOn::Digits) => self.cfg.digits_hangover_ms,
            Some(words::MayGoOn::Greeting) => self.cfg.unsure_endpointing_delay_ms,
            None if judged => self.cfg.min_endpointing_delay_ms,
            None => self.cfg.unsure_endpointing_delay_ms,
        };
        if words_done && silent_for >= ms(after) {
            self.end_turn_now(now);
            return true;
        }
        false
    }

    /// The model said the caller has finished: the turn ends here, before the VAD's hangover.
    fn end_turn_now(&mut self, now: Duration) {
        if let Some(VadEvent::SpeechEnd { end, .. }) = self.segmenter.finish(now) {
            self.eot_complete = None;
            self.on_speech_end(end, now);
            if let Some(t) = self.turn.as_mut() {
                t.timing.model_endpoint = true;
            }
        }
    }

    fn on_speech_end(&mut self, speech_end: Duration, now: Duration) {
        if let Some(ask) = self.eot_asked.take() {
            self.cancel(ask.id);
        }
        self.eot_next_ask_ms = self.first_ask_ms();
        let eot_prob = self.eot_last_prob.take();
        let Some(mut u) = self.utterance.take() else { return };
        if u.echo && self.pause.is_none() {
            tracing::debug!("ignored the bot's own echo");
            return;
        }
        // A little of the silence after the words, as Whisper likes.
        let tail = samples(Duration::from_millis(150));
        let keep = samples(speech_end.saturating_sub(u.start)) + tail;
        u.audio.truncate(keep.min(u.audio.len()));
        let rejoined = std::mem::take(&mut self.rejoined);
        let mut timing = TurnTiming { speech_end, endpoint: now, end_of_turn_prob: eot_prob, rejoined, ..Default::default() };
        // The early transcription covers all the words (it is dropped whenever speech resumes).
        let early = u.early.take();
        let early_result = u.early_result.take();
        let stt = match early {
            Some(id) => {
                timing.early_stt = true;
                id
            }
            None => self.job(Job::Transcribe { audio: Arc::from(&u.audio[..]) }),
        };
        // Keep the audio: if the caller goes on, the turn is transcribed again as a whole.
        self.utterance = Some(u);
        self.turn = Some(PendingTurn { timing, stt: Some(stt), ..Default::default() });
        if let Some((text, language)) = early_result {
            self.on_transcript(stt, text, language, now);
        }
    }

    // --- keypad -------------------------------------------------------------------------------

    fn on_dtmf(&mut self, d: char, now: Duration) {
        // As for speech: a decided transfer or hang-up is not undone by a key.
        if self.closing || self.after_playback.is_some() {
            return;
        }
        self.quiet_since = None;
        // A key stops the bot (the caller knows what they want).
        if !self.playback.is_empty() && self.after_playback.is_none() {
            self.flush();
        }
        if d.is_ascii_digit() && d != '0' || d == '0' && self.keyed > 0 {
            self.keyed += 1;
        } else if d == '#' || d == '*' {
            self.keyed = 0;
        }
        self.last_key = now;
        self.understand(CallerInput::Dtmf(d), now, now);
    }

    /// Hands the caller's input to the conversation. A transcript continues the turn in progress
    /// (its timings, its filler); a key starts a new one.
    fn understand(&mut self, input: CallerInput, speech_end: Duration, now: Duration) {
        let current = self.turn.take().filter(|t| !t.replied && matches!(input, CallerInput::Speech { .. }));
        let (timing, filler_played) = match current {
            Some(t) => (t.timing, t.filler_played),
            None => (TurnTiming { speech_end, endpoint: now, ..Default::default() }, false),
        };
        let id = self.job(Job::Understand(input));
        self.turn = Some(PendingTurn { timing, understand: Some(id), filler_played, ..Default::default() });
    }

    // --- results ------------------------------------------------------------------------------

    fn on_done(&mut self, id: JobId, result: JobResult, now: Duration) {
        match result {
            JobResult::Speech(audio) => {
                if audio.is_empty() {
                    self.playback.drop_slot(id);
                } else if self.playback.fill_slot(id, audio) {
                    if let Some(t) = self.turn.as_mut() {
                        if t.replied && t.timing.first_tts_audio.is_none() {
                            t.timing.first_tts_audio = Some(now);
                        }
                    }
                }
            }
            JobResult::Transcript { text, language } => {
                if let Some(u) = self.utterance.as_mut().filter(|u| u.early == Some(id)) {
                    // Ready before the endpoint: kept until the caller's silence is confirmed.
                    u.early_result = Some((text, language));
                    if !self.try_model_end(now) {
                        self.end_of_turn(now);
                    }
                } else {
                    self.on_transcript(id, text, language, now);
                }
            }
            JobResult::Turn(turn) => {
                if self.turn.as_ref().is_some_and(|t| t.understand == Some(id)) {
                    self.on_turn(*turn, now);
                }
            }
            JobResult::Llm { text } => self.on_llm_done(id, text, now),
            JobResult::EndOfTurn { complete } => self.on_end_of_turn(id, complete, now),
            JobResult::Failed(why) => self.on_failed(id, &why, now),
        }
    }

    fn on_failed(&mut self, id: JobId, why: &str, now: Duration) {
        if self.playback.has(id) {
            self.playback.drop_slot(id);
            if !self.failing {
                tracing::error!("speech synthesis failed: {why}");
                self.stage_failed(now);
            } else if self.playback.is_empty() {
                // Not even the apology can be spoken: transfer at once.
                if let Some(a) = self.after_playback.take() {
                    self.finish_with(a);
                }
            }
            return;
        }
        if let Some(u) = self.utterance.as_mut().filter(|u| u.early == Some(id)) {
            // The transcription will be made again at the endpoint.
            u.early = None;
            return;
        }
        if self.eot_asked.is_some_and(|a| a.id == id) {
            // Turn-taking goes on without the model: the fixed hangover, for the rest of the call.
            tracing::warn!("the end-of-turn model failed ({why}); ending turns after the fixed {} ms hangover", self.cfg.vad.hangover_ms);
            self.eot_asked = None;
            self.turn_model = false;
            self.apply_hangover();
            return;
        }
        let Some(t) = self.turn.as_ref() else { return };
        if t.llm.as_ref().is_some_and(|l| l.id == id) {
            // The LLM only ever improves a reply: speak the fixed one.
            tracing::warn!("LLM failed ({why}); speaking the fixed reply");
            let llm = self.turn.as_mut().and_then(|t| t.llm.take());
            if let Some(llm) = llm {
                if llm.spoken == 0 {
                    self.speak_turn(&llm.turn, now);
                }
            }
        } else if t.stt == Some(id) || t.understand == Some(id) {
            tracing::error!("a stage failed: {why}");
            self.stage_failed(now);
        }
    }

    /// Something broke: apologise and hand the caller to a person.
    fn stage_failed(&mut self, now: Duration) {
        self.flush();
        self.failing = true;
        self.turn = None;
        let apology = self.cfg.texts.apology.clone();
        self.say(&apology, now);
        let summary = dialogue::manager::Handoff {
            screen: "The voice system failed during the call; the caller has not been helped yet. Next: ask how to help.".into(),
            spoken: apology,
        };
        self.after_playback = Some(Action::Transfer {
            reason: dialogue::policy::TransferReason::StageFailure,
            priority: dialogue::policy::Priority::Normal,
            summary,
        });
        if self.playback.is_empty() {
            if let Some(a) = self.after_playback.take() {
                self.finish_with(a);
            }
        }
    }

    fn on_transcript(&mut self, id: JobId, text: String, language: String, now: Duration) {
        let Some(t) = self.turn.as_mut() else { return };
        if t.stt != Some(id) {
            return;
        }
        t.timing.stt_final = Some(now);
        t.stt = None;
        let speech_end = t.timing.speech_end;
        let kind = words::classify(&text);
        self.last_turn = self
            .utterance
            .take()
            .filter(|_| kind != Interruption::NoWords)
            .map(|u| LastTurn { start: u.start, audio: u.audio, speech_end });
        let interrupted_question = self.playback.current().is_some_and(|(s, last)| last && s.trim_end().ends_with('?'));
        if self.pause.is_some() {
            if kind == Interruption::NoWords || kind == Interruption::Backchannel && !interrupted_question {
                tracing::debug!(text = %ivr_privacy::mask(&text), "false interruption: resuming");
                self.resume();
                self.turn = None;
                return;
            }
            // Real words: the bot stops for good and listens.
            self.flush();
        }
        if kind == Interruption::NoWords {
            self.turn = None;
            self.quiet_since.get_or_insert(now);
            return;
        }
        let words = words::spoken_words(&text);
        self.outputs.push_back(Output::Said { who: Speaker::Caller, text: words.clone(), at: speech_end });
        if !language.is_empty() {
            self.language = if language.starts_with("zh") { "zh".into() } else { "en".into() };
        }
        self.understand(CallerInput::Speech { text: words, language }, speech_end, now);
    }

    fn resume(&mut self) {
        self.pause = None;
        self.playback.resume();
    }

    fn on_turn(&mut self, turn: Turn, now: Duration) {
        let Some(t) = self.turn.as_mut() else { return };
        t.timing.understood = Some(now);
        t.understand = None;
        if !turn.language.is_empty() {
            self.language = turn.language.clone();
        }
        self.expecting_digits = turn.expects_digits;
        self.apply_hangover();
        if turn.reply.is_empty() && turn.action.is_none() {
            // A keyed digit: nothing to say yet.
            self.turn = None;
            return;
        }
        // Whatever still plays here is a filler; the answer follows it.
        match turn.llm.clone().filter(|_| self.use_llm) {
            Some(job) if job.purpose == LlmPurpose::Reply => {
                let id = self.job(Job::Llm(job.clone()));
                let t = self.turn.as_mut().expect("checked above");
                t.llm = Some(LlmState { id, job, turn, asked_at: now, text: String::new(), spoken: 0 });
            }
            Some(job) => {
                // A handoff note: the caller hears the fixed words now, the note follows.
                let id = self.job(Job::Llm(job.clone()));
                self.speak_turn(&turn, now);
                if let Some(t) = self.turn.as_mut() {
                    t.llm = Some(LlmState { id, job, turn, asked_at: now, text: String::new(), spoken: usize::MAX });
                }
            }
            None => self.speak_turn(&turn, now),
        }
    }

    /// Queues a turn's fixed reply and remembers its action.
    fn speak_turn(&mut self, turn: &Turn, now: Duration) {
        self.say_reply(&turn.reply, now);
        self.after_playback = turn.action.clone();
        if self.playback.is_empty() {
            if let Some(a) = self.after_playback.take() {
                self.finish_with(a);
            }
        }
    }

    fn on_llm_delta(&mut self, id: JobId, text: &str, now: Duration) {
        let Some(t) = self.turn.as_mut() else { return };
        let Some(llm) = t.llm.as_mut().filter(|l| l.id == id) else { return };
        if t.timing.first_llm_token.is_none() {
            t.timing.first_llm_token = Some(now);
        }
        llm.text.push_str(text);
        if !streamable(&llm.job) || llm.spoken == usize::MAX {
            return;
        }
        // Speak each sentence as soon as it is complete and passes the guard.
        let sentences = crate::tts::split_sentences(llm.text.trim());
        let complete = sentences.len().saturating_sub(1);
        if complete > llm.spoken {
            let new: Vec<String> = sentences[llm.spoken..complete].to_vec();
            self.speak_llm_sentences(new, now);
        }
    }

    fn speak_llm_sentences(&mut self, sentences: Vec<String>, now: Duration) {
        for sentence in sentences {
            let Some(t) = self.turn.as_mut() else { return };
            let Some(llm) = t.llm.as_mut() else { return };
            if dialogue::manager::accept_llm_reply(&llm.job, &sentence).is_none() {
                tracing::info!(%sentence, "LLM sentence refused by the guard");
                let llm = t.llm.take().expect("present");
                self.cancel(llm.id);
                if llm.spoken == 0 {
                    self.speak_turn(&llm.turn, now);
                }
                return;
            }
            llm.spoken += 1;
            t.timing.llm = true;
            let action = llm.turn.action.clone();
            self.say_reply(&sentence, now);
            self.after_playback = action;
        }
    }

    fn on_llm_done(&mut self, id: JobId, text: String, now: Duration) {
        let Some(t) = self.turn.as_mut() else { return };
        let Some(mut llm) = t.llm.take().filter(|l| l.id == id) else { return };
        if llm.spoken == usize::MAX {
            // The handoff note: applied to the action still waiting for the reply to end.
            let mut turn = llm.turn.clone();
            if turn.apply_llm(&llm.job, &text) {
                if let Some(a) = self.after_playback.as_mut() {
                    *a = turn.action.clone().unwrap_or_else(|| a.clone());
                }
            }
            return;
        }
        if streamable(&llm.job) {
            if llm.text.is_empty() {
                llm.text = text;
            }
            let sentences = crate::tts::split_sentences(llm.text.trim());
            let rest: Vec<String> = sentences.into_iter().skip(llm.spoken).collect();
            let spoken = llm.spoken;
            t.llm = Some(llm);
            if rest.is_empty() && spoken == 0 {
                let llm = self.turn.as_mut().and_then(|t| t.llm.take()).expect("just put");
                self.speak_turn(&llm.turn, now);
            } else {
                self.speak_llm_sentences(rest, now);
                if let Some(t) = self.turn.as_mut() {
                    t.llm = None;
                }
            }
            return;
        }
        // Checked as a whole (facts that must all be there, or a fixed sentence that follows).
        let mut turn = llm.turn.clone();
        turn.llm = None;
        if turn.apply_llm(&llm.job, &text) {
            t.timing.llm = true;
        }
        self.speak_turn(&turn, now);
    }

    // --- time ---------------------------------------------------------------------------------

    fn on_timers(&mut self, now: Duration) {
        if self.ended || !self.answered {
            return;
        }
        // A pause that never became speech (a click, a short noise) resumes.
        if let Some(p) = self.pause {
            if !p.confirmed && self.utterance.is_none() && now.saturating_sub(p.at) >= ms(self.cfg.barge_in_give_up_ms) {
                self.resume();
            }
        }
        if let Some(t) = self.turn.as_mut() {
            // The LLM is too slow: the fixed reply now.
            if let Some(llm) = &t.llm {
                if llm.spoken == 0 && now.saturating_sub(llm.asked_at) >= ms(self.cfg.llm_budget_ms) {
                    let llm = t.llm.take().expect("present");
                    tracing::info!("LLM over its budget; speaking the fixed reply");
                    self.cancel(llm.id);
                    self.speak_turn(&llm.turn, now);
                    return;
                }
            }
            // Dead air: say something while a slow stage finishes.
            let t = self.turn.as_mut().expect("present");
            if !t.replied && !t.filler_played && now.saturating_sub(t.timing.endpoint) >= ms(self.cfg.filler_after_ms) {
                t.filler_played = true;
                t.timing.filler = true;
                let filler = self.cfg.texts.filler.clone();
                self.say(&filler, now);
            }
        }
        // Keyed digits without '#'.
        if self.keyed > 0 && now.saturating_sub(self.last_key) >= ms(self.cfg.dtmf_timeout_ms) {
            self.keyed = 0;
            self.understand(CallerInput::Dtmf('#'), now, now);
        }
        // Caller silence.
        let turn_done = self.turn.as_ref().is_none_or(|t| t.replied && t.llm.is_none());
        let idle = self.playback.is_empty() && turn_done && self.utterance.is_none() && self.keyed == 0;
        if !idle {
            self.quiet_since = None;
            return;
        }
        let since = *self.quiet_since.get_or_insert(now);
        if now.saturating_sub(since) >= ms(self.cfg.silence_timeout_ms) {
            self.quiet_since = None;
            if self.reprompted < self.cfg.reprompts {
                self.reprompted += 1;
                let text = self.cfg.texts.reprompt.clone();
                self.say(&text, now);
            } else {
                let text = self.cfg.texts.goodbye.clone();
                self.say(&text, now);
                self.after_playback = Some(Action::Hangup);
            }
        }
    }
}

/// Whether an LLM answer can be spoken sentence by sentence as it streams: only when each
/// sentence can be judged alone (no facts the whole must contain, no fixed words that follow).
fn streamable(job: &LlmJob) -> bool {
    job.must_mention.is_empty() && job.then_say.is_empty() && job.paraphrase_of.is_none()
}
