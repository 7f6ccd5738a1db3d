//! A whole call in simulated time: a caller recording goes in frame by frame, the session's jobs
//! run on the real models, and their results come back at the simulated time they would have:
//! each kind of work (transcription, conversation, LLM, synthesis) is one worker that does one job
//! at a time, and a job takes what it measurably took (or a fixed time, for deterministic tests).
//! Nothing waits for the audio to play, so a call runs faster than real time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use dialogue::manager::{Action, Conversation};
use ivr_audio::{FRAME, FRAME_SAMPLES, RATE};
use sip_bridge::leg::{KeyVia, Leg, LegCommand, LegEvent};
use voice_pipeline::session::workers::Workers;
use voice_pipeline::session::{CallSession, Job, JobId, JobResult, Speaker, TurnTiming};

use crate::call::{Call, CallPolicy, EndedBy, Entry, Transfer};
use crate::driver::{Clock, Delivery, Hooks, Jobs, Stop};

/// The kinds of work, each done by one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Stt,
    Dialogue,
    Llm,
    Tts,
    Turn,
}

impl Lane {
    fn of(job: &Job) -> Self {
        match job {
            Job::Transcribe { .. } => Lane::Stt,
            Job::Understand(_) => Lane::Dialogue,
            Job::Llm(_) => Lane::Llm,
            Job::Synthesize { .. } => Lane::Tts,
            Job::EndOfTurn { .. } => Lane::Turn,
        }
    }
}

/// How long simulated jobs take.
#[derive(Debug, Clone, Default)]
pub struct JobTimes {
    /// Per lane, a fixed duration instead of the measured one (deterministic tests).
    pub fixed: Vec<(Lane, Duration)>,
    /// Per lane, extra time on top (a slow stage).
    pub extra: Vec<(Lane, Duration)>,
    /// Per lane, every job fails (a broken stage).
    pub fail: Vec<Lane>,
}

/// The caller's side of the line.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// 16 kHz mono.
    pub audio: Vec<f32>,
    /// Keys pressed, at call times.
    pub keys: Vec<(Duration, char)>,
    /// The bot's voice returned in the caller's channel: (delay, gain).
    pub echo: Option<(Duration, f32)>,
    /// The calling number.
    pub caller_id: Option<String>,
    /// When the service is told to stop (SIGTERM), if it is.
    pub shutdown_at: Option<Duration>,
}

/// Everything that happened.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CallRecord {
    /// Stereo at 16 kHz is written from these: what the caller's channel carried, what the bot sent.
    #[serde(skip)]
    pub caller_channel: Vec<f32>,
    #[serde(skip)]
    pub bot_channel: Vec<f32>,
    /// Per 20 ms frame: was the bot audible.
    #[serde(skip)]
    pub bot_sounding: Vec<bool>,
    pub transcript: Vec<Line>,
    pub actions: Vec<Action>,
    pub turns: Vec<TurnTiming>,
    /// When the caller's speech paused the bot (seconds into the call).
    pub barge_ins: Vec<f64>,
    /// Jobs run per lane, and their total busy time.
    pub jobs: Vec<(Lane, usize, f64)>,
    pub duration_secs: f64,
    /// Who ended the call.
    pub ended_by: Option<EndedBy>,
    /// The call's id in the store, when it was written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub who: Speaker,
    pub text: String,
    pub at_secs: f64,
}

impl CallRecord {
    /// The first frame at or after `from` in which the bot was silent.
    pub fn bot_silent_from(&self, from: Duration) -> Option<Duration> {
        let first = (from.as_secs_f64() * 50.0).floor() as usize;
        (first..self.bot_sounding.len()).find(|&i| !self.bot_sounding[i]).map(|i| Duration::from_millis(i as u64 * 20))
    }

    /// Whether the bot was audible throughout `from..to`.
    pub fn bot_sounding_throughout(&self, from: Duration, to: Duration) -> bool {
        let (a, b) = ((from.as_secs_f64() * 50.0) as usize, (to.as_secs_f64() * 50.0) as usize);
        b <= self.bot_sounding.len() && self.bot_sounding[a..b].iter().all(|&s| s)
    }
}

