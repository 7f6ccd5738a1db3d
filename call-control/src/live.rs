//! A live call: the [`driver`](crate::driver) on the wall clock, its jobs on the models' worker
//! threads, its records to the store and the metrics, its audio to the recorder. One thread per
//! call, woken every 20 ms.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_audio::FRAME_SAMPLES;
use voice_pipeline::session::live::{CallLink, Pipeline, Reply};
use voice_pipeline::session::{CallSession, Job, JobId, Speaker};

use crate::call::{Call, CallPolicy, EndedBy, Entry, Transfer};
use crate::attendant::DeskNote;
use crate::driver::{Clock, Control, Delivery, Hooks, Jobs, Stop};
use crate::metrics::metrics;
use crate::record::CallLog;
use crate::server::{CallSignal, Command, Context};
use crate::sip_leg::{media_ports, ntp_now, seed_of, SipLeg};

/// A leg as the live server drives it: a SIP call's or a browser's.
pub(crate) trait LiveLeg: sip_bridge::leg::Leg + Send + 'static {
    /// The call is over: say goodbye on the media (RTCP BYE) where there is such a thing.
    fn close(&mut self) {}
    /// The media's counters for the call's record.
    fn media_stats(&self) -> serde_json::Value;
}

impl LiveLeg for SipLeg {
    fn close(&mut self) {
        SipLeg::close(self)
    }
    fn media_stats(&self) -> serde_json::Value {
        serde_json::to_value(self.stats()).unwrap_or_default()
    }
}

impl LiveLeg for crate::browser_leg::BrowserLeg {
    fn media_stats(&self) -> serde_json::Value {
        serde_json::to_value(self.stats()).unwrap_or_default()
    }
}

/// Takes an incoming SIP call: its RTP sockets, its leg and its thread. Returns the channels the
/// signalling thread tells it things on.
pub(crate) fn start_call(
    ctx: &Context,
    commands: &Sender<Command>,
    call_id: &str,
    from: String,
    agreed: &sip_bridge::sdp::Agreed,
) -> std::io::Result<(Sender<CallSignal>, Sender<Stop>)> {
    // RTP and RTCP sockets on the SIP address's interface: an even port and the next one.
    let ports = media_ports(ctx.local.ip())?;
    let (signal_tx, signal_rx) = mpsc::channel();
    let media = sip_bridge::rtp::media::MediaSession::new(agreed, &ctx.cfg.media, seed_of(&ports.0), ntp_now(), Duration::ZERO);
    let leg = SipLeg::new(call_id.to_string(), ports, media, signal_rx, commands.clone());
    let caller_id = from.strip_prefix("sip:").and_then(|u| u.split('@').next()).map(str::to_string);
    let transfer = match (&ctx.desk, &ctx.cfg.transfer_target, &ctx.cfg.transfer_dtmf) {
        (Some(_), _, _) => Transfer::Queue,
        (None, Some(target), _) if ctx.cfg.transfer_method.eq_ignore_ascii_case("invite") => Transfer::Dial(target.clone()),
        (None, Some(target), _) => Transfer::Refer(target.clone()),
        (None, None, Some(digits)) => Transfer::Keypad(digits.clone()),
        (None, None, None) => Transfer::HangUp,
    };
    let (stop_tx, stop_rx) = mpsc::channel();
    spawn_call(ctx, commands, call_id, from, caller_id, leg, transfer, None, stop_rx)?;
    Ok((signal_tx, stop_tx))
}

/// Takes a browser's call (its offer already answered): the same call as a phone's, except that a
/// transfer always goes through this server (the queue, or a call it places to the transfer
/// target), since a browser cannot be REFERred or key a PBX, and that what is said goes to the
/// page as captions. The server's stop reaches the call on `stop`.
pub(crate) fn start_browser_call(
    ctx: &Context,
    commands: &Sender<Command>,
    call_id: &str,
    from: String,
    leg: crate::browser_leg::BrowserLeg,
    page: Sender<crate::browser_leg::ToPage>,
    stop: Receiver<Stop>,
) -> std::io::Result<()> {
    let transfer = match (&ctx.desk, &ctx.cfg.transfer_target) {
        (Some(_), _) => Transfer::Queue,
        (None, Some(target)) => Transfer::Dial(target.clone()),
        (None, None) => Transfer::HangUp,
    };
    spawn_call(ctx, commands, call_id, from, None, leg, transfer, Some(page), stop)
}

