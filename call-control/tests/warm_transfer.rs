//! Warm transfer in memory: the real `Call` (with its attendant) and the real queue (`Acd`) on a
//! simulated clock, with a scripted caller and scripted agents' legs. The caller asks for a
//! person, waits on hold, the agent's phone rings and answers, the agent hears the summary while
//! the caller hears hold audio (and neither the agent nor the bot hears the caller), the agent
//! keys 1, both talk, the agent hangs up and the caller rates the call; or the caller takes a
//! callback instead; or hangs up while the agent's phone rings (which stops the ringing).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use call_control::acd::{Acd, AcdConfig, CompletedBy, Output as AcdOutput, QueueEventKind, Status};
use call_control::attendant::{DeskNote, Input as AttendantInput};
use call_control::call::{Call, CallPolicy, EndedBy, Entry, Transfer};
use call_control::driver::{self, Control, Hooks};
use common::*;
use ivr_audio::{FRAME_SAMPLES, RATE};
use sip_bridge::leg::{KeyVia, Leg, LegCommand, LegEvent};

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// What an agent's phone does, relative to when it starts ringing.
#[derive(Clone, Default)]
struct AgentScript {
    answer_after: Option<Duration>,
    key: Option<(Duration, char)>,
    /// When the agent talks (after the answer).
    speech: Vec<(Duration, Duration)>,
    hang_up_after: Option<Duration>,
}

/// What an agent's leg saw.
#[derive(Default)]
struct AgentLog {
    rang_at: Option<Duration>,
    commands: Vec<(Duration, LegCommand)>,
    /// Frames sent to the agent: (time, peak).
    heard: Vec<(Duration, f32)>,
}

struct ScriptedAgent {
    script: AgentScript,
    log: Arc<Mutex<AgentLog>>,
    events: Vec<(Duration, LegEvent)>,
    start: Option<Duration>,
    gone: bool,
}

impl Leg for ScriptedAgent {
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent> {
        if self.start.is_none() {
            self.start = Some(now);
            self.log.lock().unwrap().rang_at = Some(now);
            if let Some(a) = self.script.answer_after {
                self.events.push((now + a, LegEvent::Connected));
                if let Some((after, digit)) = self.script.key {
                    self.events.push((now + a + after, LegEvent::Key { digit, via: KeyVia::Rfc4733 }));
                }
                if let Some(h) = self.script.hang_up_after {
                    self.events.push((now + a + h, LegEvent::HungUp));
                }
            }
        }
        if self.gone {
            return None;
        }
        let i = self.events.iter().position(|(t, _)| *t <= now)?;
        Some(self.events.remove(i).1)
    }
    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], now: Duration) {
        frame.fill(0.0);
        let (Some(start), Some(answer)) = (self.start, self.script.answer_after) else { return };
        let at = now.saturating_sub(start + answer);
        if self.script.speech.iter().any(|(a, b)| *a <= at && at < *b) {
            for (k, x) in frame.iter_mut().enumerate() {
                *x = 0.3 * (k as f32 * 2.0 * std::f32::consts::PI * 500.0 / RATE as f32).sin();
            }
        }
    }
    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], _speaking: bool, now: Duration) {
        let peak = frame.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        self.log.lock().unwrap().heard.push((now, peak));
    }
    fn silent_for(&self, _now: Duration) -> Duration {
        Duration::ZERO
    }
    fn command(&mut self, command: LegCommand, now: Duration) {
        if command == LegCommand::HangUp {
            self.gone = true;
        }
        self.log.lock().unwrap().commands.push((now, command));
    }
}

