//! What happens to a caller after the bot hands them to people, sans-IO: waiting in the queue
//! with hold audio and announcements, an agent's phone ringing, the agent hearing the summary
//! (the caller hears hold audio, and their microphone reaches neither the agent nor the bot),
//! the agent's key 1 (accept: caller and agent are bridged) or 2 (decline: back to the queue),
//! and, at the end, the caller's keypad rating; or a callback instead of waiting. When nobody
//! can take the call (after hours, nobody signed in) the caller is offered a callback or a
//! voicemail, recorded here and kept by the surroundings before the caller is thanked.
//!
//! The [`Call`](crate::call::Call) owns one once the bot's transfer action fires; the queue
//! ([`crate::acd`]) decides who is offered the call and tells it through [`Input`]s; what it asks
//! for comes back as [`Out`]s. Like the rest of call control it never reads a clock or a socket.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ivr_audio::FRAME_SAMPLES;
use sip_bridge::leg::{LegCommand, LegEvent};
use voice_pipeline::session::playback::Playback;
use voice_pipeline::session::{Job, JobId, JobResult};

use crate::acd::{Closed, CompletedBy, Needs};
use crate::hold::HoldMusic;

/// The name the PBX's leg goes by (it is not one of our agents).
pub const PBX: &str = "pbx";

/// The attendant's synthesis jobs are numbered from here, apart from the session's.
pub const JOB_BASE: JobId = 1 << 48;

/// The agent hears the key instructions again after this long without a key.
const BRIEF_REPEAT: Duration = Duration::from_secs(15);
/// After this many repeats without a key the agent is taken to have declined.
const BRIEF_REPEATS: u32 = 3;
/// How long the caller has to key a rating, or to answer the callback offer.
const KEY_WAIT: Duration = Duration::from_secs(15);
/// The longest voicemail; the recording stops there.
pub const VOICEMAIL_MAX: Duration = Duration::from_secs(120);
/// A voicemail shorter than this (a hang-up right after the tone) is not kept.
const VOICEMAIL_MIN: Duration = Duration::from_millis(500);

/// What the attendant is given when the bot hands over.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    /// Higher goes first (1: an upset caller).
    pub priority: u8,
    pub needs: Needs,
    /// The agent's note (goal, what was tried, verified or not, key data).
    pub summary: String,
    /// The caller's number (from caller ID), if known.
    pub caller: String,
    /// The caller's language ("en", "zh").
    pub language: String,
    /// Why the bot handed over.
    pub reason: String,
}

