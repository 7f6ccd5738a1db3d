//! The live queue: one [`Acd`] shared by the server's calls, the thin IO around it. Calls tell it
//! their [`DeskNote`]s from their threads; a thread of its own runs its timers; what it decides
//! goes to the calls (announcements, offers, withdrawals: [`Control`]s on their channels), to the
//! signalling thread (ring this agent's phone: [`Command::Dial`]) and to the store (the queue's
//! log, who is waiting, callbacks, agents' statuses). Agents and their phones' credentials are
//! (re)loaded from the store every few seconds, so `ivr agents` and the console take effect on a
//! running server.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sip_bridge::sip::registrar::PhoneAccount;

use crate::acd::{Acd, AcdConfig, Board, CallKey, Output, QueueEvent, Status};
use crate::attendant::{DeskNote, Input as AttendantInput};
use crate::browser_leg::{BrowserLeg, BrowserMedia, ToPage};
use crate::driver::Control;
use crate::record::RecordSink;
use crate::server::Command;

/// How often agents are reloaded from the store.
const RELOAD: Duration = Duration::from_secs(2);

/// A caller the queue knows, with what the console shows of them.
#[derive(Clone)]
struct Caller {
    control: Sender<Control>,
    number: String,
    summary: String,
    reason: String,
}

/// An agent as the store has them.
#[derive(Clone, PartialEq)]
struct AgentInfo {
    extension: Option<String>,
    /// The status the store had last time we looked (a change there is the agent's doing).
    stored_status: String,
}

struct State {
    acd: Acd,
    callers: HashMap<CallKey, Caller>,
    agents: HashMap<String, AgentInfo>,
    phones: Vec<PhoneAccount>,
    /// Agents who take calls in the console (their browser) rather than on a phone.
    in_browser: HashSet<String>,
    /// An agent's browser leg while it rings: the offered call, and where its media and hang-up go.
    ringing: HashMap<String, RingingBrowser>,
}

/// The console's side of an agent's browser leg that rings.
struct RingingBrowser {
    call: CallKey,
    media: Sender<BrowserMedia>,
    inbox: Sender<ToPage>,
}

impl State {
    /// A known caller as the console shows them.
    fn waiting_caller(&self, call: &str, answered: bool) -> Option<WaitingCaller> {
        let c = self.callers.get(call)?;
        Some(WaitingCaller { call: call.to_string(), number: c.number.clone(), summary: c.summary.clone(), reason: c.reason.clone(), answered })
    }
}

pub struct Desk {
    state: Mutex<State>,
    started: Instant,
    sink: RecordSink,
    server: String,
    /// To the signalling thread (dialling agents, the registrar's phones).
    commands: Sender<Command>,
    realm: String,
    /// The hotline's hours, if it has any (else always open).
    hours: Option<dialogue::tools::Hours>,
}

/// What a waiting caller looks like on the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WaitingCaller {
    pub call: CallKey,
    pub number: String,
    pub summary: String,
    pub reason: String,
    /// The offered agent's phone has answered (they hear the summary and may accept).
    pub answered: bool,
}

/// A waiting caller on a board: their place, wait, number, and what the bot's summary says.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WaitingLine {
    pub call: CallKey,
    pub position: usize,
    pub priority: u8,
    /// Whole seconds.
    pub waited_secs: f64,
    pub number: Option<String>,
    pub summary: Option<String>,
    pub reason: Option<String>,
    pub offered_to: Vec<String>,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::SignedOut => "signed_out",
        Status::Available => "available",
        Status::OnBreak => "on_break",
    }
}

fn status_of(s: &str) -> Option<Status> {
    match s {
        "signed_out" => Some(Status::SignedOut),
        "available" => Some(Status::Available),
        "on_break" => Some(Status::OnBreak),
        _ => None,
    }
}