/// The queue's side: a real `Acd` whose offers ring scripted agents.
struct Desk {
    records: Collect,
    acd: Acd,
    agents: Vec<(String, AgentScript, Arc<Mutex<AgentLog>>)>,
    pending: Vec<Control>,
    log: Vec<(Option<String>, QueueEventKind)>,
    callbacks: Vec<(String, &'static str)>,
    /// Voicemails kept: (seconds, peak, reason).
    voicemails: Vec<(f64, f32, &'static str)>,
    /// Hand-offs to a PBX asked for.
    dialled: Vec<String>,
    caller_hangs_up_when_ringing: bool,
    /// At this time the first agent passes the call to the second (as the console asks).
    transfer_at: Option<(Duration, &'static str, &'static str)>,
}

const CALL: &str = "call-1";

impl Desk {
    fn new(cfg: AcdConfig, agents: &[(&str, AgentScript)]) -> Self {
        let mut acd = Acd::new(cfg);
        let agents: Vec<_> = agents
            .iter()
            .map(|(name, script)| {
                acd.define_agent(name, ["en".to_string()], Duration::ZERO);
                acd.set_status(name, Status::Available, Duration::ZERO);
                (name.to_string(), script.clone(), Arc::new(Mutex::new(AgentLog::default())))
            })
            .collect();
        // The agents signing in is not what the tests look at.
        while acd.poll().is_some() {}
        Self { records: Collect::default(), acd, agents, pending: Vec::new(), log: Vec::new(), callbacks: Vec::new(), voicemails: Vec::new(), dialled: Vec::new(), caller_hangs_up_when_ringing: false, transfer_at: None }
    }

    /// An agent signed in but on break: callers wait (nobody signed in at all closes the queue).
    fn busy() -> Self {
        let mut desk = Self::new(AcdConfig::default(), &[("zed", AgentScript::default())]);
        desk.acd.set_status("zed", Status::OnBreak, Duration::ZERO);
        while desk.acd.poll().is_some() {}
        desk
    }

    fn pump(&mut self) {
        while let Some(o) = self.acd.poll() {
            match o {
                AcdOutput::Offer { agent, .. } => {
                    let (_, script, log) = self.agents.iter().find(|(n, _, _)| *n == agent).expect("a known agent").clone();
                    self.pending.push(Control::Attendant(AttendantInput::Offered { agent: agent.clone() }));
                    let leg = ScriptedAgent { script, log, events: Vec::new(), start: None, gone: false };
                    self.pending.push(Control::AgentLeg { agent, leg: Box::new(leg) });
                }
                AcdOutput::Withdraw { agent, .. } => self.pending.push(Control::Attendant(AttendantInput::Withdrawn { agent })),
                AcdOutput::Announce { position, expected_wait, .. } => {
                    self.pending.push(Control::Attendant(AttendantInput::Announce { position, expected_wait }))
                }
                AcdOutput::WaitOver { .. } => self.pending.push(Control::Attendant(AttendantInput::WaitOver)),
                AcdOutput::Closed { why, .. } => self.pending.push(Control::Attendant(AttendantInput::Closed(why))),
                AcdOutput::Transferred { to, .. } => self.pending.push(Control::Attendant(AttendantInput::TransferTo { agent: to })),
                AcdOutput::Log(e) => self.log.push((e.agent, e.kind)),
            }
        }
    }

    fn agent_log(&self, name: &str) -> std::sync::MutexGuard<'_, AgentLog> {
        self.agents.iter().find(|(n, _, _)| n == name).unwrap().2.lock().unwrap()
    }

    fn kinds(&self) -> Vec<String> {
        self.log.iter().map(|(_, k)| serde_json::to_value(k).unwrap()["event"].as_str().unwrap().to_string()).collect()
    }
}

impl Hooks for Desk {
    fn record(&mut self, entry: Entry) {
        self.records.record(entry);
    }
    fn stop(&mut self, now: Duration) -> Option<call_control::driver::Stop> {
        Hooks::stop(&mut self.records, now)
    }
    fn control(&mut self, now: Duration) -> Option<Control> {
        if let Some((_, from, to)) = self.transfer_at.filter(|(at, _, _)| now >= *at) {
            self.transfer_at = None;
            self.acd.transfer(CALL, from, to, now).expect("the transfer is accepted");
        }
        if self.acd.poll_timeout().is_some_and(|t| t <= now) {
            self.acd.on_tick(now);
        }
        self.pump();
        (!self.pending.is_empty()).then(|| self.pending.remove(0))
    }
    fn desk(&mut self, note: DeskNote, now: Duration) {
        match note {
            DeskNote::Callback { number, reason } => self.callbacks.push((number, reason)),
            DeskNote::Voicemail { audio, reason, .. } => {
                let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                self.voicemails.push((audio.len() as f64 / RATE as f64, peak, reason));
            }
            DeskNote::Dial { target, .. } => self.dialled.push(target),
            note => {
                self.acd.apply(CALL, note, now);
            }
        }
        self.pump();
    }
    fn caller_done(&mut self, now: Duration, _idle: bool) -> bool {
        if self.caller_hangs_up_when_ringing && self.agents.iter().any(|(_, _, l)| l.lock().unwrap().rang_at.is_some_and(|t| now >= t + s(2))) {
            return true;
        }
        now > Duration::from_secs(300)
    }
}

fn run(desk: &mut Desk, leg: &mut ScriptedLeg) -> Duration {
    let policy = CallPolicy { ring: Duration::ZERO, media_timeout: s(30), transfer: Transfer::Queue };
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut clock = SimClock(Duration::ZERO);
    let call = Call::new(session(), policy, Duration::ZERO).with_caller("+4930111222");
    driver::run(call, leg, &mut jobs, &mut clock, desk)
}

fn peak_between(frames: &[(Duration, f32)], from: Duration, to: Duration) -> f32 {
    frames.iter().filter(|(t, _)| *t >= from && *t < to).fold(0.0, |m, (_, p)| m.max(*p))
}

#[test]
fn the_agent_hears_the_summary_accepts_and_both_talk_then_the_caller_rates_the_call() {
    let ann = AgentScript {
        answer_after: Some(s(2)),
        key: Some((s(6), '1')),
        // Talks 2-4 s after keying 1.
        speech: vec![(s(8), s(10))],
        hang_up_after: Some(s(14)),
    };
    let mut desk = Desk::new(AcdConfig::default(), &[("ann", ann)]);
    // Key 0 asks for a person at 3 s; the caller talks while on hold (at 8-9 s: nobody may hear
    // it) and once bridged; rates the call 4.
    let mut leg = ScriptedLeg {
        events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })],
        speech: vec![(s(9), s(10)), (s(16), s(18))],
        ..Default::default()
    };
    // The rating key comes once the rating prompt has started.
    leg.events.push((s(25), LegEvent::Key { digit: '4', via: KeyVia::Rfc4733 }));
    let ended = run(&mut desk, &mut leg);

    let queued = desk.records.events("queued")[0].0;
    let answered = desk.records.events("agent_answered")[0].0;
    let bridged = desk.records.events("bridged")[0].0;
    let rang = desk.agent_log("ann").rang_at.expect("ann's phone rang");
    assert!(rang >= queued && rang < queued + Duration::from_millis(100), "rung at once: queued {queued:?}, rang {rang:?}");
    assert_eq!(answered, rang + s(2));
    assert_eq!(bridged, answered + s(6));
    {
        let log = desk.agent_log("ann");
        // The summary reached the agent (a synthesised sentence: loud) before the key...
        assert!(peak_between(&log.heard, answered, answered + s(2)) > 0.2, "the agent hears the summary");
        // ...and the caller talking on hold did not.
        assert!(peak_between(&log.heard, s(9), s(10)) < 0.01, "the caller's microphone is closed to the agent on hold");
        // Once bridged the caller's words reach the agent.
        assert!(peak_between(&log.heard, s(16), s(18)) > 0.2, "the agent hears the caller");
    }
    // The caller heard hold audio (quiet) while the agent was briefed, then the agent's voice.
    let caller_heard: Vec<(Duration, f32)> = leg.sent.iter().map(|(t, loud)| (*t, if *loud { 1.0 } else { 0.0 })).collect();
    assert!(peak_between(&caller_heard, answered, answered + s(2)) < 0.5, "no speech to the caller during the briefing");
    assert!(peak_between(&caller_heard, bridged + s(2), bridged + s(4)) > 0.5, "the caller hears the agent");
    assert!(desk.records.events("barge_in").is_empty(), "the bot no longer listens");
    // The agent hung up; the caller was asked for a rating and keyed 4.
    let csat = desk.records.events("csat");
    assert_eq!(csat[0].1.as_ref().unwrap()["rating"], 4);
    assert!(desk.records.said(voice_pipeline::session::Speaker::Bot).iter().any(|t| t.contains("rate this call")));
    assert_eq!(desk.records.ended(), Some((EndedBy::Bot, ended)));
    assert_eq!(desk.kinds(), ["enter", "offered", "connect", "complete"]);
    let complete = &desk.log[3].1;
    assert!(matches!(complete, QueueEventKind::Complete { by: CompletedBy::Agent, talk_secs, .. } if (*talk_secs - 8.0).abs() < 0.1), "{complete:?}");
}

