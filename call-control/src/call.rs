//! One call, sans-IO: the caller's leg joined to the bot's session, and every policy around them
//! (ringing, answering, where a transfer goes, the keypad transfer's timing, the media timeout,
//! stopping for a shutdown, what is recorded). It takes events with the call time `now` and returns
//! what to do ([`Output`]); it never reads a clock or a socket, so whole calls run in memory, faster
//! than real time (see `tests/call_core.rs`), and the live server, the simulator and the tests run
//! the same code ([`crate::driver`]).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use dialogue::manager::Action;
use sip_bridge::leg::{KeyVia, LegCommand, LegEvent};
use voice_pipeline::session::{CallSession, CallerInput, Event, Job, JobId, JobResult, Output as SessionOutput, Speaker, TurnTiming};

/// How a transfer leaves this server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transfer {
    /// Ask the caller's side to call `target` (SIP REFER).
    Refer(String),
    /// Key these digits to the PBX in front of us (its blind-transfer feature code and an
    /// extension), then hang up once it has had [`KEYPAD_TRANSFER_WAIT`] to act on them.
    Keypad(String),
    /// Nowhere to transfer to: the call ends.
    HangUp,
}

/// After the keypad-transfer digits are out, the PBX has this long to take the call before we
/// hang up.
pub const KEYPAD_TRANSFER_WAIT: Duration = Duration::from_secs(2);

/// The call's policies, from the configuration.
#[derive(Debug, Clone)]
pub struct CallPolicy {
    /// Ring this long before answering (zero answers at once).
    pub ring: Duration,
    /// A call whose media has been silent on the wire this long is ended (the party is gone).
    pub media_timeout: Duration,
    pub transfer: Transfer,
}

/// Why a call ended, as the records and metrics say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum EndedBy {
    Caller,
    Bot,
    /// The server stopped (the goodbye was said).
    Shutdown,
    /// Nothing arrived on the wire for [`CallPolicy::media_timeout`].
    MediaTimeout,
    /// Refused before the answer (the server is stopping).
    Rejected,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Bot => "bot",
            EndedBy::Shutdown => "shutdown",
            EndedBy::MediaTimeout => "rtp timeout",
            EndedBy::Rejected => "rejected",
        }
    }
}

/// What happens to a call.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// From the caller's leg.
    Leg(LegEvent),
    /// Part of an LLM job's answer.
    Delta { job: JobId, text: &'a str },
    /// A job's result.
    Done { job: JobId, result: JobResult },
    /// The server is stopping: a call not yet answered is refused (503); answered ones go on.
    Draining,
    /// The grace is over: the bot says goodbye and hangs up.
    Shutdown,
}

/// What a call leaves behind, in the order it happened. The live server writes these to the store
/// and the metrics; the simulator and the tests collect them.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A line of the conversation.
    Said { who: Speaker, text: String, at: Duration },
    /// What the conversation made of the caller's latest line.
    Understood { intent: Option<String>, confidence: Option<f32>, language: Option<String> },
    /// The timings of the caller's latest turn, once its reply started.
    Timing(TurnTiming),
    /// Something that happened: `answered`, `key`, `barge_in`, `action`, `transfer`.
    Event { kind: &'static str, at: Duration, detail: Option<serde_json::Value> },
    /// The bot's decision that ends its part (a transfer or a hang-up).
    Action { action: Action, at: Duration },
    /// The call is over.
    Ended { by: EndedBy, at: Duration },
}

/// What the call asks of its surroundings.
#[derive(Debug, Clone)]
pub enum Output {
    /// A command for the caller's leg.
    Leg(LegCommand),
    /// Work for the models' lanes.
    Job { id: JobId, job: Job },
    /// That job's result is no longer wanted.
    Cancel(JobId),
    Record(Entry),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Ringing until then.
    Ringing { answer_at: Duration },
    /// Answered, waiting for the leg to connect.
    Answering,
    Connected,
    Ended,
}

