//! What a call leaves behind, written to the store as it happens: the call when it starts, each
//! line of the conversation when it is said, a caller turn's stage timings once its reply starts,
//! events (answered, barge-in, keys, the bot's actions, the hang-up) and the call's end. One
//! writer thread does the database work for all calls, so a slow disk or database never delays a
//! call's 20 ms tick; the queue is unbounded because a record must not be dropped. A write that
//! fails is logged in full (the record is in the log even if the store is gone).

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use ivr_store::{CallEnd, Event, FollowUp, NewCall, QueueEntry, QueueLogLine, Stages, Store, Turn, Understanding};

enum Write {
    Start(NewCall),
    Turn(String, Turn),
    Stages(String, i64, Stages),
    Understanding(String, i64, Understanding),
    Event(String, Event),
    End(String, CallEnd),
    QueueEvent(QueueLogLine),
    QueueEnter(QueueEntry),
    QueueLeave(String),
    AgentStatus(String, String),
    /// The agents as stored (the live queue reloads them).
    ReadAgents(Sender<Vec<ivr_store::Agent>>),
    /// Answered (with the result) once written: a caller is told only then.
    FollowUp(FollowUp, Sender<bool>),
    /// A voicemail's transcript and summary.
    FollowUpText { id: String, transcript: String, summary: String },
    ReadUntranscribed(Sender<Vec<FollowUp>>),
    /// Calls from a number in a span of time (a returning caller).
    History { caller: String, since: String, before: String, reply: Sender<ivr_store::CallerHistory> },
    /// Answered once every write queued before it is done.
    Flush(Sender<()>),
}

/// The handle call threads write through; cheap to clone.
#[derive(Clone)]
pub struct RecordSink {
    tx: Sender<Write>,
}