#[test]
fn pressing_one_while_waiting_leaves_a_callback_on_the_callers_number() {
    // Nobody is available: the caller waits, hears their position, presses 1 and confirms.
    let mut desk = Desk::busy();
    let mut leg = ScriptedLeg {
        events: vec![
            (s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 }),
            (s(12), LegEvent::Key { digit: '1', via: KeyVia::Rfc4733 }),
            (s(16), LegEvent::Key { digit: '1', via: KeyVia::Rfc4733 }),
        ],
        ..Default::default()
    };
    let ended = run(&mut desk, &mut leg);
    let said = desk.records.said(voice_pipeline::session::Speaker::Bot);
    assert!(said.iter().any(|t| t.starts_with("You are number 1 in the queue")), "{said:?}");
    assert!(said.iter().any(|t| t.contains("We will call you back at 4 9 3 0")), "{said:?}");
    assert_eq!(desk.callbacks, [("+4930111222".to_string(), "queue_key")]);
    assert_eq!(desk.kinds(), ["enter", "exit_with_key"]);
    assert_eq!(desk.records.ended(), Some((EndedBy::Bot, ended)));
}

#[test]
fn a_caller_hanging_up_while_the_agent_rings_stops_the_ringing() {
    let bob = AgentScript { answer_after: None, ..Default::default() };
    let mut desk = Desk::new(AcdConfig::default(), &[("bob", bob)]);
    desk.caller_hangs_up_when_ringing = true;
    let mut leg = ScriptedLeg { events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })], ..Default::default() };
    let ended = run(&mut desk, &mut leg);
    let log = desk.agent_log("bob");
    let rang = log.rang_at.expect("bob's phone rang");
    assert_eq!(log.commands, [(ended, LegCommand::HangUp)], "the ringing is stopped when the caller goes");
    assert_eq!(ended, rang + s(2));
    drop(log);
    assert_eq!(desk.kinds(), ["enter", "offered", "abandon"]);
    assert_eq!(desk.records.ended().map(|(by, _)| by), Some(EndedBy::Caller));
}

