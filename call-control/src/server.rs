//! The thin IO layer: a UDP socket for SIP, one UDP socket per call for RTP, and a thread per call
//! that drives its `CallSession` every 20 ms. All protocol decisions are made by the sans-IO parts
//! (`sip::endpoint::Endpoint`, `rtp::media::MediaSession`, `voice_pipeline::session::CallSession`).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use crate::metrics::metrics;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voice_pipeline::session::live::{CallLink, Pipeline, Reply};
use voice_pipeline::session::{CallSession, Event, Output as SessionOutput, SessionConfig, Speaker};
use voice_pipeline::vad::SileroModel;

use sip_bridge::rtp::media::{MediaConfig, MediaSession};
use ivr_audio::FRAME_SAMPLES;
use sip_bridge::sip::endpoint::{CallEvent, Endpoint, EndpointConfig, Output, Peer};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Where SIP listens (UDP).
    pub listen: SocketAddr,
    /// A call whose RTP stops this long is ended.
    pub rtp_timeout_secs: u32,
    /// Ring this long (180 Ringing) before answering; 0 answers at once.
    pub ring_ms: u32,
    #[serde(flatten)]
    pub endpoint: EndpointConfig,
    pub media: MediaConfig,
    /// Where transfers go (REFER), e.g. "sip:agents@pbx.example.com"; without one a transfer ends
    /// the call.
    pub transfer_target: Option<String>,
    /// Lets the agents' phones REGISTER here (digest authentication); a transfer target whose user
    /// has registered goes to the phone's registered address.
    pub registrar: Option<sip_bridge::sip::registrar::RegistrarConfig>,
    /// Without a `transfer_target`: transfer by keypad instead, sending these digits as RFC 4733
    /// events (e.g. Asterisk's blind-transfer feature code and an extension, "#1" then "2001"),
    /// then hanging up once the PBX has had two seconds to act on them.
    pub transfer_dtmf: Option<String>,
    /// On SIGTERM new calls get 503 while the calls in progress may go on this long; then the
    /// bot says goodbye to the callers still on the line and hangs up.
    pub shutdown_grace_secs: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5060".parse().expect("address"),
            rtp_timeout_secs: 30,
            ring_ms: 0,
            endpoint: EndpointConfig::default(),
            media: MediaConfig::default(),
            transfer_target: None,
            registrar: None,
            transfer_dtmf: None,
            shutdown_grace_secs: 30,
        }
    }
}

/// What a call thread asks of the SIP side.
enum Command {
    Hangup(String),
    Refer(String),
    /// Keypad digits by SIP INFO (the caller offered no RFC 4733 events).
    InfoDigits(String, String),
}

/// What the SIP side tells a call thread.
enum CallSignal {
    Dtmf(char),
    /// The digits sent by INFO were all answered.
    DigitsSent,
    Confirmed,
    Ended,
    /// The service is stopping: say goodbye and hang up.
    Shutdown,
}

/// Where a server is in its life: taking calls, refusing new ones while the calls in progress go
/// on, or ending those too.
const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const CLOSING: u8 = 2;

pub struct SipServer {
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
    state: Arc<AtomicU8>,
    active: Arc<AtomicUsize>,
}