/// The call's thread: the driver over `leg` with the live jobs and hooks.
#[allow(clippy::too_many_arguments)]
fn spawn_call<L: LiveLeg>(
    ctx: &Context,
    commands: &Sender<Command>,
    call_id: &str,
    from: String,
    caller_id: Option<String>,
    mut leg: L,
    transfer: Transfer,
    page: Option<Sender<crate::browser_leg::ToPage>>,
    stop_rx: Receiver<Stop>,
) -> std::io::Result<()> {
    // `end_of_turn_model` in the session's settings says whether the model is loaded.
    let session = CallSession::new(ctx.session.clone(), ctx.vad.clone()).with_llm(true).with_turn_model(true);
    let policy = CallPolicy {
        ring: Duration::from_millis(ctx.cfg.ring_ms as u64),
        media_timeout: Duration::from_secs(ctx.cfg.rtp_timeout_secs as u64),
        transfer,
    };
    let (control_tx, control_rx) = mpsc::channel();
    let (link, replies) = CallLink::new(caller_id.as_deref());
    let mut jobs = LiveJobs { pipeline: Arc::clone(&ctx.pipeline), link, replies };
    let caller_number = caller_id.clone().unwrap_or_default();
    let mut hooks = LiveHooks {
        log: CallLog::new(ctx.sink.clone(), page.is_none().then_some(call_id), from, &ctx.server, jiff::Timestamp::now()),
        stop: stop_rx,
        recorder: ctx.recorder.clone(),
        recording: None,
        number: 0,
        call_id: call_id.to_string(),
        ended: None,
        desk: ctx.desk.clone(),
        voicemails: ctx.voicemails.clone(),
        control: control_rx,
        control_tx,
        commands: commands.clone(),
        webhook: ctx.cfg.handoff_webhook.clone(),
        refer_to: match &policy.transfer {
            Transfer::Refer(target) => Some(target.clone()),
            _ => None,
        },
        caller_number: caller_number.clone(),
        call_url: ctx.cfg.call_url.clone(),
        page,
    };
    let active = Arc::clone(&ctx.active);
    let browsers = Arc::clone(&ctx.browsers);
    active.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new().name("ivr-call".into()).spawn(move || {
        // A returning caller: how often they called this week, for the agent's summary (the
        // store answers in milliseconds; the greeting plays before the caller's first words).
        let mut session = session;
        if let Some(h) = hooks.log.sink.history(&hooks.log.call.caller, jiff::Timestamp::now(), Duration::from_millis(300)) {
            session = crate::record::apply_history(&h, &mut jobs.link.conversation.lock().unwrap_or_else(|p| p.into_inner()), session);
        }
        let mut clock = WallClock { started: Instant::now() };
        let call = Call::new(session, policy, Duration::ZERO).with_caller(&caller_number);
        let at = crate::driver::run(call, &mut leg, &mut jobs, &mut clock, &mut hooks);
        leg.close();
        hooks.finish(at, leg.media_stats());
        if hooks.page.is_some() {
            browsers.lock().unwrap_or_else(|p| p.into_inner()).remove(&hooks.call_id);
        }
        active.fetch_sub(1, Ordering::Relaxed);
    });
    if let Err(e) = spawned {
        ctx.active.fetch_sub(1, Ordering::Relaxed);
        return Err(e);
    }
    Ok(())
}

/// Call time from the thread's start; waiting sleeps.
struct WallClock {
    started: Instant,
}