pub struct Call {
    session: CallSession,
    policy: CallPolicy,
    phase: Phase,
    outputs: VecDeque<Output>,
    cancelled: HashSet<JobId>,
    /// Understanding jobs for spoken words (their result describes the caller's latest line).
    understanding_speech: HashSet<JobId>,
    /// A keypad transfer has begun: `Some(when the digits were all out)` once they are.
    keypad_transfer: Option<Option<Duration>>,
    /// A goodbye is playing because the server is stopping.
    shutting_down: bool,
    /// Set when the bot decided the end (its action); the caller's hang-up otherwise.
    ended_by: Option<EndedBy>,
}

impl Call {
    /// A call that has just come in: it rings for `policy.ring`, then is answered.
    pub fn new(session: CallSession, policy: CallPolicy, now: Duration) -> Self {
        let mut call = Self {
            session,
            phase: Phase::Ringing { answer_at: now + policy.ring },
            policy,
            outputs: VecDeque::new(),
            cancelled: HashSet::new(),
            understanding_speech: HashSet::new(),
            keypad_transfer: None,
            shutting_down: false,
            ended_by: None,
        };
        if call.policy.ring.is_zero() {
            call.answer();
        } else {
            call.outputs.push_back(Output::Leg(LegCommand::Ring));
        }
        call
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether the bot is audible now.
    pub fn is_speaking(&self) -> bool {
        self.session.is_speaking()
    }

    fn answer(&mut self) {
        self.phase = Phase::Answering;
        self.outputs.push_back(Output::Leg(LegCommand::Answer));
    }

    fn record(&mut self, e: Entry) {
        self.outputs.push_back(Output::Record(e));
    }

    fn event(&mut self, kind: &'static str, at: Duration, detail: Option<serde_json::Value>) {
        self.record(Entry::Event { kind, at, detail });
    }

    /// Ends the call: the leg is told `command` (if any) and the end is recorded.
    fn end(&mut self, by: EndedBy, command: Option<LegCommand>, now: Duration) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        if let Some(c) = command {
            self.outputs.push_back(Output::Leg(c));
        }
        self.record(Entry::Ended { by, at: now });
    }

    pub fn handle(&mut self, input: Input<'_>, now: Duration) {
        if self.phase == Phase::Ended {
            return;
        }
        match input {
            Input::Leg(LegEvent::Connected) => {
                if self.phase == Phase::Answering {
                    self.phase = Phase::Connected;
                    self.event("answered", now, None);
                    self.session.handle(Event::Answered, now);
                    if self.shutting_down {
                        self.session.handle(Event::Shutdown, now);
                    }
                }
            }
            Input::Leg(LegEvent::Key { digit, via }) => {
                if self.phase == Phase::Connected {
                    let via = match via {
                        KeyVia::Rfc4733 => "rfc4733",
                        KeyVia::Info => "info",
                        KeyVia::Script => "script",
                    };
                    self.event("key", now, Some(serde_json::json!({"key": digit.to_string(), "via": via})));
                    self.session.handle(Event::Dtmf(digit), now);
                }
            }
            Input::Leg(LegEvent::DigitsSent) => {
                if let Some(sent @ None) = self.keypad_transfer.as_mut() {
                    *sent = Some(now);
                }
            }
            Input::Leg(LegEvent::HungUp) => {
                self.session.handle(Event::RemoteHangup, now);
                let by = self.ended_by.unwrap_or(EndedBy::Caller);
                self.end(by, None, now);
            }
            Input::Delta { job, text } => {
                if !self.cancelled.contains(&job) {
                    self.session.handle(Event::LlmDelta { job, text }, now);
                }
            }
            Input::Done { job, result } => {
                if self.cancelled.contains(&job) {
                    return;
                }
                if self.understanding_speech.remove(&job) {
                    if let JobResult::Turn(t) = &result {
                        let (intent, confidence, language) = (t.intent.clone(), t.confidence, Some(t.language.clone()));
                        self.record(Entry::Understood { intent, confidence, language });
                    }
                }
                self.session.handle(Event::Done { job, result }, now);
            }
            Input::Draining => {
                if matches!(self.phase, Phase::Ringing { .. }) {
                    self.end(EndedBy::Rejected, Some(LegCommand::Reject { status: 503, reason: "Service Unavailable".into() }), now);
                }
            }
            Input::Shutdown => match self.phase {
                Phase::Ringing { .. } => {
                    self.end(EndedBy::Rejected, Some(LegCommand::Reject { status: 503, reason: "Service Unavailable".into() }), now)
                }
                _ if self.shutting_down => {}
                Phase::Answering => self.shutting_down = true,
                _ => {
                    self.shutting_down = true;
                    self.session.handle(Event::Shutdown, now);
                }
            },
        }
        self.after(now);
    }