/// What the queue is told.
#[derive(Debug, Clone, PartialEq)]
pub enum DeskNote {
    /// The caller joins the queue; the summary, number and reason are for the agents' console.
    Enter { priority: u8, needs: Needs, summary: String, caller: String, reason: String },
    AgentAnswered { agent: String },
    Accepted { agent: String },
    Declined { agent: String },
    /// The agent's phone refused or could not be reached.
    Unreachable { agent: String },
    /// The caller left the queue with this key (1: callback).
    CallerKey(char),
    /// The caller hung up before an agent took the call.
    CallerLeft,
    Completed { by: CompletedBy },
    /// A callback to keep: written to the store before the caller is told it is.
    Callback { number: String, reason: &'static str },
    /// A voicemail to keep (16 kHz, the caller's side): stored before the caller is thanked.
    Voicemail { audio: Arc<[f32]>, number: String, reason: &'static str },
    /// No queue here: call the company's PBX at `target` (with the summary) and bridge to it.
    Dial { target: String, priority: u8, summary: String, caller: String, reason: String },
}

/// What the queue and the agent's leg tell the attendant.
#[derive(Debug, Clone)]
pub enum Input {
    /// The caller's place in the queue and the expected wait.
    Announce { position: usize, expected_wait: Duration },
    /// The queue offers the call to this agent: their leg is on its way.
    Offered { agent: String },
    /// The queue took the offer back (ring timeout, another agent, the agent's status).
    Withdrawn { agent: String },
    /// The agent's leg exists now (it is ringing).
    AgentLeg { agent: String },
    Agent(LegEvent),
    /// The agent accepted or declined on the console (as keys 1 and 2 on the phone).
    Decision { agent: String, accept: bool },
    /// The caller waited the longest allowed.
    WaitOver,
    /// The caller could not join the queue: nobody can take the call now.
    Closed(Closed),
    /// The agent passed the call to another agent: their leg is hung up, the caller waits again.
    TransferTo { agent: String },
    CallerKey(char),
    CallerHungUp,
    /// The server is stopping: the caller hears a goodbye; an agent's leg is hung up.
    Shutdown,
    Done { job: JobId, result: JobResult },
}

/// What the attendant asks for.
#[derive(Debug, Clone)]
pub enum Out {
    Job { id: JobId, job: Job },
    Caller(LegCommand),
    Agent(LegCommand),
    Desk(DeskNote),
    /// Something for the call's record: `queued`, `agent_answered`, `bridged`, `declined`,
    /// `csat`, `callback`, `wait_over`.
    Event { kind: &'static str, detail: Option<serde_json::Value> },
    /// A line the caller heard (for the transcript).
    Said(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// In the queue: hold audio and announcements.
    Waiting,
    /// The agent heard the summary (or the phone rings); waiting for their key.
    Offered,
    Bridged { since: Duration },
    /// The longest wait is over: key 1 for a callback.
    CallbackOffer { since: Duration },
    /// Nobody can take the call: key 1 for a callback, 2 for a voicemail.
    ClosedOffer { since: Duration },
    /// Recording a voicemail (from `started`, once the prompt and the tone have played) until
    /// the hash key, a hang-up or [`VOICEMAIL_MAX`].
    Voicemail { started: Option<Duration> },
    /// Confirming the number: key 1 for caller ID, or digits then #.
    CallbackNumber { keyed: String },
    /// The agent hung up: a rating from 1 to 5.
    Rating { since: Duration },
    /// Last words playing; then the caller is hung up on.
    Closing,
    Done,
}

/// The agent being offered or connected to this call.
#[derive(Debug, Clone, PartialEq)]
struct AgentSide {
    name: String,
    /// Their leg has been handed over (it rings or is up).
    leg: bool,
    /// Their phone answered: they hear the summary.
    answered: Option<Duration>,
    briefs: u32,
    brief_at: Duration,
}

pub struct Attendant {
    handover: Handover,
    stage: Stage,
    agent: Option<AgentSide>,
    to_caller: Playback,
    to_agent: Playback,
    hold: HoldMusic,
    /// Why a callback would be asked for now (the caller pressed 1, or the wait was over).
    callback_reason: &'static str,
    /// Handing over to a PBX: its address (no queue, no briefing: bridged when it answers).
    direct: Option<String>,
    /// The voicemail being recorded (16 kHz).
    message: Vec<f32>,
    next_job: JobId,
    outputs: VecDeque<Out>,
    /// The latest frame from each side (bridged audio crosses over).
    from_caller: [f32; FRAME_SAMPLES],
    from_agent: [f32; FRAME_SAMPLES],
}

impl Attendant {
    /// The bot has just handed over: the caller joins the queue.
    pub fn new(handover: Handover) -> Self {
        let mut a = Self {
            stage: Stage::Waiting,
            agent: None,
            to_caller: Playback::default(),
            to_agent: Playback::default(),
            hold: HoldMusic::default(),
            callback_reason: "queue_key",
            direct: None,
            message: Vec::new(),
            next_job: JOB_BASE,
            outputs: VecDeque::new(),
            from_caller: [0.0; FRAME_SAMPLES],
            from_agent: [0.0; FRAME_SAMPLES],
            handover,
        };
        let h = &a.handover;
        let enter = DeskNote::Enter { priority: h.priority, needs: h.needs.clone(), summary: h.summary.clone(), caller: h.caller.clone(), reason: h.reason.clone() };
        let priority = h.priority;
        a.out(Out::Desk(enter));
        let detail = serde_json::json!({"priority": priority, "reason": a.handover.reason});
        a.out(Out::Event { kind: "queued", detail: Some(detail) });
        a
    }

    /// The bot has just handed over to the company's PBX at `target`: it is called at once (the
    /// caller hears hold audio meanwhile) and the caller is bridged to it when it answers.
    pub fn direct(handover: Handover, target: &str, now: Duration) -> Self {
        let mut a = Self::new(handover);
        a.outputs.clear();
        a.direct = Some(target.to_string());
        a.agent = Some(AgentSide { name: PBX.into(), leg: false, answered: None, briefs: 0, brief_at: now });
        a.stage = Stage::Offered;
        let h = &a.handover;
        let dial = DeskNote::Dial { target: target.to_string(), priority: h.priority, summary: h.summary.clone(), caller: h.caller.clone(), reason: h.reason.clone() };
        a.out(Out::Desk(dial));
        a.out(Out::Event { kind: "handoff", detail: Some(serde_json::json!({"target": target})) });
        a
    }

    pub fn poll(&mut self) -> Option<Out> {
        self.outputs.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Whether caller and agent are talking.
    pub fn is_bridged(&self) -> bool {
        matches!(self.stage, Stage::Bridged { .. })
    }

    /// Whether this job is the attendant's.
    pub fn owns(job: JobId) -> bool {
        job >= JOB_BASE
    }

    fn out(&mut self, o: Out) {
        self.outputs.push_back(o);
    }

    fn is_zh(&self) -> bool {
        self.handover.language == "zh"
    }

    fn synth(&mut self, text: &str) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        let job = Job::Synthesize { text: text.to_string(), language: self.handover.language.clone() };
        self.out(Out::Job { id, job });
        id
    }

    fn say_to_caller(&mut self, text: &str) {
        let id = self.synth(text);
        self.to_caller.reserve(id, text);
        self.out(Out::Said(text.to_string()));
    }

    /// A fixed sentence to the caller, in their language.
    fn say_fixed(&mut self, en: &str, zh: &str) {
        let text = if self.is_zh() { zh } else { en };
        self.say_to_caller(text);
    }

    fn say_to_agent(&mut self, text: &str) {
        let id = self.synth(text);
        self.to_agent.reserve(id, text);
    }

    /// A number as it is read out: digit by digit ("+4930111222" -> "4 9 3 0 1 1 1 2 2 2").
    fn spoken_number(number: &str) -> String {
        number.chars().filter(|c| c.is_ascii_digit()).map(|c| c.to_string()).collect::<Vec<_>>().join(" ")
    }

    /// What the agent hears on answering: how to accept first (they may key at any time), then
    /// the summary, then how to accept again.
    fn brief(&self) -> String {
        format!("Transferred call. Press 1 to accept, or 2 to decline. {} Press 1 to accept, or 2 to decline.", speakable(&self.handover.summary))
    }

    pub fn handle(&mut self, input: Input, now: Duration) {
        if self.stage == Stage::Done {
            return;
        }
        match input {
            Input::Announce { position, expected_wait } => {
                // Never over another announcement, nor once an agent has the call.
                if self.stage == Stage::Waiting && self.to_caller.is_empty() {
                    let minutes = expected_wait.as_secs().div_ceil(60).max(1);
                    let text = if self.is_zh() {
                        format!("您前面还有{}位来电者，预计等待约{minutes}分钟。按1可以请我们回电。", position.saturating_sub(1))
                    } else {
                        let wait = if minutes == 1 { "about a minute".to_string() } else { format!("about {minutes} minutes") };
                        format!("You are number {position} in the queue. The expected wait is {wait}. To be called back instead, press 1.")
                    };
                    self.say_to_caller(&text);
                }
            }
            Input::Offered { agent } => {
                if matches!(self.stage, Stage::Waiting | Stage::Offered) && self.agent.is_none() {
                    self.agent = Some(AgentSide { name: agent, leg: false, answered: None, briefs: 0, brief_at: now });
                    self.stage = Stage::Offered;
                }
            }
            Input::AgentLeg { agent } => match self.agent.as_mut() {
                Some(a) if a.name == agent && !a.leg => a.leg = true,
                // A leg for an offer that is over (withdrawn meanwhile): hang it up at once.
                _ => self.out(Out::Agent(LegCommand::HangUp)),
            },
            Input::Withdrawn { agent } => {
                if self.agent.as_ref().is_some_and(|a| a.name == agent) && self.stage == Stage::Offered {
                    self.drop_agent();
                    self.stage = Stage::Waiting;
                }
            }
            Input::Agent(e) => self.on_agent(e, now),
            Input::Decision { agent, accept } => {
                if self.agent.as_ref().is_some_and(|a| a.name == agent) {
                    let digit = if accept { '1' } else { '2' };
                    self.on_agent(LegEvent::Key { digit, via: sip_bridge::leg::KeyVia::Script }, now);
                }
            }
            Input::WaitOver => {
                if matches!(self.stage, Stage::Waiting | Stage::Offered) {
                    self.drop_agent();
                    self.to_caller.flush();
                    self.out(Out::Event { kind: "wait_over", detail: None });
                    self.say_fixed("I'm sorry, all our colleagues are still busy. To be called back as soon as someone is free, press 1.", "很抱歉，我们的同事现在都很忙。如需回电，请按1。");
                    self.callback_reason = "wait_over";
                    self.stage = Stage::CallbackOffer { since: now };
                }
            }
            Input::Closed(why) => {
                if self.stage == Stage::Waiting && self.agent.is_none() {
                    self.to_caller.flush();
                    self.callback_reason = why.as_str();
                    self.out(Out::Event { kind: "closed", detail: Some(serde_json::json!({"why": why.as_str()})) });
                    match why {
                        Closed::AfterHours => self.say_fixed(
                            "I'm sorry, our colleagues are not available at this hour.",
                            "很抱歉，现在不是人工服务时间。",
                        ),
                        Closed::NoAgents => self.say_fixed("I'm sorry, no colleague is available right now.", "很抱歉，现在没有同事可以接听。"),
                    }
                    self.say_fixed(
                        "To be called back, press 1. To leave a message, press 2.",
                        "如需回电，请按1。如需留言，请按2。",
                    );
                    self.stage = Stage::ClosedOffer { since: now };
                }
            }
            Input::TransferTo { agent } => {
                if self.is_bridged() {
                    self.drop_agent();
                    self.out(Out::Event { kind: "agent_transfer", detail: Some(serde_json::json!({"to": agent})) });
                    self.say_fixed("Please hold while I pass you to a colleague.", "请稍候，我为您转接另一位同事。");
                    self.stage = Stage::Waiting;
                }
            }
            Input::CallerKey(k) => self.on_caller_key(k),
            Input::Shutdown => {
                if let Stage::Voicemail { started: Some(_) } = self.stage {
                    self.keep_voicemail();
                }
                match self.stage {
                    Stage::Bridged { .. } => self.out(Out::Desk(DeskNote::Completed { by: CompletedBy::Caller })),
                    Stage::Waiting | Stage::Offered => self.out(Out::Desk(DeskNote::CallerLeft)),
                    Stage::Closing | Stage::Done => return,
                    _ => {}
                }
                self.drop_agent();
                self.to_caller.flush();
                self.say_fixed("I'm sorry, we have to end this call now. Please call again later. Goodbye.", "很抱歉，我们现在必须结束通话。请稍后再拨。再见。");
                self.stage = Stage::Closing;
            }
            Input::CallerHungUp => {
                if let Stage::Voicemail { started: Some(_) } = self.stage {
                    self.keep_voicemail();
                }
                match self.stage {
                    Stage::Bridged { .. } => self.out(Out::Desk(DeskNote::Completed { by: CompletedBy::Caller })),
                    Stage::Waiting | Stage::Offered => self.out(Out::Desk(DeskNote::CallerLeft)),
                    _ => {}
                }
                self.drop_agent();
                self.stage = Stage::Done;
            }
            Input::Done { job, result } => {
                let playback = if self.to_agent.has(job) { &mut self.to_agent } else { &mut self.to_caller };
                match result {
                    JobResult::Speech(audio) if !audio.is_empty() => {
                        playback.fill_slot(job, audio);
                    }
                    _ => playback.drop_slot(job),
                }
            }
        }
    }

    /// Hangs up the agent's leg if there is one, and forgets the agent.
    fn drop_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            if a.leg {
                self.out(Out::Agent(LegCommand::HangUp));
            }
        }
        self.to_agent.flush();
    }

    fn on_agent(&mut self, e: LegEvent, now: Duration) {
        let Some(agent) = self.agent.clone() else { return };
        match e {
            LegEvent::Connected if self.direct.is_some() && self.stage == Stage::Offered => {
                if let Some(a) = self.agent.as_mut() {
                    a.answered = Some(now);
                }
                self.to_caller.flush();
                self.stage = Stage::Bridged { since: now };
                self.out(Out::Event { kind: "bridged", detail: Some(serde_json::json!({"target": self.direct})) });
            }
            LegEvent::Connected if agent.answered.is_none() && self.stage == Stage::Offered => {
                if let Some(a) = self.agent.as_mut() {
                    a.answered = Some(now);
                    a.brief_at = now;
                    a.briefs = 1;
                }
                self.out(Out::Desk(DeskNote::AgentAnswered { agent: agent.name.clone() }));
                self.out(Out::Event { kind: "agent_answered", detail: Some(serde_json::json!({"agent": agent.name})) });
                let brief = self.brief();
                self.say_to_agent(&brief);
            }
            LegEvent::Key { digit: '1', .. } if agent.answered.is_some() && self.stage == Stage::Offered => {
                self.to_agent.flush();
                self.to_caller.flush();
                self.stage = Stage::Bridged { since: now };
                self.out(Out::Desk(DeskNote::Accepted { agent: agent.name.clone() }));
                self.out(Out::Event { kind: "bridged", detail: Some(serde_json::json!({"agent": agent.name})) });
            }
            LegEvent::Key { digit: '2', .. } if agent.answered.is_some() && self.stage == Stage::Offered => {
                self.out(Out::Desk(DeskNote::Declined { agent: agent.name.clone() }));
                self.out(Out::Event { kind: "declined", detail: Some(serde_json::json!({"agent": agent.name})) });
                self.drop_agent();
                self.stage = Stage::Waiting;
            }
            LegEvent::HungUp => {
                if let Some(a) = self.agent.as_mut() {
                    a.leg = false;
                }
                match self.stage {
                    Stage::Bridged { .. } => {
                        self.agent = None;
                        self.out(Out::Desk(DeskNote::Completed { by: CompletedBy::Agent }));
                        self.say_fixed("Thank you for calling. Please rate this call from 1 to 5 on your keypad, 5 being the best.", "感谢您的耐心。请用按键为本次服务打分，1到5分，5分为非常满意。");
                        self.stage = Stage::Rating { since: now };
                    }
                    Stage::Offered if self.direct.is_some() => {
                        // The PBX refused or could not be reached: nobody can take the call now.
                        self.agent = None;
                        self.out(Out::Event { kind: "handoff_failed", detail: None });
                        self.say_fixed("I'm sorry, I could not reach a colleague right now. Please call again later. Goodbye.", "很抱歉，现在无法为您转接同事。请稍后再拨。再见。");
                        self.stage = Stage::Closing;
                    }
                    Stage::Offered => {
                        // Refused or unreachable before answering; after answering, a hang-up
                        // without a key is a decline.
                        let note = if agent.answered.is_some() { DeskNote::Declined { agent: agent.name } } else { DeskNote::Unreachable { agent: agent.name } };
                        self.out(Out::Desk(note));
                        self.agent = None;
                        self.to_agent.flush();
                        self.stage = Stage::Waiting;
                    }
                    _ => self.agent = None,
                }
            }
            _ => {}
        }
    }

    fn on_caller_key(&mut self, k: char) {
        match &mut self.stage {
            Stage::ClosedOffer { .. } if k == '1' => self.ask_number(),
            Stage::ClosedOffer { .. } if k == '2' => {
                self.to_caller.flush();
                self.say_fixed(
                    "Please leave your message after the tone. When you are done, press the hash key or hang up.",
                    "请在提示音后留言。留言结束请按井号键或挂机。",
                );
                self.tone();
                self.stage = Stage::Voicemail { started: None };
                self.out(Out::Event { kind: "voicemail_started", detail: None });
            }
            Stage::Voicemail { started: Some(_) } if k == '#' => self.end_voicemail(),
            Stage::Waiting | Stage::Offered if k == '1' && self.direct.is_none() => {
                self.out(Out::Desk(DeskNote::CallerKey('1')));
                self.drop_agent();
                self.ask_number();
            }
            Stage::CallbackOffer { .. } if k == '1' => self.ask_number(),
            Stage::CallbackNumber { keyed } => match k {
                // 1 (or the hash key alone) confirms the caller-ID number.
                '1' | '#' if keyed.is_empty() && self.handover.caller.chars().any(|c| c.is_ascii_digit()) => {
                    let number = self.handover.caller.clone();
                    self.callback(number);
                }
                '0'..='9' => keyed.push(k),
                '*' => keyed.clear(),
                '#' if keyed.len() >= 3 => {
                    let number = std::mem::take(keyed);
                    self.callback(number);
                }
                _ => {}
            },
            Stage::Rating { .. } if ('1'..='5').contains(&k) => {
                let rating = k.to_digit(10).unwrap_or(0);
                self.out(Out::Event { kind: "csat", detail: Some(serde_json::json!({"rating": rating})) });
                self.say_fixed("Thank you for your rating. Goodbye.", "谢谢您的评价，再见。");
                self.stage = Stage::Closing;
            }
            _ => {}
        }
    }

    /// The tone before a voicemail: 0.4 s of 1 kHz.
    fn tone(&mut self) {
        let id = self.next_job;
        self.next_job += 1;
        let rate = ivr_audio::RATE as f32;
        let tone: Vec<f32> = (0..(rate * 0.4) as usize).map(|i| 0.3 * (std::f32::consts::TAU * 1000.0 * i as f32 / rate).sin()).collect();
        self.to_caller.reserve(id, "");
        self.to_caller.fill_slot(id, tone.into());
    }

    /// The message is over (hash key or the longest length): kept, then the caller is thanked.
    fn end_voicemail(&mut self) {
        let kept = self.keep_voicemail();
        self.to_caller.flush();
        if kept {
            self.say_fixed("Thank you, your message has been recorded. We will call you back as soon as possible. Goodbye.", "谢谢，您的留言已录下。我们会尽快回电。再见。");
        } else {
            self.say_fixed("I did not hear a message. Please call again later. Goodbye.", "没有听到留言。请稍后再拨。再见。");
        }
        self.stage = Stage::Closing;
    }

    /// Hands the recorded message to the surroundings (which store it before anything else);
    /// `false` if it was too short to keep.
    fn keep_voicemail(&mut self) -> bool {
        let message = std::mem::take(&mut self.message);
        let seconds = message.len() as f64 / f64::from(ivr_audio::RATE);
        if seconds < VOICEMAIL_MIN.as_secs_f64() {
            return false;
        }
        let (number, reason) = (self.handover.caller.clone(), self.callback_reason);
        self.out(Out::Desk(DeskNote::Voicemail { audio: message.into(), number, reason }));
        self.out(Out::Event { kind: "voicemail", detail: Some(serde_json::json!({"secs": (seconds * 10.0).round() / 10.0, "reason": reason})) });
        true
    }

    fn ask_number(&mut self) {
        self.to_caller.flush();
        let caller = self.handover.caller.clone();
        let text = if caller.chars().any(|c| c.is_ascii_digit()) {
            if self.is_zh() {
                format!("我们将回电到 {}。确认请按1，或输入其他号码并按井号键。", Self::spoken_number(&caller))
            } else {
                format!("We will call you back at {}. Press 1 to confirm, or key in another number followed by the hash key.", Self::spoken_number(&caller))
            }
        } else if self.is_zh() {
            "请输入回电号码，并按井号键结束。".to_string()
        } else {
            "Please key in the number to call you back on, followed by the hash key.".to_string()
        };
        self.say_to_caller(&text);
        self.stage = Stage::CallbackNumber { keyed: String::new() };
    }

    fn callback(&mut self, number: String) {
        let reason = self.callback_reason;
        self.out(Out::Desk(DeskNote::Callback { number: number.clone(), reason }));
        self.out(Out::Event { kind: "callback", detail: Some(serde_json::json!({"number": number, "reason": reason})) });
        let text = if self.is_zh() {
            format!("好的，我们会尽快回电到 {}。再见。", Self::spoken_number(&number))
        } else {
            format!("Thank you. We will call you back at {} as soon as possible. Goodbye.", Self::spoken_number(&number))
        };
        self.to_caller.flush();
        self.say_to_caller(&text);
        self.stage = Stage::Closing;
    }

    /// The timers: the agent's brief repeats, the caller's key waits.
    pub fn on_tick(&mut self, now: Duration) {
        match self.stage {
            Stage::Offered => {
                let Some(a) = self.agent.clone() else { return };
                if a.answered.is_some() && self.to_agent.is_empty() && now >= a.brief_at + BRIEF_REPEAT {
                    if a.briefs >= BRIEF_REPEATS {
                        self.out(Out::Desk(DeskNote::Declined { agent: a.name }));
                        self.drop_agent();
                        self.stage = Stage::Waiting;
                    } else {
                        if let Some(a) = self.agent.as_mut() {
                            a.briefs += 1;
                            a.brief_at = now;
                        }
                        self.say_to_agent("Press 1 to accept the call, or 2 to decline.");
                    }
                }
            }
            Stage::Voicemail { started: Some(started) } if now >= started + VOICEMAIL_MAX => self.end_voicemail(),
            Stage::Rating { since } | Stage::CallbackOffer { since } | Stage::ClosedOffer { since } if self.to_caller.is_empty() && now >= since + KEY_WAIT => {
                self.say_fixed("Thank you for calling. Goodbye.", "感谢您的来电，再见。");
                self.stage = Stage::Closing;
            }
            _ => {}
        }
    }

    /// The caller's next frame: the agent when bridged; otherwise prompts, over hold audio
    /// while waiting (ducked while a prompt plays).
    pub fn fill_caller(&mut self, out: &mut [f32; FRAME_SAMPLES], now: Duration) -> bool {
        if self.is_bridged() {
            out.copy_from_slice(&self.from_agent);
            return true;
        }
        let filled = self.to_caller.fill(out);
        if self.stage == (Stage::Voicemail { started: None }) && filled.samples == 0 && self.to_caller.is_empty() {
            // The prompt and the tone are over: the message starts.
            self.stage = Stage::Voicemail { started: Some(now) };
        }
        if filled.samples == 0 && matches!(self.stage, Stage::Waiting | Stage::Offered) {
            self.hold.fill(out);
        }
        if self.stage == Stage::Closing && self.to_caller.is_empty() {
            self.out(Out::Caller(LegCommand::HangUp));
            self.stage = Stage::Done;
        }
        filled.samples > 0
    }

    /// The agent's next frame: the caller when bridged, the summary while briefed.
    pub fn fill_agent(&mut self, out: &mut [f32; FRAME_SAMPLES], _now: Duration) -> bool {
        if self.is_bridged() {
            out.copy_from_slice(&self.from_caller);
            return true;
        }
        self.to_agent.fill(out).samples > 0
    }

    /// The caller's frame: heard by the agent once bridged, by no one before.
    pub fn caller_audio(&mut self, frame: &[f32; FRAME_SAMPLES]) {
        self.from_caller = *frame;
        if let Stage::Voicemail { started: Some(_) } = self.stage {
            self.message.extend_from_slice(frame);
        }
    }

    /// The agent's frame: heard by the caller once bridged.
    pub fn agent_audio(&mut self, frame: &[f32; FRAME_SAMPLES]) {
        self.from_agent = *frame;
    }

    /// Whether an agent's leg is up or ringing.
    pub fn has_agent_leg(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| a.leg)
    }
}

/// Text for the voice: runs of five or more digits (phone and order numbers) are read digit by
/// digit, not as one large number; a leading '+' is dropped.
fn speakable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = if chars[i] == '+' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) { i + 1 } else { i };
        let run = chars[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run >= 5 {
            let digits: Vec<String> = chars[start..start + run].iter().map(|c| c.to_string()).collect();
            out.push_str(&digits.join(" "));
            i = start + run;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_numbers_are_read_digit_by_digit() {
        assert_eq!(super::speakable("Data: caller +4930111222, order 41234567, 3 items."), "Data: caller 4 9 3 0 1 1 1 2 2 2, order 4 1 2 3 4 5 6 7, 3 items.");
    }
}