struct Pending {
    id: JobId,
    job: Job,
    issued: Duration,
}

pub struct Simulator<'a> {
    pub workers: Workers<'a>,
    pub times: JobTimes,
    /// Wall-clock time at the call's start (the conversation's "now").
    pub wall_start: jiff::Timestamp,
    /// Keep simulating this long after the caller's recording ends (for the bot's last reply, or
    /// its silence handling).
    pub tail: Duration,
    /// Pace the call to the wall clock (a real call's timing, jobs competing for the cores as they
    /// would) instead of running as fast as the work allows.
    pub realtime: bool,
    /// Write the call to the store as a live call is written (its start at `wall_start`), with
    /// the caller's history from there (calls this week).
    pub record: Option<crate::record::RecordSink>,
}

impl Simulator<'_> {
    /// Runs one call through the same driver and call control as a live call: the caller's
    /// recording is its leg, the clock is simulated, and the jobs run on the real models with
    /// their results delivered at the simulated time they would have come.
    pub fn run(&self, session: CallSession, caller: &Caller) -> CallRecord {
        let policy = CallPolicy { ring: Duration::ZERO, media_timeout: Duration::MAX, transfer: Transfer::HangUp };
        let end_of_caller = Duration::from_secs_f64(caller.audio.len() as f64 / RATE as f64);
        let from = caller.caller_id.clone().unwrap_or_else(|| "anonymous".into());
        let mut leg = SimLeg { caller, keys: caller.keys.iter().copied().collect(), connect: false, rec: CallRecord::default() };
        // A returning caller's history from the store, as a live call reads it.
        let mut conversation = Conversation::new(caller.caller_id.as_deref());
        let mut session = session;
        if let Some(h) = self.record.as_ref().and_then(|r| r.history(&from, self.wall_start, Duration::from_secs(5))) {
            session = crate::record::apply_history(&h, &mut conversation, session);
        }
        let call = Call::new(session, policy, Duration::ZERO);
        let mut jobs = SimJobs {
            sim: self,
            conversation,
            queues: [Lane::Stt, Lane::Dialogue, Lane::Llm, Lane::Tts, Lane::Turn].into_iter().map(|l| (l, VecDeque::new(), Duration::ZERO)).collect(),
            cancelled: HashSet::new(),
            due: BinaryHeap::new(),
            results: Default::default(),
            seq: 0,
            busy: Default::default(),
        };
        let mut clock = SimClock { now: Duration::ZERO, realtime: self.realtime, wall: Instant::now() };
        let log = self.record.clone().map(|sink| crate::record::CallLog::new(sink, None, from, "simulator", self.wall_start));
        let mut hooks = SimHooks { rec: CallRecord::default(), shutdown_at: caller.shutdown_at, hang_up_at: end_of_caller + self.tail, log, wall_start: self.wall_start };
        let ended = crate::driver::run(call, &mut leg, &mut jobs, &mut clock, &mut hooks);
        let mut rec = hooks.rec;
        rec.call_id = hooks.log.map(|l| l.call.id);
        rec.caller_channel = leg.rec.caller_channel;
        rec.bot_channel = leg.rec.bot_channel;
        rec.bot_sounding = leg.rec.bot_sounding;
        rec.jobs = jobs.busy.into_iter().map(|(l, (n, s))| (l, n, s)).collect();
        rec.duration_secs = (ended + FRAME).as_secs_f64();
        rec
    }
}

/// The simulated caller: its recording (with the bot's echo mixed in, if asked) and its keys.
struct SimLeg<'c> {
    caller: &'c Caller,
    keys: VecDeque<(Duration, char)>,
    /// Answered: connected on the next poll.
    connect: bool,
    /// The two channels as they went.
    rec: CallRecord,
}