impl Clock for WallClock {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }
    fn wait_until(&mut self, at: Duration) {
        if let Some(wait) = at.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// The models' worker threads, shared by every call; results come back on this call's channel.
struct LiveJobs {
    pipeline: Arc<Pipeline>,
    link: CallLink,
    replies: Receiver<Reply>,
}

impl Jobs for LiveJobs {
    fn submit(&mut self, id: JobId, job: Job, _now: Duration) {
        self.pipeline.submit(&self.link, id, job);
    }
    fn cancel(&mut self, id: JobId) {
        self.link.cancelled.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }
    fn poll(&mut self, now: Duration) -> Option<(Duration, JobId, Delivery)> {
        self.replies.try_recv().ok().map(|r| match r {
            Reply::Delta { job, text } => (now, job, Delivery::Delta(text)),
            Reply::Done { job, result } => (now, job, Delivery::Done(result)),
        })
    }
    fn idle(&self) -> bool {
        false
    }
    fn end(&mut self) {
        self.link.ended.store(true, Ordering::Relaxed);
    }
}

/// The store (through the writer thread), the metrics, the recording and the server's stop.
struct LiveHooks {
    log: CallLog,
    stop: Receiver<Stop>,
    recorder: Option<Arc<crate::recording::Recorder>>,
    recording: Option<crate::recording::CallRecording>,
    /// This call's number on the server (tells recordings apart).
    number: u64,
    call_id: String,
    ended: Option<EndedBy>,
    /// The agents' queue, and what it tells this call.
    desk: Option<Arc<crate::desk::Desk>>,
    voicemails: Option<Arc<crate::voicemail::Voicemails>>,
    control: Receiver<Control>,
    /// Given to the queue with the call, for it to reach this call.
    control_tx: Sender<Control>,
    /// To the signalling thread (a hand-off to a PBX).
    commands: Sender<Command>,
    /// Where hand-offs are POSTed, and the base of the call's URL.
    webhook: Option<String>,
    /// The REFER target, when transfers are REFERs.
    refer_to: Option<String>,
    /// The caller's number (from caller ID), for the hand-off.
    caller_number: String,
    call_url: Option<String>,
    /// A browser caller's page: captions and the call's events go there.
    page: Option<Sender<crate::browser_leg::ToPage>>,
}

impl LiveHooks {
    /// The hand-off to the CRM's webhook, if one is configured.
    fn post_handoff(&self, priority: u8, summary: String, caller: String, reason: String, to: String) {
        let Some(hook) = &self.webhook else { return };
        let doc = crate::handoff::HandoffDocument {
            call_id: self.log.call.id.clone(),
            caller,
            reason,
            priority,
            summary,
            to,
            call_url: self.call_url.as_ref().map(|base| format!("{base}{}", self.log.call.id)),
            at: jiff::Timestamp::now().to_string(),
        };
        crate::handoff::post(hook, doc);
    }

    /// A browser caller sees what is said (captions) and what happens (transfer, queue, ...).
    fn tell_page(&self, entry: &Entry) {
        let Some(page) = &self.page else { return };
        let json = match entry {
            Entry::Said { who, text, at } => {
                let who = match who {
                    Speaker::Caller => "caller",
                    Speaker::Bot => "bot",
                };
                serde_json::json!({"type": "caption", "who": who, "text": text, "at": at.as_secs_f64()})
            }
            Entry::Event { kind, at, detail } => serde_json::json!({"type": "event", "kind": kind, "at": at.as_secs_f64(), "detail": detail}),
            _ => return,
        };
        let _ = page.send(crate::browser_leg::ToPage::Message(json.to_string()));
    }

    /// The call was answered: from now on it is in the store, the metrics and the recording.
    fn begin(&mut self) {
        self.number = metrics().calls_started.get();
        metrics().calls_started.inc();
        metrics().calls_active.inc();
        self.recording = self.recorder.as_ref().map(|r| r.open(self.number, &self.call_id, &self.log.call.started_at));
        self.log.call.recording = self.recording.as_ref().map(|r| r.path.display().to_string());
        self.log.start();
    }

    fn finish(&mut self, at: Duration, media: serde_json::Value) {
        self.recording = None;
        if !self.log.started {
            // Never answered (cancelled while ringing, refused while stopping): no record.
            return;
        }
        let by = self.ended.unwrap_or(EndedBy::Caller);
        self.log.end(by, at, media, jiff::Timestamp::now());
        metrics().calls_ended.with_label_values(&[by.as_str().replace(' ', "_").as_str()]).inc();
        metrics().calls_active.dec();
    }
}

impl Hooks for LiveHooks {
    fn record(&mut self, entry: Entry) {
        if !self.log.started {
            if let Entry::Ended { by, .. } = entry {
                self.ended = Some(by);
                return;
            }
            self.begin();
        }
        self.tell_page(&entry);
        let call_id = &self.call_id;
        match entry {
            Entry::Said { who, text, at } => {
                tracing::info!(%call_id, ?who, text = %ivr_privacy::mask(&text));
                self.log.said(who, text, at);
            }
            Entry::Understood(u) => self.log.understood(u),
            Entry::Timing(t) => {
                let v2v = t.voice_to_voice().map(|d| d.as_millis() as u64);
                tracing::info!(%call_id, voice_to_voice_ms = v2v, "turn");
                let stages = crate::record::stages_of(&t);
                crate::metrics::observe_turn(&stages);
                self.log.stages(stages);
            }
            Entry::Event { kind, at, detail } => {
                match kind {
                    "barge_in" => {
                        tracing::info!(%call_id, at_secs = at.as_secs_f64(), "barge-in");
                        metrics().barge_ins.inc();
                    }
                    "transfer" => {
                        let reason = detail.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or_default().to_string();
                        metrics().transfers.with_label_values(&[reason.as_str()]).inc();
                    }
                    _ => {}
                }
                self.log.event(kind, at, detail);
            }
            Entry::Action { action, .. } => {
                tracing::info!(%call_id, ?action, "call action");
                // A REFER hand-off (the queue's and the INVITE's are posted with their notes).
                if let (Some(to), dialogue::manager::Action::Transfer { reason, priority, summary }) = (&self.refer_to, &action) {
                    self.post_handoff(priority.rank(), summary.screen.clone(), self.caller_number.clone(), reason.name(), to.clone());
                }
            }
            Entry::Ended { by, .. } => self.ended = Some(by),
        }
    }

    fn stop(&mut self, _now: Duration) -> Option<Stop> {
        self.stop.try_recv().ok()
    }

    fn control(&mut self, _now: Duration) -> Option<Control> {
        self.control.try_recv().ok()
    }

    fn desk(&mut self, note: DeskNote, _now: Duration) {
        if let DeskNote::Callback { number, reason } = &note {
            // Kept before the caller hears that it is: written and acknowledged by the store.
            let f = ivr_store::FollowUp {
                id: format!("cb-{}", self.log.call.id),
                kind: "callback".into(),
                call_id: Some(self.log.call.id.clone()),
                number: number.clone(),
                created_at: jiff::Timestamp::now().to_string(),
                reason: (*reason).into(),
                status: "open".into(),
                ..Default::default()
            };
            if !self.log.sink.follow_up(f, Duration::from_secs(5)) {
                tracing::error!(call_id = %self.call_id, %number, "the callback request could not be stored");
            }
            return;
        }
        if let DeskNote::Voicemail { audio, number, reason } = &note {
            // Kept (file synced, store acknowledged) before the caller is thanked.
            let kept = self.voicemails.as_ref().is_some_and(|v| v.keep(&self.log.call.id, number, reason, audio));
            if !kept {
                tracing::error!(call_id = %self.call_id, %number, "the voicemail could not be kept");
            }
            return;
        }
        let url = self.call_url.as_ref().map(|base| format!("{base}{}", self.log.call.id));
        let handoff = match &note {
            DeskNote::Enter { priority, summary, caller, reason, .. } => Some((*priority, summary.clone(), caller.clone(), reason.clone(), "queue".to_string())),
            DeskNote::Dial { target, priority, summary, caller, reason } => Some((*priority, summary.clone(), caller.clone(), reason.clone(), target.clone())),
            _ => None,
        };
        if let Some((priority, summary, caller, reason, to)) = handoff {
            self.post_handoff(priority, summary, caller, reason, to);
        }
        if let DeskNote::Dial { target, summary, caller, .. } = note {
            let headers = crate::handoff::summary_headers(&summary, url.as_deref());
            let _ = self.commands.send(Command::DialUri { target, caller, headers, control: self.control_tx.clone() });
            return;
        }
        if let Some(d) = &self.desk {
            d.note(&self.log.call.id, note, &self.control_tx);
        }
    }

    fn frames(&mut self, caller: &[f32; FRAME_SAMPLES], bot: &[f32; FRAME_SAMPLES]) {
        if let Some(r) = &self.recording {
            r.frame(caller, bot);
        }
    }

    fn tick(&mut self, due: Duration, woke: Duration, done: Duration) {
        let m = &metrics().tick;
        m.with_label_values(&["wake"]).observe(woke.saturating_sub(due).as_secs_f64());
        m.with_label_values(&["work"]).observe(done.saturating_sub(woke).as_secs_f64());
    }

    fn frame_sent(&mut self, due: Duration, sent: Duration) {
        metrics().frames_out.inc();
        if sent > due + Duration::from_millis(10) {
            metrics().frames_late.inc();
        }
    }
}


