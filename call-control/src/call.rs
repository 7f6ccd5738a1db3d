//! One call, sans-IO: the caller's leg joined to the bot's session, and every policy around them
//! (ringing, answering, where a transfer goes, the keypad transfer's timing, the media timeout,
//! stopping for a shutdown, what is recorded). It takes events with the call time `now` and returns
//! what to do ([`Output`]); it never reads a clock or a socket, so whole calls run in memory, faster
//! than real time (see `tests/call_core.rs`), and the live server, the simulator and the tests run
//! the same code ([`crate::driver`]).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use dialogue::manager::Action;

use crate::attendant::{self, Attendant, DeskNote, Handover};
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
    /// To the agents' queue here (warm transfer: hold, an agent hears the summary and accepts,
    /// then caller and agent are bridged through this server).
    Queue,
    /// Call the company's PBX at this address (the summary in X-Summary, User-to-User and
    /// Call-Info) and bridge the caller to it.
    Dial(String),
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
    /// From the queue or the agent's leg, for a caller handed to people.
    Attendant(attendant::Input),
}

/// What a call leaves behind, in the order it happened. The live server writes these to the store
/// and the metrics; the simulator and the tests collect them.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A line of the conversation.
    Said { who: Speaker, text: String, at: Duration },
    /// What the conversation made of the caller's latest line.
    Understood(ivr_store::Understanding),
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
    /// A command for the agent's leg (warm transfer).
    Agent(LegCommand),
    /// A note for the queue.
    Desk(DeskNote),
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
    /// The bot's latest turn waits for digits (an order number, a postcode, a PIN).
    collecting_digits: bool,
    /// A keypad transfer has begun: `Some(when the digits were all out)` once they are.
    keypad_transfer: Option<Option<Duration>>,
    /// A goodbye is playing because the server is stopping.
    shutting_down: bool,
    /// Set when the bot decided the end (its action); the caller's hang-up otherwise.
    ended_by: Option<EndedBy>,
    /// Once the bot handed the caller to people (policy [`Transfer::Queue`]).
    attendant: Option<Attendant>,
    /// The caller's number (caller ID), for callbacks and the agent's summary.
    caller: String,
    /// The language the caller was last understood in.
    language: String,
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
            collecting_digits: false,
            keypad_transfer: None,
            shutting_down: false,
            ended_by: None,
            attendant: None,
            caller: String::new(),
            language: "en".into(),
        };
        if call.policy.ring.is_zero() {
            call.answer();
        } else {
            call.outputs.push_back(Output::Leg(LegCommand::Ring));
        }
        call
    }

    /// The caller's number as caller ID gave it (a SIP URI's user part or a bare number).
    pub fn with_caller(mut self, caller: &str) -> Self {
        self.caller = caller.to_string();
        self
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
        // A caller handed to people who is gone another way (the media stopped, the server is
        // stopping): the queue hears it and an agent's leg is hung up.
        if let Some(a) = self.attendant.as_mut().filter(|a| !a.is_done()) {
            a.handle(attendant::Input::CallerHungUp, now);
            self.from_attendant(now);
        }
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
                        KeyVia::Page => "page",
                        KeyVia::Script => "script",
                    };
                    // A digit keyed while the bot collects an order number, a postcode or a PIN
                    // is kept as a masked key: that a key was pressed, not which.
                    let key = if self.collecting_digits && digit.is_ascii_digit() && self.attendant.is_none() {
                        ivr_privacy::MASKED_KEY.to_string()
                    } else {
                        digit.to_string()
                    };
                    self.event("key", now, Some(serde_json::json!({"key": key, "via": via})));
                    match self.attendant.as_mut() {
                        Some(a) => a.handle(attendant::Input::CallerKey(digit), now),
                        None => self.session.handle(Event::Dtmf(digit), now),
                    }
                }
            }
            Input::Leg(LegEvent::DigitsSent) => {
                if let Some(sent @ None) = self.keypad_transfer.as_mut() {
                    *sent = Some(now);
                }
            }
            Input::Leg(LegEvent::HungUp) => {
                if let Some(a) = self.attendant.as_mut() {
                    a.handle(attendant::Input::CallerHungUp, now);
                    self.ended_by = None;
                }
                self.session.handle(Event::RemoteHangup, now);
                let by = self.ended_by.unwrap_or(EndedBy::Caller);
                self.end(by, None, now);
            }
            Input::Delta { job, text } => {
                if !self.cancelled.contains(&job) {
                    self.session.handle(Event::LlmDelta { job, text }, now);
                }
            }
            Input::Done { job, result } if Attendant::owns(job) => {
                if let Some(a) = self.attendant.as_mut() {
                    a.handle(attendant::Input::Done { job, result }, now);
                }
            }
            Input::Attendant(input) => {
                if let Some(a) = self.attendant.as_mut() {
                    a.handle(input, now);
                } else if let attendant::Input::AgentLeg { .. } = input {
                    // Not handed over (any more): nobody wants this leg.
                    self.outputs.push_back(Output::Agent(LegCommand::HangUp));
                }
            }
            Input::Done { job, result } => {
                if self.cancelled.contains(&job) {
                    return;
                }
                if let JobResult::Turn(t) = &result {
                    // Keys pressed while the bot collects digits are kept masked.
                    self.collecting_digits = t.expects_digits;
                    if self.understanding_speech.remove(&job) {
                        self.language = t.language.clone();
                        self.record(Entry::Understood(ivr_store::Understanding {
                            intent: t.intent.clone(),
                            confidence: t.confidence.map(f64::from),
                            language: Some(t.language.clone()),
                            sentiment: t.sentiment.map(|s| s.name().to_string()),
                            unanswered: Some(t.unanswered),
                        }));
                    }
                    // The order the bot looked up: the caller's next call may be greeted about it.
                    if let Some(order) = t.matter.clone() {
                        self.event("matter", now, Some(serde_json::json!({"order": order})));
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
                    match self.attendant.as_mut() {
                        Some(a) => a.handle(attendant::Input::Shutdown, now),
                        None => self.session.handle(Event::Shutdown, now),
                    }
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
        if let Some(a) = self.attendant.as_mut() {
            let frame: &mut [f32; ivr_audio::FRAME_SAMPLES] = out.try_into().ok()?;
            let sounding = a.fill_caller(frame, now);
            self.after(now);
            return Some(sounding);
        }
        self.session.fill_frame(out, now);
        let speaking = self.session.is_speaking();
        self.after(now);
        Some(speaking)
    }

    /// The agent's next frame (warm transfer): `None` without an agent leg.
    pub fn fill_agent_frame(&mut self, out: &mut [f32; ivr_audio::FRAME_SAMPLES], now: Duration) -> Option<bool> {
        let a = self.attendant.as_mut().filter(|a| a.has_agent_leg())?;
        let sounding = a.fill_agent(out, now);
        self.after(now);
        Some(sounding)
    }

    /// The agent's frame.
    pub fn agent_audio(&mut self, frame: &[f32; ivr_audio::FRAME_SAMPLES]) {
        if let Some(a) = self.attendant.as_mut() {
            a.agent_audio(frame);
        }
    }

    /// Whether an agent's leg should be driven (it rings or is up).
    pub fn has_agent_leg(&self) -> bool {
        self.attendant.as_ref().is_some_and(|a| a.has_agent_leg())
    }

    /// The caller's frame (ignored until the call is connected). Once handed over, the bot no
    /// longer hears the caller; the agent does when bridged.
    pub fn audio(&mut self, frame: &[f32], now: Duration) {
        if let Some(a) = self.attendant.as_mut() {
            if let Ok(frame) = frame.try_into() {
                a.caller_audio(frame);
            }
            return;
        }
        if self.phase == Phase::Connected {
            self.session.handle(Event::Audio(frame), now);
            self.after(now);
        }
    }

    /// The timers: ringing, the keypad transfer's wait, and the media timeout (`media_silent_for`:
    /// how long the leg has received nothing).
    pub fn on_tick(&mut self, media_silent_for: Duration, now: Duration) {
        if let Some(a) = self.attendant.as_mut() {
            a.on_tick(now);
        }
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
        self.from_attendant(now);
    }

    /// Takes what the attendant asked for.
    fn from_attendant(&mut self, now: Duration) {
        while let Some(o) = self.attendant.as_mut().and_then(Attendant::poll) {
            match o {
                attendant::Out::Job { id, job } => self.outputs.push_back(Output::Job { id, job }),
                attendant::Out::Caller(LegCommand::HangUp) => {
                    let by = if self.shutting_down { EndedBy::Shutdown } else { EndedBy::Bot };
                    self.end(by, Some(LegCommand::HangUp), now)
                }
                attendant::Out::Caller(c) => self.outputs.push_back(Output::Leg(c)),
                attendant::Out::Agent(c) => self.outputs.push_back(Output::Agent(c)),
                attendant::Out::Desk(n) => self.outputs.push_back(Output::Desk(n)),
                attendant::Out::Event { kind, detail } => self.event(kind, now, detail),
                attendant::Out::Said(text) => self.record(Entry::Said { who: Speaker::Bot, text, at: now }),
            }
        }
    }

    fn on_action(&mut self, action: Action, now: Duration) {
        if self.phase == Phase::Ended || self.keypad_transfer.is_some() {
            return;
        }
        self.event("action", now, serde_json::to_value(&action).ok());
        if let Action::Transfer { reason, .. } = &action {
            let reason = reason.name();
            self.event("transfer", now, Some(serde_json::json!({"reason": reason})));
        }
        let by = if self.shutting_down { EndedBy::Shutdown } else { EndedBy::Bot };
        let transfer = matches!(action, Action::Transfer { .. });
        if let (Transfer::Queue | Transfer::Dial(_), Action::Transfer { reason, priority, summary }, Phase::Connected, false) =
            (&self.policy.transfer, &action, self.phase, self.shutting_down)
        {
            let handover = Handover {
                priority: priority.rank(),
                needs: crate::acd::Needs { language: Some(self.language.clone()), topic: topic_of(*reason).map(str::to_string) },
                summary: summary.screen.clone(),
                caller: self.caller.clone(),
                language: self.language.clone(),
                reason: reason.name(),
            };
            self.record(Entry::Action { action, at: now });
            self.attendant = Some(match &self.policy.transfer {
                Transfer::Dial(target) => Attendant::direct(handover, target, now),
                _ => Attendant::new(handover),
            });
            self.after(now);
            return;
        }
        self.ended_by = Some(by);
        let summary = match &action {
            Action::Transfer { summary, .. } => Some(summary.screen.clone()),
            Action::Hangup => None,
        };
        self.record(Entry::Action { action, at: now });
        if self.phase != Phase::Connected {
            // Not answered yet (stopping before the answer): nothing to say, refuse.
            self.end(by, Some(LegCommand::Reject { status: 503, reason: "Service Unavailable".into() }), now);
            return;
        }
        match (&self.policy.transfer, transfer) {
            (Transfer::Refer(target), true) => {
                // The summary travels in the REFER's own headers (for a PBX that passes them to
                // its agents); the Refer-To stays a plain URI every phone can dial.
                let headers = summary
                    .map(|s| crate::handoff::summary_headers(&s, None).into_iter().map(|(n, v)| (n.as_str().to_string(), v)).collect())
                    .unwrap_or_default();
                self.end(by, Some(LegCommand::Transfer { target: target.clone(), headers }), now);
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

/// The skill a transfer reason needs besides the language (the queue's topic).
fn topic_of(reason: dialogue::policy::TransferReason) -> Option<&'static str> {
    use dialogue::policy::TransferReason as R;
    match reason {
        R::DamagedDelivery | R::MissingItem | R::NeedsAgentAction => Some("orders"),
        R::BillingDispute => Some("billing"),
        R::Complaint | R::Anger => Some("complaints"),
        R::Legal => Some("legal"),
        _ => None,
    }
}
