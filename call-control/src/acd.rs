//! The queue of callers waiting for a person and the agents who take them (an ACD), sans-IO.
//!
//! As in mature ACDs (Asterisk's app_queue, FreeSWITCH's mod_callcenter), an agent has two axes: a
//! *status* the agent sets (signed out, available, on break) and a *state* the system sets (idle,
//! offered a call, on a call, wrapping up). A caller waits in order of priority, then arrival; a
//! free agent with the caller's skills is offered the call (the longest idle first, in turn, or all
//! at once); an offer not answered within the ring timeout goes to the next agent, and an agent who
//! misses several offers in a row is put on break. Callers hear their position and expected wait at
//! intervals, and leave after the longest wait.
//!
//! It takes events with the time `now` and returns what to do ([`Output`]); it never reads a clock
//! or touches a call, so whole queues replay in memory (`tests/acd.rs`). The live server keeps one,
//! shared by the calls, and carries out its offers (an INVITE to the agent's phone).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::attendant::DeskNote;

/// A call in the queue, by the id its call control knows it by.
pub type CallKey = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The agent idle the longest gets the call (the fairest; the default).
    LongestIdle,
    /// Agents in turn, by name, after the one offered last.
    RoundRobin,
    /// Every free agent with the skills rings at once; the first to answer takes the call.
    RingAll,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcdConfig {
    pub strategy: Strategy,
    /// An offer not answered within this long goes to the next agent.
    pub ring_timeout_secs: u32,
    /// An agent who misses this many offers in a row is put on break.
    pub max_misses: u32,
    /// After a call the agent has this long before the next offer.
    pub wrap_up_secs: u32,
    /// A caller waits at most this long; then the bot takes the call back and offers a callback.
    pub max_wait_secs: u32,
    /// Position and expected wait are announced on entering and then this often.
    pub announce_every_secs: u32,
    /// The expected handling time before any call has been measured.
    pub handle_time_secs: u32,
    /// An agent who declined a call is not offered the same call again for this long (another
    /// agent gets the chance first).
    pub decline_cooldown_secs: u32,
    /// An agent who missed an offer is not offered the same call again for this long.
    pub retry_secs: u32,
    /// The hotline's opening hours (a tenant's `hours.toml`): outside them a caller is offered a
    /// callback or a voicemail instead of the queue. Unset: open whenever an agent is signed in.
    /// (Read by the live queue, which knows the clock; the queue itself is only told.)
    pub hours: Option<std::path::PathBuf>,
}

impl Default for AcdConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            ring_timeout_secs: 20,
            max_misses: 3,
            wrap_up_secs: 10,
            max_wait_secs: 300,
            announce_every_secs: 30,
            handle_time_secs: 180,
            decline_cooldown_secs: 30,
            retry_secs: 5,
            hours: None,
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// What the agent has said about working now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    SignedOut,
    Available,
    OnBreak,
}

/// What the agent is doing, as the system sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "call")]
pub enum State {
    Idle,
    /// Being offered this call: the phone rings, or the agent hears the summary.
    Offered(CallKey),
    OnCall(CallKey),
    WrapUp,
}

/// The skills a call needs: a language and a topic (from the intent); either may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Needs {
    pub language: Option<String>,
    pub topic: Option<String>,
}

/// How a call with an agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    Caller,
    Agent,
}

/// Why an offer was taken back from an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withdrawn {
    /// The caller hung up (or left the queue).
    CallerLeft,
    /// Not answered within the ring timeout.
    RingTimeout,
    /// Another agent took the call (ring-all).
    TakenElsewhere,
    /// The caller waited the longest allowed.
    WaitOver,
    /// The agent signed out or went on break.
    AgentLeft,
    /// The agent declined the call.
    Declined,
}