    /// Writes the bot's next frame into `out`; `None` while the call is not connected (nothing
    /// is sent then), else whether the bot is audible.
    pub fn fill_frame(&mut self, out: &mut [f32], now: Duration) -> Option<bool> {
        if self.phase != Phase::Connected {
            out.fill(0.0);
            return None;
        }
        self.session.fill_frame(out, now);
        let speaking = self.session.is_speaking();
        self.after(now);
        Some(speaking)
    }

    /// The caller's frame (ignored until the call is connected).
    pub fn audio(&mut self, frame: &[f32], now: Duration) {
        if self.phase == Phase::Connected {
            self.session.handle(Event::Audio(frame), now);
            self.after(now);
        }
    }

    /// The timers: ringing, the keypad transfer's wait, and the media timeout (`media_silent_for`:
    /// how long the leg has received nothing).
    pub fn on_tick(&mut self, media_silent_for: Duration, now: Duration) {
        match self.phase {
            Phase::Ringing { answer_at } if now >= answer_at => self.answer(),
            Phase::Connected => {
                if self.keypad_transfer.flatten().is_some_and(|sent| now.saturating_sub(sent) >= KEYPAD_TRANSFER_WAIT) {
                    self.end(EndedBy::Bot, Some(LegCommand::HangUp), now);
                } else if media_silent_for > self.policy.media_timeout {
                    self.session.handle(Event::RemoteHangup, now);
                    self.end(EndedBy::MediaTimeout, Some(LegCommand::HangUp), now);
                }
            }
            _ => {}
        }
        self.after(now);
    }

    /// Takes what the session asked for.
    fn after(&mut self, now: Duration) {
        while let Some(o) = self.session.poll() {
            match o {
                SessionOutput::Job { id, job } => {
                    if let Job::Understand(CallerInput::Speech { .. }) = &job {
                        self.understanding_speech.insert(id);
                    }
                    self.outputs.push_back(Output::Job { id, job });
                }
                SessionOutput::Cancel(id) => {
                    self.cancelled.insert(id);
                    self.understanding_speech.remove(&id);
                    self.outputs.push_back(Output::Cancel(id));
                }
                SessionOutput::Said { who, text, at } => self.record(Entry::Said { who, text, at }),
                SessionOutput::BargeIn { at } => self.event("barge_in", at, None),
                SessionOutput::Timing(t) => self.record(Entry::Timing(t)),
                SessionOutput::Action(a) => self.on_action(a, now),
            }
        }
    }

    fn on_action(&mut self, action: Action, now: Duration) {
        if self.phase == Phase::Ended || self.keypad_transfer.is_some() {
            return;
        }
        self.event("action", now, serde_json::to_value(&action).ok());
        if let Action::Transfer { reason, .. } = &action {
            let reason = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            self.event("transfer", now, Some(serde_json::json!({"reason": reason})));
        }
        let by = if self.shutting_down { EndedBy::Shutdown } else { EndedBy::Bot };
        self.ended_by = Some(by);
        let transfer = matches!(action, Action::Transfer { .. });
        self.record(Entry::Action { action, at: now });
        if self.phase != Phase::Connected {
            // Not answered yet (stopping before the answer): nothing to say, refuse.
            self.end(by, Some(LegCommand::Reject { status: 503, reason: "Service Unavailable".into() }), now);
            return;
        }
        match (&self.policy.transfer, transfer) {
            (Transfer::Refer(target), true) => {
                let target = target.clone();
                self.end(by, Some(LegCommand::Transfer { target }), now);
            }
            (Transfer::Keypad(digits), true) => {
                let digits = digits.clone();
                self.keypad_transfer = Some(None);
                self.outputs.push_back(Output::Leg(LegCommand::SendDigits(digits)));
            }
            _ => self.end(by, Some(LegCommand::HangUp), now),
        }
    }
}