impl Desk {
    /// Starts the queue and its timer thread.
    pub(crate) fn start(cfg: AcdConfig, sink: RecordSink, server: String, commands: Sender<Command>, realm: String) -> std::io::Result<Arc<Desk>> {
        let hours = match &cfg.hours {
            Some(path) => Some(dialogue::tools::Hours::load(path).map_err(|e| std::io::Error::other(format!("[sip.queue] hours: {e}")))?),
            None => None,
        };
        let state = State { acd: Acd::new(cfg), callers: HashMap::new(), agents: HashMap::new(), phones: Vec::new(), in_browser: HashSet::new(), ringing: HashMap::new() };
        let desk = Arc::new(Desk { state: Mutex::new(state), started: Instant::now(), sink, server, commands, realm, hours });
        desk.reload();
        let weak = Arc::downgrade(&desk);
        std::thread::Builder::new().name("ivr-queue".into()).spawn(move || {
            let mut reloaded = Instant::now();
            while let Some(desk) = weak.upgrade() {
                desk.tick();
                if reloaded.elapsed() >= RELOAD {
                    desk.reload();
                    reloaded = Instant::now();
                }
                drop(desk);
                std::thread::sleep(Duration::from_millis(100));
            }
        })?;
        Ok(desk)
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tick(&self) {
        let now = self.now();
        let mut st = self.lock();
        if st.acd.poll_timeout().is_some_and(|t| t <= now) {
            st.acd.on_tick(now);
        }
        self.pump(&mut st);
    }

    /// Agents, their skills, statuses and phones from the store.
    fn reload(&self) {
        let Some(agents) = self.sink.agents(Duration::from_secs(5)) else {
            tracing::warn!("the store did not list the agents; keeping the ones known");
            return;
        };
        let now = self.now();
        let mut st = self.lock();
        if let Some(h) = &self.hours {
            st.acd.set_open(h.hotline_open(jiff::Timestamp::now()));
        }
        let names: Vec<String> = st.agents.keys().cloned().collect();
        for gone in names.iter().filter(|n| !agents.iter().any(|a| &a.name == *n)) {
            st.acd.remove_agent(gone, now);
            st.agents.remove(gone);
        }
        let mut phones = Vec::new();
        for a in &agents {
            st.acd.define_agent(&a.name, a.skills.iter().cloned(), now);
            let changed = st.agents.get(&a.name).is_none_or(|known| known.stored_status != a.status);
            if changed {
                if let Some(s) = status_of(&a.status) {
                    st.acd.set_status(&a.name, s, now);
                }
            }
            st.agents.insert(a.name.clone(), AgentInfo { extension: a.extension.clone(), stored_status: a.status.clone() });
            match (&a.extension, &a.phone) {
                (Some(ext), Some(p)) if p.realm == self.realm => {
                    phones.push(PhoneAccount { user: ext.clone(), ha1_md5: p.ha1_md5.clone(), ha1_sha256: p.ha1_sha256.clone() })
                }
                (Some(ext), Some(p)) => {
                    tracing::warn!(agent = %a.name, extension = %ext, "the phone's password was set for realm {:?}, not {:?}: set it again", p.realm, self.realm)
                }
                _ => {}
            }
        }
        if phones != st.phones {
            st.phones = phones.clone();
            let _ = self.commands.send(Command::Phones(phones));
        }
        self.pump(&mut st);
    }

    /// A note from a call (its store id is `call`).
    pub(crate) fn note(&self, call: &str, note: DeskNote, control: &Sender<Control>) {
        let now = self.now();
        let mut st = self.lock();
        let entering = match &note {
            DeskNote::Enter { priority, summary, caller, reason, .. } => {
                let entry = Caller { control: control.clone(), number: caller.clone(), summary: summary.clone(), reason: reason.clone() };
                st.callers.insert(call.to_string(), entry);
                Some(i64::from(*priority))
            }
            _ => None,
        };
        if let (Some(position), Some(priority)) = (st.acd.apply(call, note, now), entering) {
            let entered_at = jiff::Timestamp::now().to_string();
            self.sink.queue_enter(ivr_store::QueueEntry { call_id: call.to_string(), server: self.server.clone(), entered_at, priority, entry_position: position as i64 });
        }
        self.pump(&mut st);
    }

    /// The agent's phone could not be rung (not registered): the next agent is tried.
    pub(crate) fn unreachable(&self, call: &str, agent: &str) {
        let now = self.now();
        let mut st = self.lock();
        st.acd.agent_unreachable(call, agent, now);
        self.pump(&mut st);
    }

    /// The agent sets their status (the console); `false` for an unknown agent.
    pub fn set_status(&self, agent: &str, status: Status) -> bool {
        let now = self.now();
        let mut st = self.lock();
        let known = st.acd.set_status(agent, status, now);
        if known {
            if let Some(a) = st.agents.get_mut(agent) {
                a.stored_status = status_name(status).to_string();
            }
        }
        self.pump(&mut st);
        known
    }

    /// Where the agent takes calls: in the console (`true`: their browser) or on their phone.
    pub fn set_browser(&self, agent: &str, in_browser: bool) {
        let mut st = self.lock();
        if in_browser {
            st.in_browser.insert(agent.to_string());
        } else {
            st.in_browser.remove(agent);
            st.ringing.remove(agent);
        }
    }

    /// Whether the agent takes calls in the browser.
    pub fn in_browser(&self, agent: &str) -> bool {
        self.lock().in_browser.contains(agent)
    }

    /// The agent answers, in the browser, the call ringing there (`call`): its media goes to the
    /// caller's call, which drives it from now on. An error says why not.
    pub fn answer_in_browser(&self, agent: &str, call: &str, media: BrowserMedia) -> Result<(), &'static str> {
        let mut st = self.lock();
        match st.ringing.get(agent) {
            Some(r) if r.call == call => {}
            _ => return Err("this call is not ringing in your browser"),
        }
        let r = st.ringing.remove(agent).ok_or("this call is not ringing in your browser")?;
        r.media.send(media).map_err(|_| "the caller is gone")?;
        // The leg's hang-up (the agent's) stays reachable while the call lasts.
        st.ringing.insert(agent.to_string(), RingingBrowser { call: r.call, media: mpsc::channel().0, inbox: r.inbox });
        Ok(())
    }

