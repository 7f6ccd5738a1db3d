//! A whole call in simulated time: a caller recording goes in frame by frame, the session's jobs
//! run on the real models, and their results come back at the simulated time they would have:
//! each kind of work (transcription, conversation, LLM, synthesis) is one worker that does one job
//! at a time, and a job takes what it measurably took (or a fixed time, for deterministic tests).
//! Nothing waits for the audio to play, so a call runs faster than real time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use dialogue::manager::{Action, Conversation};

use super::workers::Workers;
use super::{CallSession, Event, Job, JobId, JobResult, Output, Speaker, TurnTiming};
use ivr_audio::{FRAME_SAMPLES, RATE};

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
}

impl Simulator<'_> {
    /// Runs one call.
    pub fn run(&self, mut session: CallSession, caller: &Caller) -> CallRecord {
        let mut conversation = Conversation::new(caller.caller_id.as_deref());
        let mut rec = CallRecord::default();
        let mut queues: Vec<(Lane, VecDeque<Pending>, Duration)> =
            [Lane::Stt, Lane::Dialogue, Lane::Llm, Lane::Tts, Lane::Turn].into_iter().map(|l| (l, VecDeque::new(), Duration::ZERO)).collect();
        let mut cancelled: HashSet<JobId> = HashSet::new();
        // Results waiting for their simulated time: (time, order, event).
        let mut due: BinaryHeap<Reverse<(Duration, u64, JobId)>> = BinaryHeap::new();
        let mut results: std::collections::HashMap<u64, Delivery> = Default::default();
        let mut seq = 0u64;
        let mut busy: std::collections::BTreeMap<Lane, (usize, f64)> = Default::default();
        let mut keys: VecDeque<(Duration, char)> = caller.keys.iter().copied().collect();
        let end_of_caller = Duration::from_secs_f64(caller.audio.len() as f64 / RATE as f64);
        let frame_time = Duration::from_millis(20);
        let mut out = vec![0.0f32; FRAME_SAMPLES];
        let mut now = Duration::ZERO;
        let wall = Instant::now();

        session.handle(Event::Answered, now);
        loop {
            if self.realtime {
                std::thread::sleep(now.saturating_sub(wall.elapsed()));
            }
            // 1. The caller's frame (with the bot's echo, if any) and keys.
            let i = rec.bot_channel.len();
            let mut frame: Vec<f32> = (i..i + FRAME_SAMPLES).map(|j| caller.audio.get(j).copied().unwrap_or(0.0)).collect();
            if let Some((delay, gain)) = caller.echo {
                let d = (delay.as_secs_f64() * RATE as f64) as usize;
                for (k, s) in frame.iter_mut().enumerate() {
                    if let Some(b) = (i + k).checked_sub(d).and_then(|j| rec.bot_channel.get(j)) {
                        *s += gain * b;
                    }
                }
            }
            session.handle(Event::Audio(&frame), now);
            rec.caller_channel.extend_from_slice(&frame);
            while keys.front().is_some_and(|(t, _)| *t <= now) {
                let (_, k) = keys.pop_front().expect("checked");
                session.handle(Event::Dtmf(k), now);
            }
            if caller.shutdown_at.is_some_and(|t| t <= now && t + frame_time > now) {
                session.handle(Event::Shutdown, now);
            }
            // 2. Results that are due.
            while due.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                let Reverse((t, s, id)) = due.pop().expect("checked");
                match results.remove(&s) {
                    Some(Delivery::Delta(text)) => session.handle(Event::LlmDelta { job: id, text: &text }, t),
                    Some(Delivery::Done(result)) => session.handle(Event::Done { job: id, result }, t),
                    None => {}
                }
            }
            // 3. The bot's frame.
            session.fill_frame(&mut out, now);
            rec.bot_channel.extend_from_slice(&out);
            rec.bot_sounding.push(session.is_speaking());
            // 4. What the session asked for.
            while let Some(o) = session.poll() {
                match o {
                    Output::Job { id, job } => {
                        let lane = Lane::of(&job);
                        if let Some(q) = queues.iter_mut().find(|(l, _, _)| *l == lane) {
                            q.1.push_back(Pending { id, job, issued: now });
                        }
                    }
                    Output::Cancel(id) => {
                        cancelled.insert(id);
                    }
                    Output::Action(a) => rec.actions.push(a),
                    Output::Said { who, text, at } => rec.transcript.push(Line { who, text, at_secs: at.as_secs_f64() }),
                    Output::Timing(t) => rec.turns.push(t),
                    Output::BargeIn { at } => rec.barge_ins.push(at.as_secs_f64()),
                }
            }
            // 5. Start what the free workers can; a job's result is due when it would have finished.
            for (lane, queue, free_at) in queues.iter_mut() {
                while *free_at <= now + frame_time {
                    let Some(p) = queue.pop_front() else { break };
                    if cancelled.contains(&p.id) {
                        continue;
                    }
                    let start = (*free_at).max(p.issued);
                    let (result, deltas, took) = self.execute(*lane, &p.job, &mut conversation, start);
                    let took = self.times.fixed.iter().find(|(l, _)| l == lane).map(|(_, d)| *d).unwrap_or(took)
                        + self.times.extra.iter().filter(|(l, _)| l == lane).map(|(_, d)| *d).sum::<Duration>();
                    *free_at = start + took;
                    let b = busy.entry(*lane).or_default();
                    b.0 += 1;
                    b.1 += took.as_secs_f64();
                    for (at, text) in deltas {
                        seq += 1;
                        due.push(Reverse((start + at.min(took), seq, p.id)));
                        results.insert(seq, Delivery::Delta(text));
                    }
                    seq += 1;
                    due.push(Reverse((start + took, seq, p.id)));
                    results.insert(seq, Delivery::Done(result));
                }
            }
            now += frame_time;
            let idle = due.is_empty() && queues.iter().all(|(_, q, _)| q.is_empty()) && !session.is_speaking();
            if session.is_ended() && due.is_empty() || now >= end_of_caller + self.tail && idle || now >= end_of_caller + self.tail + Duration::from_secs(60) {
                break;
            }
        }
        rec.jobs = busy.into_iter().map(|(l, (n, s))| (l, n, s)).collect();
        rec.duration_secs = now.as_secs_f64();
        rec
    }

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

enum Delivery {
    Delta(String),
    Done(JobResult),
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