impl SipServer {
    /// Binds the SIP socket and starts answering calls on its own thread.
    /// `records.audio`: each call is recorded (stereo WAV) under `records.dir`; everything else
    /// kept of a call goes to `sink` as it happens.
    pub fn start(
        cfg: SipConfig,
        records: &crate::recording::RecordsConfig,
        sink: crate::record::RecordSink,
        session: SessionConfig,
        vad: SileroModel,
        pipeline: Arc<Pipeline>,
    ) -> std::io::Result<SipServer> {
        let recorder = if records.audio {
            Some(Arc::new(crate::recording::Recorder::start(&records.dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("recordings directory {}: {e}", records.dir.display()))
            })?))
        } else {
            None
        };
        let socket = UdpSocket::bind(cfg.listen)?;
        socket.set_read_timeout(Some(Duration::from_millis(10)))?;
        let local = socket.local_addr()?;
        // TCP on the same address and port.
        let tcp = std::net::TcpListener::bind(local)?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(AtomicU8::new(RUNNING));
        let active = Arc::new(AtomicUsize::new(0));
        let server = records.server.clone().unwrap_or_default();
        let ctx = Context { cfg, session, vad, pipeline, local, state: Arc::clone(&state), active: Arc::clone(&active), recorder, sink, server };
        let stop2 = Arc::clone(&stop);
        let (tcp_tx, tcp_rx) = mpsc::channel();
        let connections: Connections = Arc::default();
        {
            let (stop, connections) = (Arc::clone(&stop), Arc::clone(&connections));
            std::thread::Builder::new().name("ivr-sip-tcp".into()).spawn(move || accept_tcp(tcp, tcp_tx, connections, stop))?;
        }
        std::thread::Builder::new()
            .name("ivr-sip".into())
            .spawn(move || signalling(socket, tcp_rx, connections, ctx, stop2))?;
        Ok(SipServer { local, stop, state, active })
    }

    /// Calls in progress on this server.
    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Stops gracefully: new calls are refused with 503 at once; the calls in progress may go on
    /// for `grace`; then the bot says goodbye to those still on the line and hangs up (waiting up
    /// to 15 s more for that). Returns the calls that were still on at the end of the grace.
    pub fn shutdown(&self, grace: Duration) -> usize {
        self.state.store(DRAINING, Ordering::Relaxed);
        let wait = |limit: Duration| {
            let until = Instant::now() + limit;
            while self.active_calls() > 0 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        wait(grace);
        let left = self.active_calls();
        if left > 0 {
            tracing::info!(calls = left, "grace period over: ending the calls in progress");
            self.state.store(CLOSING, Ordering::Relaxed);
            wait(Duration::from_secs(15));
        }
        left
    }
}

impl Drop for SipServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Context {
    cfg: SipConfig,
    session: SessionConfig,
    vad: SileroModel,
    pipeline: Arc<Pipeline>,
    local: SocketAddr,
    state: Arc<AtomicU8>,
    active: Arc<AtomicUsize>,
    recorder: Option<Arc<crate::recording::Recorder>>,
    sink: crate::record::RecordSink,
    /// This server's name in the store.
    server: String,
}

/// Open TCP connections by id, for writing responses and requests back on them.
type Connections = Arc<std::sync::Mutex<HashMap<u64, std::net::TcpStream>>>;

/// A message framed off a TCP connection: (connection id, peer address, bytes), or `None` bytes
/// when the connection closed.
type TcpMessage = (u64, SocketAddr, Option<Vec<u8>>);

/// Accepts SIP over TCP; each connection gets a reader thread that frames messages by
/// Content-Length and hands them to the signalling thread.
fn accept_tcp(listener: std::net::TcpListener, to_sip: Sender<TcpMessage>, connections: Connections, stop: Arc<AtomicBool>) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(peer) = stream.peer_addr() else { continue };
        next_id += 1;
        let id = next_id;
        if let Ok(w) = stream.try_clone() {
            connections.lock().unwrap_or_else(|p| p.into_inner()).insert(id, w);
        }
        let (tx, connections) = (to_sip.clone(), Arc::clone(&connections));
        let _ = std::thread::Builder::new().name("ivr-sip-conn".into()).spawn(move || {
            read_tcp(stream, id, peer, &tx);
            connections.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            let _ = tx.send((id, peer, None));
        });
    }
}

fn read_tcp(mut stream: std::net::TcpStream, id: u64, peer: SocketAddr, tx: &Sender<TcpMessage>) {
    use std::io::Read;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(600)));
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match sip_bridge::sip::message::frame(&buf) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if tx.send((id, peer, Some(msg))).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream can never become a valid message again: say so and close.
                    if let Some(r) = sip_bridge::sip::message::best_effort_response(&buf, e.status(), &e.to_string()) {
                        use std::io::Write;
                        let _ = stream.write_all(&r);
                    }
                    return;
                }
            }
        }
    }
}