/// Queue events in the manner of Asterisk's queue_log: what the reports and the audit read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum QueueEventKind {
    /// `queue`: the topic the caller needs (orders, billing, ...) or `general`: the reports count
    /// each topic as a queue of its own, as a call centre with one queue per topic would.
    Enter { priority: u8, position: usize, queue: String },
    Offered,
    /// The agent did not answer within the ring timeout, or the phone refused.
    NoAnswer { ring_secs: f64 },
    /// The agent heard the summary and declined.
    Declined,
    Connect { hold_secs: f64 },
    Complete { by: CompletedBy, hold_secs: f64, talk_secs: f64 },
    /// The caller hung up while waiting (or while an agent was offered the call).
    Abandon { position: usize, entry_position: usize, wait_secs: f64 },
    /// The caller left by pressing a key (1: a callback instead of waiting).
    ExitWithKey { key: char, position: usize, wait_secs: f64 },
    ExitWithTimeout { position: usize, wait_secs: f64 },
    /// The agent's status changed (`by_system`: put on break after missed offers).
    Status { status: Status, by_system: bool },
    /// The caller could not join: the hotline is closed or no agent is signed in (Asterisk's
    /// EXITEMPTY); the bot offers a callback or a voicemail instead.
    Closed { why: Closed },
    /// The agent passed the call to another agent (`to`), who is offered it first.
    Transfer { to: String, hold_secs: f64, talk_secs: f64 },
}

/// Why an agent could not pass their call to another agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("there is no agent of that name")]
    UnknownAgent,
    #[error("the call is already yours")]
    SameAgent,
    #[error("you are not on this call")]
    NotYourCall,
    #[error("that agent is not available now")]
    Unavailable,
}

/// Why nobody can take a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Closed {
    /// Outside the hotline's hours (`hours.toml`).
    AfterHours,
    /// Every agent is signed out.
    NoAgents,
}

impl Closed {
    /// As the follow-ups' reason says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::AfterHours => "after_hours",
            Closed::NoAgents => "no_agents",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueEvent {
    /// Time on the queue's clock.
    #[serde(skip)]
    pub at: Duration,
    pub call: Option<CallKey>,
    pub agent: Option<String>,
    #[serde(flatten)]
    pub kind: QueueEventKind,
}

/// What the queue asks of its surroundings.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Ring this agent for this call.
    Offer { call: CallKey, agent: String },
    /// Stop offering this call to this agent (cancel the ringing, or hang up the agent's leg if
    /// it was answered but not yet accepted).
    Withdraw { call: CallKey, agent: String, why: Withdrawn },
    /// Tell the caller their place and the expected wait.
    Announce { call: CallKey, position: usize, expected_wait: Duration },
    /// The caller waited the longest allowed and has left the queue: the bot takes the call back.
    WaitOver { call: CallKey },
    /// The caller was not queued: nobody can take the call now.
    Closed { call: CallKey, why: Closed },
    /// The agent passed the call on: the caller goes back on hold (the agent's leg is hung up)
    /// and `to` is offered the call.
    Transferred { call: CallKey, to: String },
    Log(QueueEvent),
}

#[derive(Debug, Clone)]
struct Agent {
    skills: BTreeSet<String>,
    status: Status,
    state: State,
    /// Since when the agent is free (for longest-idle).
    idle_since: Duration,
    /// When the current offer began / wrap-up ends.
    since: Duration,
    wrap_until: Duration,
    misses: u32,
}

#[derive(Debug, Clone)]
struct Waiting {
    call: CallKey,
    priority: u8,
    needs: Needs,
    entered: Duration,
    entry_position: usize,
    next_announce: Duration,
    /// Agents ringing for (or hearing the summary of) this call.
    offered: BTreeSet<String>,
    /// The agent who answered the offer and hears the summary (no longer ringing).
    answered: Option<String>,
    /// Agents who declined or missed it, until when they are skipped for it.
    skipped: BTreeMap<String, Duration>,
    /// Passed on to this agent: offered to them only (until they miss or decline it).
    only: Option<String>,
}