impl Leg for SimLeg<'_> {
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent> {
        if std::mem::take(&mut self.connect) {
            return Some(LegEvent::Connected);
        }
        if self.keys.front().is_some_and(|(t, _)| *t <= now) {
            let (_, digit) = self.keys.pop_front()?;
            return Some(LegEvent::Key { digit, via: KeyVia::Script });
        }
        None
    }

    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], _now: Duration) {
        let i = self.rec.caller_channel.len();
        for (k, s) in frame.iter_mut().enumerate() {
            *s = self.caller.audio.get(i + k).copied().unwrap_or(0.0);
        }
        if let Some((delay, gain)) = self.caller.echo {
            let d = (delay.as_secs_f64() * RATE as f64) as usize;
            for (k, s) in frame.iter_mut().enumerate() {
                if let Some(b) = (i + k).checked_sub(d).and_then(|j| self.rec.bot_channel.get(j)) {
                    *s += gain * b;
                }
            }
        }
        self.rec.caller_channel.extend_from_slice(frame);
    }

    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, _now: Duration) {
        self.rec.bot_channel.extend_from_slice(frame);
        self.rec.bot_sounding.push(speaking);
    }

    fn silent_for(&self, _now: Duration) -> Duration {
        Duration::ZERO
    }

    fn command(&mut self, command: LegCommand, _now: Duration) {
        if command == LegCommand::Answer {
            self.connect = true;
        }
    }
}

/// Simulated time; with `realtime`, paced to the wall clock.
struct SimClock {
    now: Duration,
    realtime: bool,
    wall: Instant,
}

impl Clock for SimClock {
    fn now(&self) -> Duration {
        self.now
    }
    fn wait_until(&mut self, at: Duration) {
        self.now = self.now.max(at);
        if self.realtime {
            std::thread::sleep(self.now.saturating_sub(self.wall.elapsed()));
        }
    }
}

/// Each lane is one worker that does one job at a time; a job runs on the real models when its
/// worker is free and its result is due when it would have finished (its measured time, or the
/// fixed one).
struct SimJobs<'s, 'w> {
    sim: &'s Simulator<'w>,
    conversation: Conversation,
    queues: Vec<(Lane, VecDeque<Pending>, Duration)>,
    cancelled: HashSet<JobId>,
    /// Results waiting for their simulated time: (time, order, job).
    due: BinaryHeap<Reverse<(Duration, u64, JobId)>>,
    results: std::collections::HashMap<u64, Delivery>,
    seq: u64,
    busy: std::collections::BTreeMap<Lane, (usize, f64)>,
}

impl SimJobs<'_, '_> {
    /// Starts what the free workers can (up to one frame ahead, as a worker would pick a job up
    /// while the frame goes by).
    fn start_free(&mut self, now: Duration) {
        for (lane, queue, free_at) in self.queues.iter_mut() {
            while *free_at <= now + FRAME {
                let Some(p) = queue.pop_front() else { break };
                if self.cancelled.contains(&p.id) {
                    continue;
                }
                let start = (*free_at).max(p.issued);
                let (result, deltas, took) = self.sim.execute(*lane, &p.job, &mut self.conversation, start);
                let times = &self.sim.times;
                let took = times.fixed.iter().find(|(l, _)| l == lane).map(|(_, d)| *d).unwrap_or(took)
                    + times.extra.iter().filter(|(l, _)| l == lane).map(|(_, d)| *d).sum::<Duration>();
                *free_at = start + took;
                let b = self.busy.entry(*lane).or_default();
                b.0 += 1;
                b.1 += took.as_secs_f64();
                for (at, text) in deltas {
                    self.seq += 1;
                    self.due.push(Reverse((start + at.min(took), self.seq, p.id)));
                    self.results.insert(self.seq, Delivery::Delta(text));
                }
                self.seq += 1;
                self.due.push(Reverse((start + took, self.seq, p.id)));
                self.results.insert(self.seq, Delivery::Done(result));
            }
        }
    }
}

impl Jobs for SimJobs<'_, '_> {
    fn submit(&mut self, id: JobId, job: Job, now: Duration) {
        let lane = Lane::of(&job);
        if let Some(q) = self.queues.iter_mut().find(|(l, _, _)| *l == lane) {
            q.1.push_back(Pending { id, job, issued: now });
        }
        self.start_free(now);
    }