fn signalling(socket: UdpSocket, tcp: Receiver<TcpMessage>, connections: Connections, ctx: Context, stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut endpoint = Endpoint::new(ctx.cfg.endpoint.clone(), ctx.local);
    if let Some(reg) = ctx.cfg.registrar.clone().filter(|r| !r.accounts.is_empty()) {
        // Signs the nonces: a fresh secret per run, so challenges do not outlive the server.
        let mut secret = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut secret) {
            tracing::warn!("no random secret for the registrar's nonces ({e}); using the clock");
            secret[..16].copy_from_slice(&std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos().to_le_bytes());
        }
        endpoint = endpoint.with_registrar(sip_bridge::sip::registrar::Registrar::new(reg, secret));
    }
    let mut calls: HashMap<String, Sender<CallSignal>> = HashMap::new();
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let mut buf = vec![0u8; 65_536];
    // Calls ringing until they are answered: (when, call, caller, media).
    let mut ringing: Vec<(Duration, String, String, sip_bridge::sdp::Agreed)> = Vec::new();
    let mut closing_sent = false;
    while !stop.load(Ordering::Relaxed) {
        let now = started.elapsed();
        let state = ctx.state.load(Ordering::Relaxed);
        let (due, wait): (Vec<_>, Vec<_>) = ringing.drain(..).partition(|r| r.0 <= now || state != RUNNING);
        ringing = wait;
        for (_, call_id, from, media) in due {
            if state == RUNNING {
                answer(&ctx, &mut endpoint, &mut calls, &cmd_tx, call_id, from, media, now);
            } else {
                endpoint.reject(&call_id, 503, "Service Unavailable", now);
            }
        }
        if state == CLOSING && !closing_sent {
            closing_sent = true;
            for tx in calls.values() {
                let _ = tx.send(CallSignal::Shutdown);
            }
        }
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => endpoint.on_message(&buf[..n], Peer::Udp(from), started.elapsed()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => tracing::warn!("SIP socket: {e}"),
        }
        while let Ok((id, peer, bytes)) = tcp.try_recv() {
            if let Some(bytes) = bytes {
                endpoint.on_message(&bytes, Peer::Tcp(id, peer), started.elapsed());
            }
        }
        while let Ok(cmd) = cmd_rx.try_recv() {
            match cmd {
                Command::Hangup(id) => endpoint.hangup(&id, started.elapsed()),
                Command::InfoDigits(id, digits) => endpoint.send_info_digits(&id, &digits, started.elapsed()),
                Command::Refer(id) => match &ctx.cfg.transfer_target {
                    Some(target) => {
                        let now = started.elapsed();
                        // An agent whose phone registered here is reached where it registered.
                        let user = sip_bridge::sip::registrar::user_of(sip_bridge::sip::message::uri_of(target));
                        let registered = endpoint.registrar().and_then(|r| r.lookup(user, now)).map(|b| b.contact.clone());
                        endpoint.refer(&id, registered.as_deref().unwrap_or(target), now)
                    }
                    None => endpoint.hangup(&id, started.elapsed()),
                },
            }
        }
        let now = started.elapsed();
        if let Some(r) = endpoint.registrar() {
            metrics().phones_registered.set(r.registered(now) as i64);
        }
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.on_timeout(now);
        }
        while let Some(out) = endpoint.poll() {
            match out {
                Output::Send { to: Peer::Udp(addr), bytes } => {
                    if let Err(e) = socket.send_to(&bytes, addr) {
                        tracing::warn!("cannot send SIP to {addr}: {e}");
                    }
                }
                Output::Send { to: Peer::Tcp(id, addr), bytes } => {
                    use std::io::Write;
                    let mut conns = connections.lock().unwrap_or_else(|p| p.into_inner());
                    // Only on the connection the peer opened: a closed one means the peer is gone.
                    match conns.get_mut(&id).map(|c| c.write_all(&bytes)) {
                        Some(Ok(())) => {}
                        Some(Err(e)) => tracing::warn!("cannot send SIP to {addr} over TCP: {e}"),
                        None => tracing::debug!("TCP connection to {addr} is closed; dropped a message"),
                    }
                }
                Output::Call(CallEvent::Incoming { call_id, from, media }) => {
                    if ctx.state.load(Ordering::Relaxed) != RUNNING {
                        // Stopping: another server (or a retry later) takes the call.
                        endpoint.reject(&call_id, 503, "Service Unavailable", now);
                    } else if ctx.cfg.ring_ms == 0 {
                        answer(&ctx, &mut endpoint, &mut calls, &cmd_tx, call_id, from, media, now);
                    } else {
                        endpoint.ringing(&call_id, now);
                        ringing.push((now + Duration::from_millis(ctx.cfg.ring_ms as u64), call_id, from, media));
                    }
                }
                Output::Call(CallEvent::Confirmed { call_id }) => signal(&calls, &call_id, CallSignal::Confirmed),
                Output::Call(CallEvent::Dtmf { call_id, digit }) => signal(&calls, &call_id, CallSignal::Dtmf(digit)),
                Output::Call(CallEvent::DigitsSent { call_id }) => signal(&calls, &call_id, CallSignal::DigitsSent),
                Output::Call(CallEvent::Transfer { call_id, status }) => {
                    tracing::info!(%call_id, status, "transfer progress");
                    // Connected to the target, or failed: either way our part of the call is over.
                    if status >= 200 {
                        endpoint.hangup(&call_id, now);
                    }
                }
                Output::Call(CallEvent::Ended { call_id, why }) => {
                    tracing::info!(%call_id, ?why, "call ended");
                    ringing.retain(|r| r.1 != call_id);
                    if let Some(tx) = calls.remove(&call_id) {
                        let _ = tx.send(CallSignal::Ended);
                    }
                }
            }
        }
    }
}