#[test]
fn a_waiting_caller_whose_media_stops_leaves_the_queue_as_abandoned() {
    // Nobody is available; the caller's line goes dead (no BYE) while waiting.
    let mut desk = Desk::busy();
    let mut leg = ScriptedLeg { events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })], media_stops: Some(s(10)), ..Default::default() };
    run(&mut desk, &mut leg);
    assert_eq!(desk.records.ended().map(|(by, _)| by), Some(EndedBy::MediaTimeout));
    assert_eq!(desk.kinds(), ["enter", "abandon"], "no ghost left in the queue");
    assert_eq!(desk.acd.waiting(), 0);
}

#[test]
fn a_waiting_caller_hears_a_goodbye_when_the_server_stops_and_leaves_the_queue() {
    let mut desk = Desk::busy();
    desk.records.stops = vec![(s(12), call_control::driver::Stop::Shutdown)];
    let mut leg = ScriptedLeg { events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })], ..Default::default() };
    let ended = run(&mut desk, &mut leg);
    assert!(desk.records.said(voice_pipeline::session::Speaker::Bot).iter().any(|t| t.contains("we have to end this call")));
    assert_eq!(desk.records.ended(), Some((EndedBy::Shutdown, ended)));
    assert!(ended < s(20), "{ended:?}");
    assert_eq!(desk.kinds(), ["enter", "abandon"]);
}

#[test]
fn with_nobody_signed_in_the_caller_leaves_a_voicemail_kept_before_the_thanks() {
    // No agent at all: the queue is closed; key 2 for a message, which starts after the prompt
    // and the tone, and ends with the hash key.
    let mut desk = Desk::new(AcdConfig::default(), &[]);
    let mut leg = ScriptedLeg {
        events: vec![
            (s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 }),
            (s(12), LegEvent::Key { digit: '2', via: KeyVia::Rfc4733 }),
            (s(22), LegEvent::Key { digit: '#', via: KeyVia::Rfc4733 }),
        ],
        // Talking during the prompt (not recorded) and after the tone (recorded).
        speech: vec![(s(12), s(13)), (s(17), s(20))],
        ..Default::default()
    };
    let ended = run(&mut desk, &mut leg);
    let said = desk.records.said(voice_pipeline::session::Speaker::Bot);
    assert!(said.iter().any(|t| t.contains("no colleague is available")), "{said:?}");
    assert!(said.iter().any(|t| t.contains("leave a message, press 2")), "{said:?}");
    assert_eq!(desk.kinds(), ["closed"], "the caller never joined the queue");
    assert_eq!(desk.voicemails.len(), 1, "one message kept");
    let (secs, peak, reason) = desk.voicemails[0];
    assert_eq!(reason, "no_agents");
    assert!(peak > 0.2, "the caller's words are in it");
    // From the end of the tone (the prompt is a second, the tone 0.4 s, after the key at 12 s) to
    // the hash key at 22 s.
    assert!((8.0..9.5).contains(&secs), "{secs}");
    let thanked = said.iter().position(|t| t.contains("message has been recorded")).expect("thanked");
    assert!(thanked > said.iter().position(|t| t.contains("leave your message")).unwrap());
    assert_eq!(desk.records.events("voicemail").len(), 1);
    assert_eq!(desk.records.ended(), Some((EndedBy::Bot, ended)));
}

