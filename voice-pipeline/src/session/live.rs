//! Running call sessions in real time: the models' worker threads, shared by every call.
//!
//! Each kind of work has its own queue and thread(s), as in the simulator: transcription
//! (`stt_workers` at once, sharing the cores: whisper.cpp spins its threads, so the workers'
//! threads together must not exceed them), the conversation, the LLM and synthesis. A call submits its session's jobs with a channel for the results; jobs
//! of a call that has ended or cancelled them are skipped when their turn comes.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, RwLock};

use dialogue::manager::Conversation;

use super::workers::{SpeechCache, Workers};
use super::{Job, JobId, JobResult};
use crate::stt::{SttConfig, WhisperModel};
use crate::tts::Voices;

/// The models every call shares.
pub struct Models {
    pub whisper: WhisperModel,
    /// `stt.threads` are all the threads transcription may use: a transcription running alone gets
    /// them all, two at once share them.
    pub stt: SttConfig,
    pub voices: Voices,
    pub cache: Arc<SpeechCache>,
    /// Read by every turn; written when the knowledge files are reloaded.
    pub engine: Arc<RwLock<dialogue::Engine>>,
    pub llm: Option<dialogue::llm::LlmClient>,
    /// Transcriptions at once (each with its share of `stt.threads`).
    pub stt_workers: usize,
    pub turn: Option<crate::turn::TurnModel>,
}

/// What comes back to a call.
pub enum Reply {
    Delta { job: JobId, text: String },
    Done { job: JobId, result: JobResult },
}

/// One call's link to the workers.
#[derive(Clone)]
pub struct CallLink {
    pub replies: Sender<Reply>,
    pub conversation: Arc<Mutex<Conversation>>,
    /// Jobs the call no longer wants (and, once it ends, all of them).
    pub cancelled: Arc<Mutex<HashSet<JobId>>>,
    pub ended: Arc<std::sync::atomic::AtomicBool>,
    /// Wall-clock time at the call's start (for "are you open now?").
    pub wall_start: jiff::Timestamp,
    pub started: std::time::Instant,
}

impl CallLink {
    pub fn new(caller_id: Option<&str>) -> (Self, Receiver<Reply>) {
        let (tx, rx) = mpsc::channel();
        let link = Self {
            replies: tx,
            conversation: Arc::new(Mutex::new(Conversation::new(caller_id))),
            cancelled: Arc::default(),
            ended: Arc::default(),
            wall_start: jiff::Timestamp::now(),
            started: std::time::Instant::now(),
        };
        (link, rx)
    }

    fn wanted(&self, id: JobId) -> bool {
        !self.ended.load(std::sync::atomic::Ordering::Relaxed) && !self.cancelled.lock().unwrap_or_else(|p| p.into_inner()).contains(&id)
    }
}

struct Task {
    id: JobId,
    job: Job,
    link: CallLink,
}

/// Jobs waiting for a worker, per lane (stt, dialogue, llm, tts, turn): a growing STT queue is the
/// first sign of more callers than the machine can transcribe.
static QUEUED: std::sync::LazyLock<prometheus::IntGaugeVec> = std::sync::LazyLock::new(|| {
    prometheus::register_int_gauge_vec!("ivr_jobs_queued", "Jobs waiting for a worker, by lane", &["lane"]).expect("registers once")
});

const LANES: [&str; 5] = ["stt", "dialogue", "llm", "tts", "turn"];

/// The worker threads.
pub struct Pipeline {
    lanes: [Sender<Task>; 5],
}

impl Pipeline {
    pub fn start(models: Arc<Models>) -> Arc<Pipeline> {
        let stt_running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // A lane: one queue, `threads` workers taking from it.
        let lane = |name: &'static str, threads: usize| {
            let (tx, rx) = mpsc::channel::<Task>();
            let queued = QUEUED.with_label_values(&[name]);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..threads.max(1) {
                let (models, rx, stt_running, queued) = (Arc::clone(&models), Arc::clone(&rx), Arc::clone(&stt_running), queued.clone());
                std::thread::Builder::new()
                    .name(format!("ivr-{name}"))
                    .spawn(move || {
                        crate::priority::lower_this_thread();
                        loop {
                            let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(task) = next else { return };
                            queued.dec();
                            if task.link.wanted(task.id) {
                                run(&models, task, &stt_running);
                            }
                        }
                    })
                    .expect("worker thread starts");
            }
            tx
        };
        let stt = models.stt_workers;
        let [a, b, c, d, e] = LANES;
        Arc::new(Pipeline { lanes: [lane(a, stt), lane(b, 1), lane(c, 1), lane(d, 1), lane(e, 1)] })
    }

    pub fn submit(&self, link: &CallLink, id: JobId, job: Job) {
        let lane = match &job {
            Job::Transcribe { .. } => 0,
            Job::Understand(_) => 1,
            Job::Llm(_) => 2,
            Job::Synthesize { .. } => 3,
            Job::EndOfTurn { .. } => 4,
        };
        // Counted before it is sent, so a worker taking it at once never drives the gauge below 0.
        let queued = QUEUED.with_label_values(&[LANES[lane]]);
        queued.inc();
        if self.lanes[lane].send(Task { id, job, link: link.clone() }).is_err() {
            queued.dec();
        }
    }
}

/// Runs one job. A transcription takes the cores left by the others running: all of them when it
/// runs alone (a lone caller was 0.2-0.6 s slower on one thread), its share when several do.
fn run(models: &Models, task: Task, stt_running: &std::sync::atomic::AtomicUsize) {
    use std::sync::atomic::Ordering;
    let engine = models.engine.read().unwrap_or_else(|p| p.into_inner());
    let is_stt = matches!(task.job, Job::Transcribe { .. });
    let stt = if is_stt {
        let running = stt_running.fetch_add(1, Ordering::SeqCst) + 1;
        SttConfig { threads: (models.stt.threads / running).max(1), ..models.stt.clone() }
    } else {
        models.stt.clone()
    };
    let workers = Workers {
        whisper: &models.whisper,
        stt: &stt,
        voices: &models.voices,
        cache: &models.cache,
        engine: &engine,
        llm: models.llm.as_ref(),
        turn: models.turn.as_ref(),
    };
    let link = &task.link;
    let result = match &task.job {
        Job::Transcribe { audio } => workers.transcribe(audio),
        Job::Understand(input) => {
            let wall = link.wall_start + jiff::SignedDuration::try_from(link.started.elapsed()).unwrap_or_default();
            let mut conversation = link.conversation.lock().unwrap_or_else(|p| p.into_inner());
            workers.understand(&mut conversation, input, wall)
        }
        Job::Llm(job) => workers.llm(job, |piece| {
            let _ = link.replies.send(Reply::Delta { job: task.id, text: piece.to_string() });
        }),
        Job::Synthesize { text, language } => workers.synthesize(text, language),
        Job::EndOfTurn { audio } => workers.end_of_turn(audio),
    };
    if is_stt {
        stt_running.fetch_sub(1, Ordering::SeqCst);
    }
    let _ = link.replies.send(Reply::Done { job: task.id, result });
}