impl Waiting {
    fn new(call: &str, priority: u8, needs: Needs, now: Duration) -> Self {
        Waiting {
            call: call.to_string(),
            priority,
            needs,
            entered: now,
            entry_position: 0,
            next_announce: now,
            offered: BTreeSet::new(),
            answered: None,
            skipped: BTreeMap::new(),
            only: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Connected {
    agent: String,
    hold: Duration,
    since: Duration,
}

/// One queue and its agents.
pub struct Acd {
    cfg: AcdConfig,
    agents: BTreeMap<String, Agent>,
    waiting: Vec<Waiting>,
    connected: BTreeMap<CallKey, Connected>,
    outputs: VecDeque<Output>,
    /// The agent offered a call last (round-robin continues after it).
    last_offered: Option<String>,
    /// Average time an agent spends on a call and its wrap-up (the expected-wait estimate).
    handle_time: Duration,
    /// Within the hotline's hours (set by the surroundings, which know the clock and the hours).
    open: bool,
}

/// An agent as the board shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentView {
    pub name: String,
    pub status: Status,
    #[serde(flatten)]
    pub state: State,
    pub skills: Vec<String>,
    pub misses: u32,
    /// Seconds in the current state.
    pub for_secs: f64,
}

/// A waiting caller as the board shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WaitingView {
    pub call: CallKey,
    pub position: usize,
    pub priority: u8,
    pub waited_secs: f64,
    pub offered_to: Vec<String>,
    pub needs: Needs,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Board {
    pub agents: Vec<AgentView>,
    pub waiting: Vec<WaitingView>,
}

impl Acd {
    pub fn new(cfg: AcdConfig) -> Self {
        let handle_time = secs(cfg.handle_time_secs);
        Self {
            cfg,
            agents: BTreeMap::new(),
            waiting: Vec::new(),
            connected: BTreeMap::new(),
            outputs: VecDeque::new(),
            last_offered: None,
            handle_time,
            open: true,
        }
    }

    /// The next thing to do, if any.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn log(&mut self, at: Duration, call: Option<&str>, agent: Option<&str>, kind: QueueEventKind) {
        self.outputs.push_back(Output::Log(QueueEvent { at, call: call.map(str::to_string), agent: agent.map(str::to_string), kind }));
    }

    /// Adds an agent (signed out) or updates the skills of a known one. Skills are compared in
    /// lower case.
    pub fn define_agent(&mut self, name: &str, skills: impl IntoIterator<Item = String>, now: Duration) {
        let skills: BTreeSet<String> = skills.into_iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
        match self.agents.get_mut(name) {
            Some(a) => a.skills = skills,
            None => {
                let agent = Agent { skills, status: Status::SignedOut, state: State::Idle, idle_since: now, since: now, wrap_until: now, misses: 0 };
                self.agents.insert(name.to_string(), agent);
            }
        }
    }

    /// Removes an agent; an offer in progress is withdrawn. Returns whether it existed.
    pub fn remove_agent(&mut self, name: &str, now: Duration) -> bool {
        if !self.agents.contains_key(name) {
            return false;
        }
        self.set_status(name, Status::SignedOut, now);
        self.agents.remove(name);
        true
    }

    /// The agent sets their status. Signing out or going on break during an offer withdraws it;
    /// during a call the call goes on (the status applies afterwards). `false` for an unknown agent.
    pub fn set_status(&mut self, name: &str, status: Status, now: Duration) -> bool {
        let Some(a) = self.agents.get_mut(name) else { return false };
        if a.status == status {
            return true;
        }
        a.status = status;
        if status == Status::Available {
            a.misses = 0;
            if a.state == State::Idle {
                a.idle_since = now;
            }
        }
        let offered = match &a.state {
            State::Offered(call) if status != Status::Available => Some(call.clone()),
            _ => None,
        };
        self.log(now, None, Some(name), QueueEventKind::Status { status, by_system: false });
        if let Some(call) = offered {
            self.take_back(&call, name);
            self.outputs.push_back(Output::Withdraw { call, agent: name.to_string(), why: Withdrawn::AgentLeft });
        }
        self.dispatch(now);
        true
    }

    /// Agents signed in (available or on break) — the estimate's divisor and the "anyone there?"
    /// question.
    pub fn signed_in(&self) -> usize {
        self.agents.values().filter(|a| a.status != Status::SignedOut).count()
    }

    /// Agents available now or soon (status available, whatever their state).
    pub fn available(&self) -> usize {
        self.agents.values().filter(|a| a.status == Status::Available).count()
    }

    /// Whether the hotline is within its hours now (the surroundings know the clock).
    pub fn set_open(&mut self, open: bool) {
        self.open = open;
    }

    /// Why a caller arriving now could not be queued, if they could not: outside the hours, or
    /// nobody signed in (an agent on break will be back; a queue with nobody at all is closed).
    pub fn closed(&self) -> Option<Closed> {
        if !self.open {
            Some(Closed::AfterHours)
        } else if self.signed_in() == 0 {
            Some(Closed::NoAgents)
        } else {
            None
        }
    }

    /// A caller joins the queue; returns their position.
    pub fn enter(&mut self, call: &str, priority: u8, needs: Needs, now: Duration) -> usize {
        if let Some(p) = self.position(call) {
            return p;
        }
        let needs = Needs { language: needs.language.map(|s| s.to_lowercase()), topic: needs.topic.map(|s| s.to_lowercase()) };
        let queue = needs.topic.clone().unwrap_or_else(|| "general".into());
        let w = Waiting::new(call, priority, needs, now);
        // Priority first (higher first), then arrival.
        let at = self.waiting.iter().position(|o| o.priority < priority).unwrap_or(self.waiting.len());
        self.waiting.insert(at, w);
        let position = at + 1;
        self.waiting[at].entry_position = position;
        self.log(now, Some(call), None, QueueEventKind::Enter { priority, position, queue });
        self.dispatch(now);
        self.announce_due(now);
        position
    }

    /// A caller's place in the queue (1 is next), if waiting.
    pub fn position(&self, call: &str) -> Option<usize> {
        self.waiting.iter().position(|w| w.call == call).map(|i| i + 1)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Removes a waiting caller, withdrawing their offers.
    fn leave(&mut self, call: &str, why: Withdrawn) -> Option<(usize, Waiting)> {
        let i = self.waiting.iter().position(|w| w.call == call)?;
        let w = self.waiting.remove(i);
        for agent in &w.offered {
            self.free(agent);
            self.outputs.push_back(Output::Withdraw { call: call.to_string(), agent: agent.clone(), why });
        }
        Some((i + 1, w))
    }

    /// The caller hung up: abandoned while waiting, or completed if connected.
    pub fn caller_left(&mut self, call: &str, now: Duration) {
        if let Some((position, w)) = self.leave(call, Withdrawn::CallerLeft) {
            let kind = QueueEventKind::Abandon { position, entry_position: w.entry_position, wait_secs: now.saturating_sub(w.entered).as_secs_f64() };
            self.log(now, Some(call), None, kind);
        } else if self.connected.contains_key(call) {
            self.complete(call, CompletedBy::Caller, now);
        }
        self.dispatch(now);
    }

    /// The caller pressed a key to leave the queue (1: a callback instead of waiting).
    pub fn caller_key(&mut self, call: &str, key: char, now: Duration) -> bool {
        let Some((position, w)) = self.leave(call, Withdrawn::CallerLeft) else { return false };
        self.log(now, Some(call), None, QueueEventKind::ExitWithKey { key, position, wait_secs: now.saturating_sub(w.entered).as_secs_f64() });
        self.dispatch(now);
        true
    }

    /// The agent's phone was answered; the agent now hears the summary. With ring-all, the other
    /// agents' ringing stops. `false` when the offer is no longer open (withdraw the agent's leg).
    pub fn agent_answered(&mut self, call: &str, agent: &str, _now: Duration) -> bool {
        let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) else { return false };
        if !w.offered.contains(agent) {
            return false;
        }
        let others: Vec<String> = w.offered.iter().filter(|a| *a != agent).cloned().collect();
        w.offered.retain(|a| a == agent);
        w.answered = Some(agent.to_string());
        for other in others {
            self.free(&other);
            self.outputs.push_back(Output::Withdraw { call: call.to_string(), agent: other, why: Withdrawn::TakenElsewhere });
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.misses = 0;
        }
        true
    }

    /// The agent accepted the call: caller and agent are connected. `false` if the offer was no
    /// longer open.
    pub fn agent_accepted(&mut self, call: &str, agent: &str, now: Duration) -> bool {
        let open = self.waiting.iter().any(|w| w.call == call && w.offered.contains(agent));
        if !open || !self.agent_answered(call, agent, now) {
            return false;
        }
        let Some(i) = self.waiting.iter().position(|w| w.call == call) else { return false };
        let w = self.waiting.remove(i);
        let hold = now.saturating_sub(w.entered);
        if let Some(a) = self.agents.get_mut(agent) {
            a.state = State::OnCall(call.to_string());
            a.since = now;
            a.misses = 0;
        }
        self.connected.insert(call.to_string(), Connected { agent: agent.to_string(), hold, since: now });
        self.log(now, Some(call), Some(agent), QueueEventKind::Connect { hold_secs: hold.as_secs_f64() });
        self.dispatch(now);
        true
    }

    /// The agent heard the summary and declined: the caller goes back to the head of the queue
    /// (their place is kept), and this agent is not offered the call again for a while.
    pub fn agent_declined(&mut self, call: &str, agent: &str, now: Duration) {
        let cooldown = secs(self.cfg.decline_cooldown_secs);
        if !self.take_back(call, agent) {
            return;
        }
        if let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) {
            w.skipped.insert(agent.to_string(), now + cooldown);
        }
        self.outputs.push_back(Output::Withdraw { call: call.to_string(), agent: agent.to_string(), why: Withdrawn::Declined });
        self.log(now, Some(call), Some(agent), QueueEventKind::Declined);
        self.dispatch(now);
    }