/// Answers a call: its RTP socket, its thread, and the 200 OK.
#[allow(clippy::too_many_arguments)]
fn answer(
    ctx: &Context,
    endpoint: &mut Endpoint,
    calls: &mut HashMap<String, Sender<CallSignal>>,
    cmd_tx: &Sender<Command>,
    call_id: String,
    from: String,
    media: sip_bridge::sdp::Agreed,
    now: Duration,
) {
    // RTP and RTCP sockets on the SIP address's interface: an even port and the next one.
    let (rtp, rtcp) = match media_ports(ctx.local.ip()) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!("no RTP port: {e}");
            endpoint.reject(&call_id, 503, "Service Unavailable", now);
            return;
        }
    };
    let Ok(rtp_addr) = rtp.local_addr() else { return };
    let (tx, rx) = mpsc::channel();
    calls.insert(call_id.clone(), tx);
    let caller_id = from.strip_prefix("sip:").and_then(|u| u.split('@').next()).map(str::to_string);
    let seed = metrics().calls_started.get() ^ now.as_nanos() as u64;
    let media = MediaSession::new(&media, &ctx.cfg.media, seed, ntp_now(), Duration::ZERO);
    let call = CallThread {
        call_id: call_id.clone(),
        rtp,
        rtcp,
        media,
        // `end_of_turn_model` in the session's settings says whether the model is loaded.
        session: CallSession::new(ctx.session.clone(), ctx.vad.clone()).with_llm(true).with_turn_model(true),
        pipeline: Arc::clone(&ctx.pipeline),
        caller_id,
        signals: rx,
        commands: cmd_tx.clone(),
        rtp_timeout: Duration::from_secs(ctx.cfg.rtp_timeout_secs as u64),
        transfer: match (&ctx.cfg.transfer_target, &ctx.cfg.transfer_dtmf) {
            (Some(_), _) => Transfer::Refer,
            (None, Some(digits)) => Transfer::Keypad(digits.clone()),
            (None, None) => Transfer::HangUp,
        },
        active: Arc::clone(&ctx.active),
        shutting_down: false,
        recorder: ctx.recorder.clone(),
        number: metrics().calls_started.get(),
        log: CallLog::new(ctx.sink.clone(), &call_id, from, &ctx.server),
    };
    metrics().calls_started.inc();
    metrics().calls_active.inc();
    ctx.active.fetch_add(1, Ordering::Relaxed);
    let _ = std::thread::Builder::new().name("ivr-call".into()).spawn(move || call.run());
    endpoint.accept(&call_id, rtp_addr, now);
}