    fn cancel(&mut self, id: JobId) {
        self.cancelled.insert(id);
    }

    fn poll(&mut self, now: Duration) -> Option<(Duration, JobId, Delivery)> {
        self.start_free(now);
        while self.due.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
            let Reverse((t, s, id)) = self.due.pop()?;
            if let Some(d) = self.results.remove(&s) {
                return Some((t, id, d));
            }
        }
        None
    }

    fn idle(&self) -> bool {
        self.due.is_empty() && self.queues.iter().all(|(_, q, _)| q.is_empty())
    }
}

/// Collects what the call leaves behind; tells the call of the shutdown and ends it when the
/// caller's recording and the tail are over and nothing is left to do (or a minute after that).
struct SimHooks {
    rec: CallRecord,
    shutdown_at: Option<Duration>,
    hang_up_at: Duration,
    log: Option<crate::record::CallLog>,
    wall_start: jiff::Timestamp,
}

impl Hooks for SimHooks {
    fn record(&mut self, entry: Entry) {
        if let Some(log) = self.log.as_mut() {
            log.write(entry.clone(), self.wall_start);
        }
        match entry {
            Entry::Said { who, text, at } => self.rec.transcript.push(Line { who, text, at_secs: at.as_secs_f64() }),
            Entry::Timing(t) => self.rec.turns.push(t),
            Entry::Action { action, .. } => self.rec.actions.push(action),
            Entry::Event { kind: "barge_in", at, .. } => self.rec.barge_ins.push(at.as_secs_f64()),
            Entry::Ended { by, .. } => self.rec.ended_by = Some(by),
            _ => {}
        }
    }

    fn stop(&mut self, now: Duration) -> Option<Stop> {
        self.shutdown_at.filter(|t| *t <= now && *t + FRAME > now).map(|_| Stop::Shutdown)
    }

    fn caller_done(&mut self, now: Duration, idle: bool) -> bool {
        now >= self.hang_up_at && idle || now >= self.hang_up_at + Duration::from_secs(60)
    }
}

impl Simulator<'_> {
    /// Runs one job for real; returns its result, the LLM's streamed pieces with their times, and
    /// how long it took.
    fn execute(&self, lane: Lane, job: &Job, conversation: &mut Conversation, at: Duration) -> (JobResult, Vec<(Duration, String)>, Duration) {
        let started = Instant::now();
        let mut deltas = Vec::new();
        if self.times.fail.contains(&lane) {
            return (JobResult::Failed(format!("{lane:?} failed (simulated)")), deltas, Duration::from_millis(10));
        }
        let result = match job {
            Job::Transcribe { audio } => self.workers.transcribe(audio),
            Job::Understand(input) => {
                let wall = self.wall_start + jiff::SignedDuration::try_from(at).unwrap_or_default();
                self.workers.understand(conversation, input, wall)
            }
            Job::Llm(job) => self.workers.llm(job, |piece| deltas.push((started.elapsed(), piece.to_string()))),
            Job::Synthesize { text, language } => self.workers.synthesize(text, language),
            Job::EndOfTurn { audio } => self.workers.end_of_turn(audio),
        };
        (result, deltas, started.elapsed())
    }
}

/// Writes the call as a stereo WAV: the caller's channel left, the bot right (16 kHz, 16 bit).
pub fn write_stereo(path: &std::path::Path, rec: &CallRecord) -> Result<(), hound::Error> {
    let spec = hound::WavSpec { channels: 2, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec)?;
    let n = rec.caller_channel.len().max(rec.bot_channel.len());
    let pcm = |s: f32| (s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16;
    for i in 0..n {
        w.write_sample(pcm(rec.caller_channel.get(i).copied().unwrap_or(0.0)))?;
        w.write_sample(pcm(rec.bot_channel.get(i).copied().unwrap_or(0.0)))?;
    }
    w.finalize()
}
