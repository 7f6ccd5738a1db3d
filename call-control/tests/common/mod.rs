//! The scripted surroundings of a call in memory (a caller's leg, job results, a simulated clock,
//! a record collector), shared by the call-control tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use call_control::call::{Call, CallPolicy, EndedBy, Entry, Transfer};
use call_control::driver::{self, Clock, Delivery, Hooks, Jobs, Stop};
use dialogue::manager::{Action, Handoff, Source, Turn};
use dialogue::policy::{Priority, TransferReason};
use ivr_audio::{FRAME_SAMPLES, RATE};
use sip_bridge::leg::{Leg, LegCommand, LegEvent};
use voice_pipeline::onnx::OnnxError;
use voice_pipeline::session::{CallSession, CallerInput, Job, JobId, JobResult, SessionConfig, Speaker};
use voice_pipeline::vad::SpeechDetector;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Speech is anything loud: the scripted caller "speaks" a tone.
pub struct LevelMeter;

impl SpeechDetector for LevelMeter {
    fn probability(&mut self, chunk: &[f32]) -> Result<f32, OnnxError> {
        let rms = (chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32).sqrt();
        Ok(if rms > 0.05 { 0.95 } else { 0.02 })
    }
}

pub fn tone(len: Duration) -> Vec<f32> {
    let n = (len.as_secs_f64() * RATE as f64) as usize;
    (0..n).map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 300.0 / RATE as f32).sin()).collect()
}

/// The caller's side, as scripted.
#[derive(Default)]
pub struct ScriptedLeg {
    /// Events at call times (answering adds `Connected` 40 ms after the answer).
    pub events: Vec<(Duration, LegEvent)>,
    /// When the caller's tone plays (speech).
    pub speech: Vec<(Duration, Duration)>,
    /// After this the leg receives nothing at all (the party is gone without a BYE).
    pub media_stops: Option<Duration>,
    /// The leg reports the keys sent this long after `SendDigits`.
    pub digits_take: Duration,
    /// Commands it was given, with their times.
    pub commands: Vec<(Duration, LegCommand)>,
    /// Frames sent to the party: (time, audible).
    pub sent: Vec<(Duration, bool)>,
}

impl ScriptedLeg {
    pub fn command_at(&self, f: impl Fn(&LegCommand) -> bool) -> Option<Duration> {
        self.commands.iter().find(|(_, c)| f(c)).map(|(t, _)| *t)
    }
    pub fn first_audio_out(&self) -> Option<Duration> {
        self.sent.iter().find(|(_, s)| *s).map(|(t, _)| *t)
    }
}

impl Leg for ScriptedLeg {
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent> {
        let i = self.events.iter().position(|(t, _)| *t <= now)?;
        Some(self.events.remove(i).1)
    }
    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], now: Duration) {
        frame.fill(0.0);
        if let Some((from, to)) = self.speech.iter().find(|(a, b)| *a <= now && now < *b) {
            let t = tone(*to - *from);
            let at = ((now - *from).as_secs_f64() * RATE as f64) as usize;
            for (k, s) in frame.iter_mut().enumerate() {
                *s = t.get(at + k).copied().unwrap_or(0.0);
            }
        }
    }
    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration) {
        self.sent.push((now, speaking && frame.iter().any(|s| s.abs() > 0.01)));
    }
    fn silent_for(&self, now: Duration) -> Duration {
        self.media_stops.map(|t| now.saturating_sub(t)).unwrap_or_default()
    }
    fn command(&mut self, command: LegCommand, now: Duration) {
        match &command {
            LegCommand::Answer => self.events.push((now + ms(40), LegEvent::Connected)),
            LegCommand::SendDigits(_) => self.events.push((now + self.digits_take, LegEvent::DigitsSent)),
            _ => {}
        }
        self.commands.push((now, command));
    }
}

/// Job results as scripted, each `latency` after it was asked for.
pub struct ScriptedJobs {
    pub latency: Duration,
    /// What the caller's turns are heard as, in order.
    pub transcripts: VecDeque<&'static str>,
    /// The conversation's answer to an input.
    pub understand: fn(&CallerInput) -> Turn,
    pub ready: Vec<(Duration, JobId, Delivery)>,
    pub asked: Vec<Job>,
}

