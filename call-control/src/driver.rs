//! The one loop that runs a call: every 20 ms frame, the leg's events, the jobs' results, the
//! caller's audio and the bot's go through the [`Call`]; what it asks for goes to the leg, the
//! job lanes and the records. The live server runs it on a real clock with the models' worker
//! threads; the simulator on a simulated clock with the jobs' measured (or fixed) times; the
//! in-memory tests with scripted legs and job results. Only the [`Clock`], the [`Jobs`] and the
//! [`Leg`] differ.

use std::time::Duration;

use ivr_audio::{FRAME, FRAME_SAMPLES};
use sip_bridge::leg::{Leg, LegEvent};
use voice_pipeline::session::{Job, JobId, JobResult};

use crate::attendant::{self, DeskNote};
use crate::call::{Call, Entry, Input, Output};

/// The call's time.
pub trait Clock {
    fn now(&self) -> Duration;
    /// Returns at call time `at` (at once when that has passed).
    fn wait_until(&mut self, at: Duration);
}

/// A job's result, or part of an LLM's answer.
#[derive(Debug, Clone)]
pub enum Delivery {
    Delta(String),
    Done(JobResult),
}

/// Where a call's work is done.
pub trait Jobs {
    fn submit(&mut self, id: JobId, job: Job, now: Duration);
    fn cancel(&mut self, id: JobId);
    /// A result ready by `now`, with the call time it became ready.
    fn poll(&mut self, now: Duration) -> Option<(Duration, JobId, Delivery)>;
    /// Nothing is queued or running.
    fn idle(&self) -> bool;
    /// The call is over: drop whatever it still has queued.
    fn end(&mut self) {}
}

/// What the server tells a call from outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Draining,
    Shutdown,
}

/// What the queue tells a call handed to people.
pub enum Control {
    /// Announcements, offers and their withdrawal, the end of the longest wait.
    Attendant(attendant::Input),
    /// The offered agent's leg (ringing): the call drives it from now on.
    AgentLeg { agent: String, leg: Box<dyn Leg + Send> },
}

/// A call's surroundings besides its leg and jobs.
pub trait Hooks {
    /// A message from the queue, if any (polled once a frame).
    fn control(&mut self, _now: Duration) -> Option<Control> {
        None
    }
    /// A note for the queue.
    fn desk(&mut self, _note: DeskNote, _now: Duration) {}
    /// What a call leaves behind, as it happens.
    fn record(&mut self, entry: Entry);
    /// A message from the server, if any (polled once a frame).
    fn stop(&mut self, _now: Duration) -> Option<Stop> {
        None
    }
    /// Both directions of one connected frame (for a recording).
    fn frames(&mut self, _caller: &[f32; FRAME_SAMPLES], _bot: &[f32; FRAME_SAMPLES]) {}
    /// The frame due at `due` went out at `sent` (for the late-frame count).
    fn frame_sent(&mut self, _due: Duration, _sent: Duration) {}
    /// One tick: due at `due`, begun at `woke`, its work done at `done`.
    fn tick(&mut self, _due: Duration, _woke: Duration, _done: Duration) {}
    /// Ends a call that has nothing more to do: the simulator's caller hangs up when its recording
    /// (and a tail) is over and the bot is idle. Live calls never say so: only the call decides.
    fn caller_done(&mut self, _now: Duration, _idle: bool) -> bool {
        false
    }
}

/// Runs the call to its end; returns the call time it ended at.
pub fn run(mut call: Call, leg: &mut dyn Leg, jobs: &mut dyn Jobs, clock: &mut dyn Clock, hooks: &mut dyn Hooks) -> Duration {
    let mut inbound = [0.0f32; FRAME_SAMPLES];
    let mut outbound = [0.0f32; FRAME_SAMPLES];
    let (mut agent_in, mut agent_out) = ([0.0f32; FRAME_SAMPLES], [0.0f32; FRAME_SAMPLES]);
    // The agent's leg during a warm transfer.
    let mut agent: Option<Box<dyn Leg + Send>> = None;
    let start = clock.now();
    let mut tick = 0u32;
    route(&mut call, leg, None, jobs, hooks, start);
    loop {
        let due = start + FRAME * tick;
        clock.wait_until(due);
        let now = clock.now();
        // Signalling first (it is quick), then the frame due now, before anything slow (the VAD).
        while let Some(e) = leg.poll_event(now) {
            call.handle(Input::Leg(e), now);
        }
        if let Some(s) = hooks.stop(now) {
            call.handle(if s == Stop::Draining { Input::Draining } else { Input::Shutdown }, now);
        }
        while let Some(c) = hooks.control(now) {
            match c {
                Control::Attendant(input) => call.handle(Input::Attendant(input), now),
                Control::AgentLeg { agent: name, leg } => {
                    if let Some(mut old) = agent.replace(leg) {
                        old.command(sip_bridge::leg::LegCommand::HangUp, now);
                    }
                    call.handle(Input::Attendant(attendant::Input::AgentLeg { agent: name }), now);
                }
            }
            route(&mut call, leg, agent.as_mut(), jobs, hooks, now);
        }
        if let Some(a) = agent.as_deref_mut() {
            while let Some(e) = a.poll_event(now) {
                call.handle(Input::Attendant(attendant::Input::Agent(e)), now);
            }
        }
        let connected = call.is_connected();
        if let Some(speaking) = call.fill_frame(&mut outbound, now) {
            leg.send(&outbound, speaking, now);
            hooks.frame_sent(due, clock.now());
        }
        while let Some((at, job, d)) = jobs.poll(now) {
            match d {
                Delivery::Delta(text) => call.handle(Input::Delta { job, text: &text }, at),
                Delivery::Done(result) => call.handle(Input::Done { job, result }, at),
            }
        }
        if let Some(a) = agent.as_deref_mut() {
            if let Some(speaking) = call.fill_agent_frame(&mut agent_out, now) {
                a.send(&agent_out, speaking, now);
            }
            a.receive(&mut agent_in, now);
            call.agent_audio(&agent_in);
        }
        leg.receive(&mut inbound, now);
        call.audio(&inbound, now);
        if connected {
            hooks.frames(&inbound, &outbound);
        }
        call.on_tick(leg.silent_for(now), now);
        if hooks.caller_done(now, jobs.idle() && !call.is_speaking()) {
            call.handle(Input::Leg(LegEvent::HungUp), now);
        }
        route(&mut call, leg, agent.as_mut(), jobs, hooks, now);
        if agent.is_some() && !call.has_agent_leg() {
            agent = None;
        }
        hooks.tick(due, now, clock.now());
        if call.is_ended() {
            if let Some(mut a) = agent.take() {
                a.command(sip_bridge::leg::LegCommand::HangUp, now);
            }
            jobs.end();
            return now;
        }
        tick += 1;
    }
}

fn route(call: &mut Call, leg: &mut dyn Leg, mut agent: Option<&mut Box<dyn Leg + Send>>, jobs: &mut dyn Jobs, hooks: &mut dyn Hooks, now: Duration) {
    while let Some(o) = call.poll() {
        match o {
            Output::Leg(c) => leg.command(c, now),
            Output::Agent(c) => {
                if let Some(a) = agent.as_mut() {
                    a.command(c, now);
                }
            }
            Output::Desk(note) => hooks.desk(note, now),
            Output::Job { id, job } => jobs.submit(id, job, now),
            Output::Cancel(id) => jobs.cancel(id),
            Output::Record(e) => hooks.record(e),
        }
    }
}