    /// The agent's phone refused the offer or could not be reached (busy, unavailable, no
    /// registration): counted as a miss, and the next agent is tried.
    pub fn agent_unreachable(&mut self, call: &str, agent: &str, now: Duration) {
        if self.take_back(call, agent) {
            self.missed(call, agent, now);
            self.dispatch(now);
        }
    }

    /// Ends an offer without a new event for it; `false` if there was none.
    fn take_back(&mut self, call: &str, agent: &str) -> bool {
        let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) else { return false };
        if !w.offered.remove(agent) {
            return false;
        }
        if w.answered.as_deref() == Some(agent) {
            w.answered = None;
        }
        self.free(agent);
        true
    }

    /// An agent whose offer ended goes back to idle (keeping their place in the longest-idle
    /// order: an offer is not work).
    fn free(&mut self, agent: &str) {
        if let Some(a) = self.agents.get_mut(agent) {
            if matches!(a.state, State::Offered(_)) {
                a.state = State::Idle;
            }
        }
    }

    fn missed(&mut self, call: &str, agent: &str, now: Duration) {
        let (max, retry) = (self.cfg.max_misses, secs(self.cfg.retry_secs));
        if let Some(w) = self.waiting.iter_mut().find(|w| w.call == call) {
            w.skipped.insert(agent.to_string(), now + retry);
        }
        let Some(a) = self.agents.get_mut(agent) else { return };
        let ring = now.saturating_sub(a.since);
        a.misses += 1;
        let on_break = max > 0 && a.misses >= max && a.status == Status::Available;
        if on_break {
            a.status = Status::OnBreak;
        }
        self.log(now, Some(call), Some(agent), QueueEventKind::NoAnswer { ring_secs: ring.as_secs_f64() });
        if on_break {
            self.log(now, None, Some(agent), QueueEventKind::Status { status: Status::OnBreak, by_system: true });
        }
    }

    /// A connected call ended (either side hung up); the agent wraps up.
    pub fn completed(&mut self, call: &str, by: CompletedBy, now: Duration) {
        self.complete(call, by, now);
        self.dispatch(now);
    }

    fn complete(&mut self, call: &str, by: CompletedBy, now: Duration) {
        let Some((c, talk)) = self.end_talk(call, now) else { return };
        self.log(now, Some(call), Some(&c.agent), QueueEventKind::Complete { by, hold_secs: c.hold.as_secs_f64(), talk_secs: talk.as_secs_f64() });
    }

    /// The agent's talk on `call` is over (hung up, or passed on): they wrap up. Returns the
    /// connection and the talk time.
    fn end_talk(&mut self, call: &str, now: Duration) -> Option<(Connected, Duration)> {
        let c = self.connected.remove(call)?;
        let talk = now.saturating_sub(c.since);
        let wrap = secs(self.cfg.wrap_up_secs);
        if let Some(a) = self.agents.get_mut(&c.agent) {
            a.state = State::WrapUp;
            a.since = now;
            a.wrap_until = now + wrap;
        }
        // A moving average of what a call costs an agent (talk and wrap-up).
        let sample = talk + wrap;
        self.handle_time = (self.handle_time * 3 + sample) / 4;
        Some((c, talk))
    }

    /// When [`Self::on_tick`] must next run (it may run more often).
    pub fn poll_timeout(&self) -> Option<Duration> {
        let ring = secs(self.cfg.ring_timeout_secs);
        let ringing = self.waiting.iter().flat_map(|w| w.offered.iter().filter(|a| w.answered.as_ref() != Some(*a)));
        let offers = ringing.filter_map(|a| self.agents.get(a)).map(|a| a.since + ring);
        let wraps = self.agents.values().filter(|a| a.state == State::WrapUp).map(|a| a.wrap_until);
        let waits = self.waiting.iter().map(|w| w.entered + secs(self.cfg.max_wait_secs));
        let announcements = self.waiting.iter().filter(|w| w.offered.is_empty()).map(|w| w.next_announce);
        // A skipped agent may become eligible again.
        let skips = self.waiting.iter().flat_map(|w| w.skipped.values().copied());
        offers.chain(wraps).chain(waits).chain(announcements).chain(skips).min()
    }

    /// The timers: ring timeouts, wrap-ups ending, the longest wait, announcements; then free
    /// agents get waiting calls.
    pub fn on_tick(&mut self, now: Duration) {
        let ring = secs(self.cfg.ring_timeout_secs);
        // Only offers still ringing time out: an answered one (the agent hears the summary) waits
        // for the agent's key.
        let late: Vec<(CallKey, String)> = self
            .waiting
            .iter()
            .flat_map(|w| w.offered.iter().filter(|a| w.answered.as_ref() != Some(*a)).map(move |a| (w.call.clone(), a.clone())))
            .filter(|(_, a)| self.agents.get(a).is_some_and(|ag| now >= ag.since + ring))
            .collect();
        for (call, agent) in late {
            self.take_back(&call, &agent);
            self.outputs.push_back(Output::Withdraw { call: call.clone(), agent: agent.clone(), why: Withdrawn::RingTimeout });
            self.missed(&call, &agent, now);
        }
        for w in &mut self.waiting {
            w.skipped.retain(|_, until| *until > now);
        }
        for a in self.agents.values_mut() {
            if a.state == State::WrapUp && now >= a.wrap_until {
                a.state = State::Idle;
                a.idle_since = now;
            }
        }
        let max_wait = secs(self.cfg.max_wait_secs);
        let over: Vec<CallKey> = self.waiting.iter().filter(|w| now >= w.entered + max_wait).map(|w| w.call.clone()).collect();
        for call in over {
            if let Some((position, w)) = self.leave(&call, Withdrawn::WaitOver) {
                // The caller is told before the line is logged (the log is the last word on a call).
                self.outputs.push_back(Output::WaitOver { call: call.clone() });
                self.log(now, Some(&call), None, QueueEventKind::ExitWithTimeout { position, wait_secs: now.saturating_sub(w.entered).as_secs_f64() });
            }
        }
        self.dispatch(now);
        self.announce_due(now);
    }

    /// The expected wait of the caller at `position`: the calls ahead shared among the agents
    /// signed in, each taking the average handling time.
    pub fn expected_wait(&self, position: usize) -> Duration {
        let agents = self.available().max(1) as u32;
        let rounds = (position as u32).div_ceil(agents);
        self.handle_time * rounds
    }

    fn announce_due(&mut self, now: Duration) {
        let every = secs(self.cfg.announce_every_secs.max(1));
        let mut due = Vec::new();
        for (i, w) in self.waiting.iter_mut().enumerate() {
            // Not while an agent is being offered the call: the caller is about to be connected.
            if now >= w.next_announce && w.offered.is_empty() {
                w.next_announce = now + every;
                due.push((w.call.clone(), i + 1));
            }
        }
        for (call, position) in due {
            let expected_wait = self.expected_wait(position);
            self.outputs.push_back(Output::Announce { call, position, expected_wait });
        }
    }

    /// Whether `agent` may be offered a call now.
    fn free_agent(&self, name: &str, now: Duration) -> bool {
        self.agents.get(name).is_some_and(|a| a.status == Status::Available && a.state == State::Idle && now >= a.wrap_until)
    }

    /// Offers waiting calls, in queue order, to free agents with their skills.
    fn dispatch(&mut self, now: Duration) {
        for i in 0..self.waiting.len() {
            if !self.waiting[i].offered.is_empty() {
                continue;
            }
            let chosen = self.choose(&self.waiting[i], now);
            if chosen.is_empty() {
                continue;
            }
            let call = self.waiting[i].call.clone();
            for agent in chosen {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.state = State::Offered(call.clone());
                    a.since = now;
                }
                self.waiting[i].offered.insert(agent.clone());
                self.last_offered = Some(agent.clone());
                self.log(now, Some(&call), Some(&agent), QueueEventKind::Offered);
                self.outputs.push_back(Output::Offer { call: call.clone(), agent });
            }
        }
    }

    /// The agent on `call` passes it to agent `to`: the call ends for them (wrap-up) and goes to
    /// the head of the queue, offered to `to` only (to anyone, should `to` miss or decline it).
    /// On an error nothing changes.
    pub fn transfer(&mut self, call: &str, from: &str, to: &str, now: Duration) -> Result<(), TransferError> {
        if !self.agents.contains_key(to) {
            return Err(TransferError::UnknownAgent);
        }
        if from == to {
            return Err(TransferError::SameAgent);
        }
        if self.connected.get(call).is_none_or(|c| c.agent != from) {
            return Err(TransferError::NotYourCall);
        }
        if !self.free_agent(to, now) {
            return Err(TransferError::Unavailable);
        }
        let Some((c, talk)) = self.end_talk(call, now) else { return Err(TransferError::NotYourCall) };
        self.log(now, Some(call), Some(from), QueueEventKind::Transfer { to: to.to_string(), hold_secs: c.hold.as_secs_f64(), talk_secs: talk.as_secs_f64() });
        self.outputs.push_back(Output::Transferred { call: call.to_string(), to: to.to_string() });
        // Ahead of everyone (the caller has waited already), announced at the usual interval.
        let mut w = Waiting::new(call, u8::MAX, Needs::default(), now);
        w.entry_position = 1;
        w.next_announce = now + secs(self.cfg.announce_every_secs);
        w.only = Some(to.to_string());
        self.waiting.insert(0, w);
        self.dispatch(now);
        Ok(())
    }

    /// The agents to offer `w` to now, by the strategy. Skills: agents with all the call's
    /// skills; when no signed-in agent has them all, agents with its language; then anyone.
    fn choose(&self, w: &Waiting, now: Duration) -> Vec<String> {
        let has = |a: &Agent, s: &Option<String>| s.as_ref().is_none_or(|s| a.skills.contains(s));
        let signed_in = || self.agents.values().filter(|a| a.status != Status::SignedOut);
        let need_topic = signed_in().any(|a| has(a, &w.needs.language) && has(a, &w.needs.topic));
        let need_language = need_topic || signed_in().any(|a| has(a, &w.needs.language));
        let mut candidates: Vec<(&String, &Agent)> = self
            .agents
            .iter()
            .filter(|(n, _)| self.free_agent(n, now))
            .filter(|(n, _)| w.skipped.get(*n).is_none_or(|until| now >= *until))
            .filter(|(n, _)| w.only.as_ref().filter(|o| !w.skipped.contains_key(*o)).is_none_or(|o| o == *n))
            .filter(|(_, a)| !need_language || has(a, &w.needs.language))
            .filter(|(_, a)| !need_topic || has(a, &w.needs.topic))
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        match self.cfg.strategy {
            Strategy::RingAll => candidates.into_iter().map(|(n, _)| n.clone()).collect(),
            Strategy::LongestIdle => {
                candidates.sort_by_key(|(n, a)| (a.idle_since, (*n).clone()));
                vec![candidates[0].0.clone()]
            }
            Strategy::RoundRobin => {
                let after = self.last_offered.clone().unwrap_or_default();
                let next = candidates.iter().find(|(n, _)| n.as_str() > after.as_str()).or(candidates.first());
                next.map(|(n, _)| (*n).clone()).into_iter().collect()
            }
        }
    }

    /// The agents and the waiting callers, for the console's board.
    pub fn board(&self, now: Duration) -> Board {
        let agents = self
            .agents
            .iter()
            .map(|(name, a)| AgentView {
                name: name.clone(),
                status: a.status,
                state: a.state.clone(),
                skills: a.skills.iter().cloned().collect(),
                misses: a.misses,
                for_secs: now.saturating_sub(if a.state == State::Idle { a.idle_since } else { a.since }).as_secs_f64(),
            })
            .collect();
        let waiting = self
            .waiting
            .iter()
            .enumerate()
            .map(|(i, w)| WaitingView {
                call: w.call.clone(),
                position: i + 1,
                priority: w.priority,
                waited_secs: now.saturating_sub(w.entered).as_secs_f64(),
                offered_to: w.offered.iter().cloned().collect(),
                needs: w.needs.clone(),
            })
            .collect();
        Board { agents, waiting }
    }

    /// What a call handed to people tells the queue (its attendant's [`DeskNote`]s); returns the
    /// caller's position when they enter. Notes that are not the queue's (a callback to store, a
    /// PBX to dial) change nothing here.
    pub fn apply(&mut self, call: &str, note: DeskNote, now: Duration) -> Option<usize> {
        match note {
            DeskNote::Enter { priority, needs, .. } => match self.closed() {
                None => return Some(self.enter(call, priority, needs, now)),
                Some(why) => {
                    self.log(now, Some(call), None, QueueEventKind::Closed { why });
                    self.outputs.push_back(Output::Closed { call: call.to_string(), why });
                }
            },
            DeskNote::AgentAnswered { agent } => {
                self.agent_answered(call, &agent, now);
            }
            DeskNote::Accepted { agent } => {
                self.agent_accepted(call, &agent, now);
            }
            DeskNote::Declined { agent } => self.agent_declined(call, &agent, now),
            DeskNote::Unreachable { agent } => self.agent_unreachable(call, &agent, now),
            DeskNote::CallerKey(k) => {
                self.caller_key(call, k, now);
            }
            DeskNote::CallerLeft => self.caller_left(call, now),
            DeskNote::Completed { by } => self.completed(call, by, now),
            DeskNote::Callback { .. } | DeskNote::Voicemail { .. } | DeskNote::Dial { .. } => {}
        }
        None
    }

    /// The agent's status and state.
    pub fn agent(&self, name: &str) -> Option<(Status, State)> {
        self.agents.get(name).map(|a| (a.status, a.state.clone()))
    }

    /// The agent who answered the offer of `call` (hears the summary, may accept), if any.
    pub fn answered_by(&self, call: &str) -> Option<&str> {
        self.waiting.iter().find(|w| w.call == call).and_then(|w| w.answered.as_deref())
    }
}