impl RecordSink {
    /// Starts the writer thread; `runtime` is the tokio runtime the store's pool lives on.
    pub fn start(store: Store, runtime: tokio::runtime::Handle) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("ivr-records".into()).spawn(move || write_all(rx, store, runtime))?;
        Ok(Self { tx })
    }

    pub fn start_call(&self, c: NewCall) {
        let _ = self.tx.send(Write::Start(c));
    }
    pub fn turn(&self, call: &str, t: Turn) {
        let _ = self.tx.send(Write::Turn(call.into(), t));
    }
    pub fn stages(&self, call: &str, seq: i64, s: Stages) {
        let _ = self.tx.send(Write::Stages(call.into(), seq, s));
    }
    pub fn understanding(&self, call: &str, seq: i64, u: Understanding) {
        let _ = self.tx.send(Write::Understanding(call.into(), seq, u));
    }
    pub fn event(&self, call: &str, e: Event) {
        let _ = self.tx.send(Write::Event(call.into(), e));
    }
    pub fn end_call(&self, call: &str, end: CallEnd) {
        let _ = self.tx.send(Write::End(call.into(), end));
    }
    pub fn queue_event(&self, line: QueueLogLine) {
        let _ = self.tx.send(Write::QueueEvent(line));
    }
    pub fn queue_enter(&self, e: QueueEntry) {
        let _ = self.tx.send(Write::QueueEnter(e));
    }
    pub fn queue_leave(&self, call: &str) {
        let _ = self.tx.send(Write::QueueLeave(call.into()));
    }
    pub fn agent_status(&self, agent: &str, status: &str) {
        let _ = self.tx.send(Write::AgentStatus(agent.into(), status.into()));
    }

    /// The agents as stored now (`None` if the store did not answer within `timeout`).
    pub fn agents(&self, timeout: std::time::Duration) -> Option<Vec<ivr_store::Agent>> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Write::ReadAgents(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// Stores a callback or voicemail and waits (up to `timeout`) until it is written; `false`
    /// if it could not be (the caller must not be told it was).
    pub fn follow_up(&self, f: FollowUp, timeout: std::time::Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Write::FollowUp(f, tx)).is_ok() && rx.recv_timeout(timeout).unwrap_or(false)
    }

    pub fn voicemail_text(&self, id: &str, transcript: String, summary: String) {
        let _ = self.tx.send(Write::FollowUpText { id: id.into(), transcript, summary });
    }

    /// Voicemails a previous run stored but did not transcribe (`None`: the store did not answer).
    pub fn untranscribed_voicemails(&self, timeout: std::time::Duration) -> Option<Vec<FollowUp>> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Write::ReadUntranscribed(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// What the calls from `caller` in the week before `at` tell (how many, the order the latest
    /// was about); `None` for a caller without a number, or when the store did not answer within
    /// `timeout` (the call goes on without its history).
    pub fn history(&self, caller: &str, at: jiff::Timestamp, timeout: Duration) -> Option<ivr_store::CallerHistory> {
        if !ivr_store::identifies_caller(caller) {
            return None;
        }
        let since = at.checked_sub(jiff::SignedDuration::from_hours(7 * 24)).ok()?;
        let (tx, rx) = mpsc::channel();
        let ask = Write::History { caller: caller.to_string(), since: since.to_string(), before: at.to_string(), reply: tx };
        self.tx.send(ask).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// Waits (up to `timeout`) until everything queued so far is written: before the process
    /// exits, so the last calls' ends are not lost.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Write::Flush(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }
}

/// Tells a call what its caller's earlier calls this week say: the conversation learns how often
/// they called (for the agent's summary) and the order their latest call was about; with such an
/// order the session greets them about it ("Are you calling about order ...?").
pub fn apply_history(h: &ivr_store::CallerHistory, conversation: &mut dialogue::manager::Conversation, session: voice_pipeline::session::CallSession) -> voice_pipeline::session::CallSession {
    conversation.set_history(u32::try_from(h.calls).unwrap_or(u32::MAX), h.last_order.as_deref());
    match conversation.open_order() {
        Some(order) => session.greet_about_order(order),
        None => session,
    }
}

/// A call's record as it is written to the store: its id there, the next numbers of its lines
/// and events.
pub struct CallLog {
    pub sink: RecordSink,
    pub call: ivr_store::NewCall,
    pub started: bool,
    next_turn: i64,
    next_event: i64,
    /// The caller's latest line (its understanding and stages arrive later).
    last_caller_turn: Option<i64>,
}

impl CallLog {
    /// `sip_call_id`: the SIP Call-ID of a phone call (none for a browser's); `started_at`: the
    /// wall-clock time of the call's start (a simulated call's is given).
    pub fn new(sink: RecordSink, sip_call_id: Option<&str>, from: String, server: &str, started_at: jiff::Timestamp) -> Self {
        // The store's own id: a SIP Call-ID may come again (another server, a retry).
        let mut nonce = [0u8; 8];
        if getrandom::fill(&mut nonce).is_err() {
            nonce = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64).to_le_bytes();
        }
        let started_at = started_at.to_string();
        let id = format!("{}-{}", started_at.replace([':', '.'], "").trim_end_matches('Z'), nonce.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let call = ivr_store::NewCall { id, sip_call_id: sip_call_id.map(str::to_string), caller: from, started_at, server: server.to_string(), recording: None };
        Self { sink, call, started: false, next_turn: 0, next_event: 0, last_caller_turn: None }
    }

    pub fn start(&mut self) {
        self.started = true;
        self.sink.start_call(self.call.clone());
    }

    pub fn said(&mut self, who: voice_pipeline::session::Speaker, text: String, at: Duration) {
        use voice_pipeline::session::Speaker;
        let seq = self.next_turn;
        self.next_turn += 1;
        let speaker = match who {
            Speaker::Caller => {
                self.last_caller_turn = Some(seq);
                "caller"
            }
            Speaker::Bot => "bot",
        };
        self.sink.turn(&self.call.id, ivr_store::Turn { seq, at_secs: at.as_secs_f64(), speaker: speaker.into(), text, ..Default::default() });
    }

    pub fn understood(&self, u: ivr_store::Understanding) {
        if let Some(seq) = self.last_caller_turn {
            self.sink.understanding(&self.call.id, seq, u);
        }
    }

    pub fn stages(&self, stages: ivr_store::Stages) {
        if let Some(seq) = self.last_caller_turn {
            self.sink.stages(&self.call.id, seq, stages);
        }
    }

    pub fn event(&mut self, kind: &str, at: Duration, detail: Option<serde_json::Value>) {
        let seq = self.next_event;
        self.next_event += 1;
        self.sink.event(&self.call.id, ivr_store::Event { seq, at_secs: at.as_secs_f64(), kind: kind.into(), detail });
    }

    /// Writes the store's part of what a call recorded, for a call whose record needs nothing
    /// else (the simulator's): `Ended` closes the record at `wall_start` plus its time.
    pub fn write(&mut self, entry: crate::call::Entry, wall_start: jiff::Timestamp) {
        use crate::call::Entry;
        if !self.started {
            self.start();
        }
        match entry {
            Entry::Said { who, text, at } => self.said(who, text, at),
            Entry::Understood(u) => self.understood(u),
            Entry::Timing(t) => self.stages(stages_of(&t)),
            Entry::Event { kind, at, detail } => self.event(kind, at, detail),
            Entry::Action { .. } => {}
            Entry::Ended { by, at } => {
                let ended_at = wall_start.checked_add(at).unwrap_or(wall_start);
                self.end(by, at, serde_json::json!({}), ended_at);
            }
        }
    }

    /// The call ended `at` into it, at `ended_at` on the wall clock.
    pub fn end(&mut self, by: crate::call::EndedBy, at: Duration, media: serde_json::Value, ended_at: jiff::Timestamp) {
        self.event("hangup", at, Some(serde_json::json!({"by": by.as_str()})));
        let end = ivr_store::CallEnd {
            ended_at: ended_at.to_string(),
            duration_secs: at.as_secs_f64(),
            ended_by: by.as_str().to_string(),
            media: Some(media),
        };
        self.sink.end_call(&self.call.id, end);
    }
}

/// A caller turn's stages in milliseconds, from the session's call times: the one derivation the
/// store and the metrics both use. Transcription started early may be done before the turn ends:
/// then its stage is 0.
pub fn stages_of(t: &voice_pipeline::session::TurnTiming) -> Stages {
    let ms = |from: std::time::Duration, to: Option<std::time::Duration>| to.map(|to| to.saturating_sub(from).as_secs_f64() * 1000.0);
    let stt_done = t.stt_final.map(|s| s.max(t.endpoint));
    Stages {
        endpoint_ms: ms(t.speech_end, Some(t.endpoint)),
        stt_ms: ms(t.endpoint, stt_done),
        understand_ms: ms(stt_done.unwrap_or(t.endpoint), t.understood),
        llm_first_token_ms: ms(t.endpoint, t.first_llm_token),
        tts_first_audio_ms: ms(t.endpoint, t.first_tts_audio),
        voice_to_voice_ms: t.voice_to_voice().map(|d| d.as_secs_f64() * 1000.0),
    }
}

fn write_all(rx: Receiver<Write>, store: Store, runtime: tokio::runtime::Handle) {
    for w in rx {
        if let Write::Flush(done) = &w {
            let _ = done.send(());
            continue;
        }
        let (what, result) = runtime.block_on(async {
            match &w {
                Write::Start(c) => (format!("call {} from {}", c.id, c.caller), store.start_call(c).await),
                Write::Turn(id, t) => (format!("call {id} turn {} {}: {:?}", t.seq, t.speaker, ivr_privacy::mask(&t.text)), store.add_turn(id, t).await),
                Write::Stages(id, seq, s) => (format!("call {id} turn {seq} stages {s:?}"), store.set_stages(id, *seq, s).await),
                Write::Understanding(id, seq, u) => (format!("call {id} turn {seq} understood {u:?}"), store.set_understanding(id, *seq, u).await),
                Write::Event(id, e) => {
                    let mut detail = e.detail.clone().unwrap_or_default();
                    ivr_privacy::mask_json(&mut detail);
                    (format!("call {id} event {} {detail}", e.kind), store.add_event(id, e).await)
                }
                Write::End(id, end) => (format!("call {id} ended by {} after {:.1} s", end.ended_by, end.duration_secs), store.end_call(id, end).await),
                Write::QueueEvent(l) => (format!("queue event {l:?}"), store.log_queue_event(l).await),
                Write::QueueEnter(e) => (format!("queue entry {e:?}"), store.queue_enter(e).await),
                Write::QueueLeave(id) => (format!("call {id} left the queue"), store.queue_leave(id).await),
                Write::AgentStatus(a, st) => (format!("agent {a} status {st}"), store.set_agent_status(a, st).await.map(|_| ())),
                Write::ReadAgents(reply) => {
                    let r = store.agents().await;
                    if let Ok(a) = &r {
                        let _ = reply.send(a.clone());
                    }
                    ("reading the agents".to_string(), r.map(|_| ()))
                }
                Write::FollowUp(f, done) => {
                    let r = store.add_follow_up(f).await;
                    let _ = done.send(r.is_ok());
                    (format!("follow-up {f:?}"), r)
                }
                Write::FollowUpText { id, transcript, summary } => {
                    (format!("voicemail {id} transcript {transcript:?} summary {summary:?}"), store.set_follow_up_text(id, transcript, summary).await.map(|_| ()))
                }
                Write::ReadUntranscribed(reply) => {
                    let r = store.untranscribed_voicemails().await;
                    if let Ok(v) = &r {
                        let _ = reply.send(v.clone());
                    }
                    ("reading the untranscribed voicemails".to_string(), r.map(|_| ()))
                }
                Write::History { caller, since, before, reply } => {
                    let r = store.caller_history(caller, since, before).await;
                    if let Ok(h) = &r {
                        let _ = reply.send(h.clone());
                    }
                    ("reading a caller's history".to_string(), r.map(|_| ()))
                }
                Write::Flush(_) => unreachable!("answered above"),
            }
        });
        if let Err(e) = result {
            tracing::error!("not stored ({e}): {what}");
        }
    }
}