fn signal(calls: &HashMap<String, Sender<CallSignal>>, id: &str, s: CallSignal) {
    if let Some(tx) = calls.get(id) {
        let _ = tx.send(s);
    }
}

/// An RTP socket on an even port and its RTCP socket on the next (RFC 3550 11), as callers expect
/// when the SDP names only the RTP port.
fn media_ports(ip: std::net::IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let mut last = std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free even/odd port pair");
    for _ in 0..64 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 1 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
            Ok(rtcp) => return Ok((rtp, rtcp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The wall-clock time now in NTP format (seconds since 1900 in the high 32 bits), for RTCP.
fn ntp_now() -> u64 {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = unix.as_secs() + 2_208_988_800;
    (secs << 32) | ((unix.subsec_nanos() as u64) << 32) / 1_000_000_000
}

/// How a call thread carries out the session's transfer.
#[derive(Debug, Clone)]
enum Transfer {
    /// REFER to the configured target (the signalling thread sends it).
    Refer,
    /// Keypad digits to the PBX in front of us, then hang up.
    Keypad(String),
    /// Nowhere to transfer to: the call ends.
    HangUp,
}

struct CallThread {
    transfer: Transfer,
    call_id: String,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    media: MediaSession,
    session: CallSession,
    pipeline: Arc<Pipeline>,
    caller_id: Option<String>,
    signals: Receiver<CallSignal>,
    commands: Sender<Command>,
    rtp_timeout: Duration,
    log: CallLog,
    /// The server's count of calls in progress (this call leaves it when it ends).
    active: Arc<AtomicUsize>,
    /// The server told this call to end (it is stopping).
    shutting_down: bool,
    recorder: Option<Arc<crate::recording::Recorder>>,
    /// This call's number on the server (tells recordings apart).
    number: u64,
}

/// A call's record as it is written to the store: its id there, the next numbers of its lines
/// and events, and what is known of its end.
struct CallLog {
    sink: crate::record::RecordSink,
    call: ivr_store::NewCall,
    next_turn: i64,
    next_event: i64,
    /// The caller's latest line (its stages arrive when the reply starts).
    last_caller_turn: Option<i64>,
    ended_by: String,
}

impl CallLog {
    fn new(sink: crate::record::RecordSink, sip_call_id: &str, from: String, server: &str) -> Self {
        // The store's own id: a SIP Call-ID may come again (another server, a retry).
        let mut nonce = [0u8; 8];
        if getrandom::fill(&mut nonce).is_err() {
            nonce = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64).to_le_bytes();
        }
        let started_at = jiff::Timestamp::now().to_string();
        let id = format!("{}-{}", started_at.replace([':', '.'], "").trim_end_matches('Z'), nonce.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let call = ivr_store::NewCall { id, sip_call_id: Some(sip_call_id.to_string()), caller: from, started_at, server: server.to_string(), recording: None };
        Self { sink, call, next_turn: 0, next_event: 0, last_caller_turn: None, ended_by: String::new() }
    }

    fn start(&self) {
        self.sink.start_call(self.call.clone());
    }

    fn said(&mut self, who: Speaker, text: String, at: Duration) {
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

    fn stages(&self, stages: ivr_store::Stages) {
        if let Some(seq) = self.last_caller_turn {
            self.sink.stages(&self.call.id, seq, stages);
        }
    }

    fn event(&mut self, kind: &str, at: Duration, detail: Option<serde_json::Value>) {
        let seq = self.next_event;
        self.next_event += 1;
        self.sink.event(&self.call.id, ivr_store::Event { seq, at_secs: at.as_secs_f64(), kind: kind.into(), detail });
    }

    fn end(&mut self, at: Duration, media: &sip_bridge::rtp::media::MediaStats) {
        if self.ended_by.is_empty() {
            self.ended_by = "caller".into();
        }
        self.event("hangup", at, Some(serde_json::json!({"by": self.ended_by})));
        let end = ivr_store::CallEnd {
            ended_at: jiff::Timestamp::now().to_string(),
            duration_secs: at.as_secs_f64(),
            ended_by: self.ended_by.clone(),
            media: serde_json::to_value(media).ok(),
        };
        self.sink.end_call(&self.call.id, end);
    }
}

impl CallThread {
    fn run(mut self) {
        let recording = self.recorder.as_ref().map(|r| r.open(self.number, &self.call_id, &self.log.call.started_at));
        self.log.call.recording = recording.as_ref().map(|r| r.path.display().to_string());
        self.log.start();
        let _ = self.rtp.set_nonblocking(true);
        let _ = self.rtcp.set_nonblocking(true);
        let (link, replies) = CallLink::new(self.caller_id.as_deref());
        let started = Instant::now();
        let frame = Duration::from_millis(20);
        let mut tick = 0u64;
        let mut cancelled: HashSet<u64> = HashSet::new();
        let mut inbound = [0.0f32; FRAME_SAMPLES];
        let mut outbound = [0.0f32; FRAME_SAMPLES];
        let mut buf = vec![0u8; 2048];
        let mut answered = false;
        // Set once a keypad transfer starts: when its digits were all sent.
        let mut keypad_transfer: Option<Option<Duration>> = None;
        let mut info_digits_pending = false;
        loop {
            let now = started.elapsed();
            // The frame due now goes out first, before anything slow (the VAD) runs on this tick.
            if answered {
                self.session.fill_frame(&mut outbound, now);
                let packet = self.media.packetize(&outbound, self.session.is_speaking(), now);
                let _ = self.rtp.send_to(&packet, self.media.remote());
                metrics().frames_out.inc();
                if started.elapsed() > frame * tick as u32 + Duration::from_millis(10) {
                    metrics().frames_late.inc();
                }
            }
            // Signalling.
            let mut ended = false;
            while let Ok(s) = self.signals.try_recv() {
                match s {
                    CallSignal::Confirmed if !answered => {
                        answered = true;
                        self.session.handle(Event::Answered, now);
                        self.log.event("answered", now, None);
                    }
                    CallSignal::Confirmed => {}
                    CallSignal::Dtmf(d) => {
                        self.log.event("key", now, Some(serde_json::json!({"key": d.to_string(), "via": "info"})));
                        self.session.handle(Event::Dtmf(d), now);
                    }
                    CallSignal::DigitsSent => info_digits_pending = false,
                    CallSignal::Ended => ended = true,
                    CallSignal::Shutdown => {
                        self.shutting_down = true;
                        self.session.handle(Event::Shutdown, now);
                    }
                }
            }
            if ended {
                self.session.handle(Event::RemoteHangup, now);
                self.log.ended_by = "caller".into();
                break;
            }
            // Media in.
            while let Ok((n, from)) = self.rtp.recv_from(&mut buf) {
                if let Some(d) = self.media.on_datagram(&buf[..n], from, now) {
                    self.log.event("key", now, Some(serde_json::json!({"key": d.to_string(), "via": "rfc4733"})));
                    self.session.handle(Event::Dtmf(d), now);
                }
            }
            while let Ok((n, from)) = self.rtcp.recv_from(&mut buf) {
                self.media.on_rtcp_datagram(&buf[..n], from, now);
            }
            if answered {
                if let Some((report, to)) = self.media.poll_rtcp(now) {
                    let _ = self.rtcp.send_to(&report, to);
                }
            }
            // Work done.
            while let Ok(r) = replies.try_recv() {
                match r {
                    Reply::Delta { job, text } => self.session.handle(Event::LlmDelta { job, text: &text }, now),
                    Reply::Done { job, result } => {
                        if !cancelled.contains(&job) {
                            self.session.handle(Event::Done { job, result }, now);
                        }
                    }
                }
            }
            self.media.next_frame(&mut inbound);
            if answered {
                self.session.handle(Event::Audio(&inbound), now);
                if let Some(r) = &recording {
                    r.frame(&inbound, &outbound);
                }
            }
            let mut hang_up = false;
            let mut refer = false;
            // A keypad transfer: the digits go out, then two seconds for the PBX to take the call.
            if let Some(sent) = keypad_transfer.as_mut() {
                match sent {
                    None if !self.media.sending_digits() && !info_digits_pending => *sent = Some(now),
                    Some(at) if now.saturating_sub(*at) >= Duration::from_secs(2) => hang_up = true,
                    _ => {}
                }
            }
            while let Some(o) = self.session.poll() {
                match o {
                    SessionOutput::Job { id, job } => self.pipeline.submit(&link, id, job),
                    SessionOutput::Cancel(id) => {
                        cancelled.insert(id);
                        link.cancelled.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                    }
                    SessionOutput::Action(a) => {
                        tracing::info!(call_id = %self.call_id, action = ?a, "call action");
                        self.log.event("action", now, serde_json::to_value(&a).ok());
                        if let dialogue::manager::Action::Transfer { reason, .. } = &a {
                            let reason = serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                            metrics().transfers.with_label_values(&[reason.as_str()]).inc();
                            self.log.event("transfer", now, Some(serde_json::json!({"reason": reason})));
                        }
                        self.log.ended_by = if self.shutting_down { "shutdown" } else { "bot" }.into();
                        match (&a, &self.transfer) {
                            (dialogue::manager::Action::Transfer { .. }, Transfer::Refer) => {
                                refer = true;
                                hang_up = true;
                            }
                            (dialogue::manager::Action::Transfer { .. }, Transfer::Keypad(digits)) => {
                                if !self.media.send_digits(digits) {
                                    // No RFC 4733 events offered: SIP INFO instead.
                                    info_digits_pending = true;
                                    let _ = self.commands.send(Command::InfoDigits(self.call_id.clone(), digits.clone()));
                                }
                                keypad_transfer = Some(None);
                            }
                            _ => hang_up = true,
                        }
                    }
                    SessionOutput::Said { who, text, at } => {
                        tracing::info!(call_id = %self.call_id, ?who, %text);
                        self.log.said(who, text, at);
                    }
                    SessionOutput::BargeIn { at } => {
                        self.log.event("barge_in", at, None);
                        tracing::info!(call_id = %self.call_id, at_secs = at.as_secs_f64(), "barge-in");
                        metrics().barge_ins.inc();
                    }
                    SessionOutput::Timing(t) => {
                        let v2v = t.voice_to_voice().map(|d| d.as_millis() as u64);
                        tracing::info!(call_id = %self.call_id, voice_to_voice_ms = v2v, "turn");
                        let stages = crate::record::stages_of(&t);
                        crate::metrics::observe_turn(&stages);
                        self.log.stages(stages);
                    }
                }
            }
            if !hang_up && answered && self.media.silent_for(now) > self.rtp_timeout {
                self.log.ended_by = "rtp timeout".into();
            }
            if hang_up || answered && self.media.silent_for(now) > self.rtp_timeout {
                let cmd = if refer { Command::Refer(self.call_id.clone()) } else { Command::Hangup(self.call_id.clone()) };
                let _ = self.commands.send(cmd);
                break;
            }
            tick += 1;
            let due = frame * tick as u32;
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        link.ended.store(true, Ordering::Relaxed);
        if let Some((bye, to)) = self.media.rtcp_bye() {
            let _ = self.rtcp.send_to(&bye, to);
        }
        drop(recording);
        self.log.end(started.elapsed(), &self.media.stats());
        metrics().calls_ended.with_label_values(&[self.log.ended_by.replace(' ', "_").as_str()]).inc();
        metrics().calls_active.dec();
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}