#[test]
fn after_hours_the_caller_is_offered_a_callback_instead_of_the_queue() {
    let mut desk = Desk::new(AcdConfig::default(), &[("ann", AgentScript { answer_after: Some(s(1)), ..Default::default() })]);
    desk.acd.set_open(false);
    let mut leg = ScriptedLeg {
        events: vec![
            (s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 }),
            (s(10), LegEvent::Key { digit: '1', via: KeyVia::Rfc4733 }),
            (s(14), LegEvent::Key { digit: '1', via: KeyVia::Rfc4733 }),
        ],
        ..Default::default()
    };
    run(&mut desk, &mut leg);
    let said = desk.records.said(voice_pipeline::session::Speaker::Bot);
    assert!(said.iter().any(|t| t.contains("not available at this hour")), "{said:?}");
    assert!(desk.agent_log("ann").rang_at.is_none(), "an available agent is not rung after hours");
    assert_eq!(desk.callbacks, [("+4930111222".to_string(), "after_hours")]);
    assert!(desk.voicemails.is_empty());
    assert_eq!(desk.kinds(), ["closed"]);
}

#[test]
fn a_caller_hanging_up_during_the_message_leaves_it_kept() {
    let mut desk = Desk::new(AcdConfig::default(), &[]);
    let mut leg = ScriptedLeg {
        events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 }), (s(12), LegEvent::Key { digit: '2', via: KeyVia::Rfc4733 }), (s(20), LegEvent::HungUp)],
        speech: vec![(s(16), s(19))],
        ..Default::default()
    };
    run(&mut desk, &mut leg);
    assert_eq!(desk.voicemails.len(), 1, "kept on the hang-up");
    assert!(desk.voicemails[0].1 > 0.2);
    assert_eq!(desk.records.ended().map(|(by, _)| by), Some(EndedBy::Caller));
}

#[test]
fn an_agent_passes_the_call_to_a_colleague_who_hears_the_summary_and_accepts() {
    // Ann takes the call, talks, then passes it to bob (the console's transfer): her leg is hung
    // up, the caller holds, bob's phone rings, he hears the summary, keys 1 and talks.
    let ann = AgentScript { answer_after: Some(s(1)), key: Some((s(3), '1')), speech: vec![(s(5), s(6))], hang_up_after: None };
    let bob = AgentScript { answer_after: Some(s(2)), key: Some((s(4), '1')), speech: vec![(s(6), s(8))], hang_up_after: Some(s(12)) };
    let mut desk = Desk::new(AcdConfig::default(), &[("ann", ann), ("bob", bob)]);
    // Longest idle first: ann became available before bob (same time: by name).
    desk.transfer_at = Some((s(20), "ann", "bob"));
    let mut leg = ScriptedLeg { events: vec![(s(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })], ..Default::default() };
    leg.events.push((s(45), LegEvent::Key { digit: '5', via: KeyVia::Rfc4733 }));
    run(&mut desk, &mut leg);
    let ann_hung_up = desk.agent_log("ann").commands.iter().find(|(_, c)| *c == LegCommand::HangUp).map(|(t, _)| *t);
    assert_eq!(ann_hung_up, Some(s(20)), "ann's leg is hung up at the transfer");
    let bob_rang = desk.agent_log("bob").rang_at.expect("bob's phone rang");
    assert!(bob_rang >= s(20) && bob_rang < s(20) + Duration::from_millis(100), "{bob_rang:?}");
    {
        let log = desk.agent_log("bob");
        assert!(peak_between(&log.heard, bob_rang + s(2), bob_rang + s(4)) > 0.2, "bob hears the summary");
    }
    assert_eq!(desk.records.events("bridged").len(), 2, "bridged with ann, then with bob");
    assert!(desk.records.said(voice_pipeline::session::Speaker::Bot).iter().any(|t| t.contains("pass you to a colleague")));
    assert_eq!(desk.kinds(), ["enter", "offered", "connect", "transfer", "offered", "connect", "complete"]);
    assert_eq!(desk.records.events("csat")[0].1.as_ref().unwrap()["rating"], 5);
}