    /// The agent hangs up (or declines) the browser leg of `call`; false when there is none.
    pub fn hang_up_browser(&self, agent: &str, call: &str) -> bool {
        let mut st = self.lock();
        match st.ringing.get(agent) {
            Some(r) if r.call == call => {
                let sent = r.inbox.send(ToPage::HangUp).is_ok();
                st.ringing.remove(agent);
                sent
            }
            _ => false,
        }
    }

    /// The agent accepts or declines, on the console, the call they are offered (their phone has
    /// answered and they hear the summary). An error says why not.
    pub fn decide(&self, agent: &str, call: &str, accept: bool) -> Result<(), &'static str> {
        let st = self.lock();
        match st.acd.agent(agent) {
            None => return Err("no such agent"),
            Some((_, crate::acd::State::Offered(c))) if c == call => {}
            Some(_) => return Err("this call is not offered to you"),
        }
        if st.acd.answered_by(call) != Some(agent) {
            return Err("answer your phone first: the call is still ringing");
        }
        let c = st.callers.get(call).ok_or("the caller is gone")?;
        let decision = Control::Attendant(AttendantInput::Decision { agent: agent.to_string(), accept });
        c.control.send(decision).map_err(|_| "the caller is gone")
    }

    /// The agent passes the call they are on to agent `to` (who must be available): the caller
    /// waits again, and `to` is offered the call first. On an error nothing changes.
    pub fn transfer(&self, from: &str, call: &str, to: &str) -> Result<(), crate::acd::TransferError> {
        let now = self.now();
        let mut st = self.lock();
        st.acd.transfer(call, from, to, now)?;
        self.pump(&mut st);
        Ok(())
    }

    /// The call offered to `agent` now, or the one they are on (`true`), with what the console
    /// shows of it.
    pub fn call_of(&self, agent: &str) -> Option<(WaitingCaller, bool)> {
        let st = self.lock();
        let (call, on_call) = match st.acd.agent(agent) {
            Some((_, crate::acd::State::Offered(call))) => (call, false),
            Some((_, crate::acd::State::OnCall(call))) => (call, true),
            _ => return None,
        };
        let answered = on_call || st.acd.answered_by(&call) == Some(agent);
        Some((st.waiting_caller(&call, answered)?, on_call))
    }

    /// The waiting callers as the agents' console and the supervisors' dashboard list them, in
    /// queue order, with the agents' board.
    pub fn lines(&self) -> (Vec<crate::acd::AgentView>, Vec<WaitingLine>) {
        let (board, callers) = self.board();
        let waiting = board
            .waiting
            .iter()
            .map(|w| {
                let who = callers.iter().find(|c| c.call == w.call);
                WaitingLine {
                    call: w.call.clone(),
                    position: w.position,
                    priority: w.priority,
                    waited_secs: w.waited_secs.round(),
                    number: who.map(|c| c.number.clone()),
                    summary: who.map(|c| c.summary.clone()),
                    reason: who.map(|c| c.reason.clone()),
                    offered_to: w.offered_to.clone(),
                }
            })
            .collect();
        (board.agents, waiting)
    }

    /// The agents and the waiting callers.
    fn board(&self) -> (Board, Vec<WaitingCaller>) {
        let st = self.lock();
        let board = st.acd.board(self.now());
        let waiting = board
            .waiting
            .iter()
.filter_map(|w| st.waiting_caller(&w.call, st.acd.answered_by(&w.call).is_some()))
            .collect();
        (board, waiting)
    }

    /// Carries out what the queue decided.
    fn pump(&self, st: &mut State) {
        while let Some(o) = st.acd.poll() {
            match o {
                Output::Offer { call, agent } => {
                    let Some(c) = st.callers.get(&call).cloned() else { continue };
                    let extension = st.agents.get(&agent).and_then(|a| a.extension.clone());
                    let _ = c.control.send(Control::Attendant(AttendantInput::Offered { agent: agent.clone() }));
                    if st.in_browser.contains(&agent) {
                        // Rings in the console; the agent's answer there brings the media.
                        let (media_tx, media_rx) = mpsc::channel();
                        let (inbox_tx, inbox_rx) = mpsc::channel();
                        let leg = BrowserLeg::ringing(media_rx, inbox_rx);
                        st.ringing.insert(agent.clone(), RingingBrowser { call: call.clone(), media: media_tx, inbox: inbox_tx });
                        let _ = c.control.send(Control::AgentLeg { agent, leg: Box::new(leg) });
                        continue;
                    }
                    match extension {
                        Some(extension) => {
                            let dial = Command::Dial { call: call.clone(), agent, extension, caller: c.number.clone(), control: c.control.clone() };
                            let _ = self.commands.send(dial);
                        }
                        None => {
                            // A console-only agent has no phone to ring (browser agents come later).
                            tracing::warn!(%agent, "agent has no extension to ring");
                            st.acd.agent_unreachable(&call, &agent, self.now());
                        }
                    }
                }
                Output::Withdraw { call, agent, .. } => {
                    if let Some(c) = st.callers.get(&call) {
                        let _ = c.control.send(Control::Attendant(AttendantInput::Withdrawn { agent }));
                    }
                }
                Output::Announce { call, position, expected_wait } => {
                    if let Some(c) = st.callers.get(&call) {
                        let _ = c.control.send(Control::Attendant(AttendantInput::Announce { position, expected_wait }));
                    }
                }
                Output::WaitOver { call } => {
                    // The caller has left the queue; the bot takes them back.
                    if let Some(c) = st.callers.remove(&call) {
                        let _ = c.control.send(Control::Attendant(AttendantInput::WaitOver));
                    }
                }
                Output::Transferred { call, to } => {
                    if let Some(c) = st.callers.get(&call) {
                        let _ = c.control.send(Control::Attendant(AttendantInput::TransferTo { agent: to }));
                    }
                }
                Output::Closed { call, why } => {
                    if let Some(c) = st.callers.remove(&call) {
                        let _ = c.control.send(Control::Attendant(AttendantInput::Closed(why)));
                    }
                }
                Output::Log(e) => self.log(st, e),
            }
        }
    }

    fn log(&self, st: &mut State, e: QueueEvent) {
        use crate::acd::QueueEventKind as K;
        let value = serde_json::to_value(&e.kind).unwrap_or_default();
        let event = value["event"].as_str().unwrap_or_default().to_string();
        let mut detail = value;
        if let Some(m) = detail.as_object_mut() {
            m.remove("event");
        }
        crate::metrics::metrics().queue_events.with_label_values(&[event.as_str()]).inc();
        // A caller who leaves the queue leaves the list of those waiting (one whose wait is over
        // is forgotten once told: `Output::WaitOver`).
        if let (Some(call), K::Connect { .. } | K::Abandon { .. } | K::ExitWithKey { .. } | K::ExitWithTimeout { .. }) = (&e.call, &e.kind) {
            self.sink.queue_leave(call);
            if !matches!(e.kind, K::Connect { .. } | K::ExitWithTimeout { .. }) {
                st.callers.remove(call);
            }
        }
        if let K::Complete { .. } = e.kind {
            if let Some(call) = &e.call {
                st.callers.remove(call);
            }
        }
        if let (Some(agent), K::Status { status, .. }) = (&e.agent, &e.kind) {
            let name = status_name(*status);
            if let Some(a) = st.agents.get_mut(agent) {
                a.stored_status = name.to_string();
            }
            self.sink.agent_status(agent, name);
        }
        let line = ivr_store::QueueLogLine {
            at: jiff::Timestamp::now().to_string(),
            server: self.server.clone(),
            call_id: e.call,
            agent: e.agent,
            event,
            detail: Some(detail).filter(|d| d.as_object().is_some_and(|m| !m.is_empty())),
        };
        tracing::info!(call = ?line.call_id, agent = ?line.agent, event = %line.event, "queue");
        self.sink.queue_event(line);
    }
}