impl ScriptedJobs {
    pub fn new(transcripts: &[&'static str], understand: fn(&CallerInput) -> Turn) -> Self {
        Self { latency: ms(100), transcripts: transcripts.iter().copied().collect(), understand, ready: Vec::new(), asked: Vec::new() }
    }
}

impl Jobs for ScriptedJobs {
    fn submit(&mut self, id: JobId, job: Job, now: Duration) {
        let result = match &job {
            // A second of bot speech per sentence.
            Job::Synthesize { .. } => JobResult::Speech(Arc::from(tone(ms(1000)))),
            Job::Transcribe { .. } => JobResult::Transcript { text: self.transcripts.pop_front().unwrap_or("").into(), language: "en".into() },
            Job::Understand(input) => JobResult::Turn(Box::new((self.understand)(input))),
            Job::EndOfTurn { .. } => JobResult::EndOfTurn { complete: 1.0 },
            Job::Llm(_) => JobResult::Failed("no LLM in this test".into()),
        };
        self.asked.push(job);
        self.ready.push((now + self.latency, id, Delivery::Done(result)));
    }
    fn cancel(&mut self, id: JobId) {
        self.ready.retain(|(_, j, _)| *j != id);
    }
    fn poll(&mut self, now: Duration) -> Option<(Duration, JobId, Delivery)> {
        let i = self.ready.iter().position(|(t, _, _)| *t <= now)?;
        Some(self.ready.remove(i))
    }
    fn idle(&self) -> bool {
        self.ready.is_empty()
    }
}

pub struct SimClock(pub Duration);

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.0
    }
    fn wait_until(&mut self, at: Duration) {
        self.0 = self.0.max(at);
    }
}

/// Collects the records; the server's stop messages at scripted times; gives up after two minutes.
#[derive(Default)]
pub struct Collect {
    pub entries: Vec<Entry>,
    pub stops: Vec<(Duration, Stop)>,
}

impl Hooks for Collect {
    fn record(&mut self, entry: Entry) {
        self.entries.push(entry);
    }
    fn stop(&mut self, now: Duration) -> Option<Stop> {
        let i = self.stops.iter().position(|(t, _)| *t <= now)?;
        Some(self.stops.remove(i).1)
    }
    fn caller_done(&mut self, now: Duration, _idle: bool) -> bool {
        now > Duration::from_secs(120)
    }
}

impl Collect {
    pub fn ended(&self) -> Option<(EndedBy, Duration)> {
        self.entries.iter().find_map(|e| match e {
            Entry::Ended { by, at } => Some((*by, *at)),
            _ => None,
        })
    }
    pub fn events(&self, kind: &str) -> Vec<(Duration, Option<serde_json::Value>)> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Event { kind: k, at, detail } if *k == kind => Some((*at, detail.clone())),
                _ => None,
            })
            .collect()
    }
    pub fn said(&self, who: Speaker) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Said { who: w, text, .. } if *w == who => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
}

pub fn reply(text: &str, action: Option<Action>) -> Turn {
    Turn {
        reply: text.into(),
        language: "en".into(),
        source: Source::Prompt,
        action,
        intent: None,
        confidence: None,
        grounds: String::new(),
        llm: None,
        llm_worded: false,
        expects_digits: false,
        sentiment: None,
        unanswered: false,
        matter: None,
    }
}

pub fn transfer() -> Action {
    Action::Transfer {
        reason: TransferReason::CallerRequest,
        priority: Priority::Normal,
        summary: Handoff { screen: "Caller asked for a person.".into(), spoken: "Putting you through.".into() },
    }
}

/// Key 0 asks for a person; the words "goodbye" end the call; anything else gets an answer.
pub fn demo_conversation(input: &CallerInput) -> Turn {
    match input {
        CallerInput::Dtmf('0') => reply("Putting you through to a colleague.", Some(transfer())),
        CallerInput::Speech { text, .. } if text.contains("goodbye") => {
            let mut t = reply("Thank you for calling. Goodbye!", Some(Action::Hangup));
            t.intent = Some("goodbye".into());
            t.confidence = Some(0.93);
            t.sentiment = Some(dialogue::policy::Sentiment::Neutral);
            t
        }
        _ => {
            let mut t = reply("Delivery takes three to five business days.", None);
            t.intent = Some("delivery_time".into());
            t.confidence = Some(0.81);
            t
        }
    }
}

pub fn policy(transfer: Transfer) -> CallPolicy {
    CallPolicy { ring: Duration::ZERO, media_timeout: Duration::from_secs(3), transfer }
}

pub fn session() -> CallSession {
    CallSession::with_detector(SessionConfig::default(), Box::new(LevelMeter)).with_llm(false)
}

/// Runs one call to its end.
pub fn run(policy: CallPolicy, leg: &mut ScriptedLeg, jobs: &mut ScriptedJobs, hooks: &mut Collect) -> Duration {
    let mut clock = SimClock(Duration::ZERO);
    driver::run(Call::new(session(), policy, Duration::ZERO), leg, jobs, &mut clock, hooks)
}

