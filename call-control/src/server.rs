//! The thin IO layer: a UDP socket for SIP, one UDP socket per call for RTP, and a thread per call
//! that drives its `CallSession` every 20 ms. All protocol decisions are made by the sans-IO parts
//! (`sip::endpoint::Endpoint`, `rtp::media::MediaSession`, `voice_pipeline::session::CallSession`).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use crate::metrics::metrics;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use voice_pipeline::session::live::Pipeline;
use voice_pipeline::session::SessionConfig;
use voice_pipeline::vad::SileroModel;

use crate::driver::Stop;
use sip_bridge::rtp::media::MediaConfig;
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
    /// How a transfer reaches `transfer_target`: "refer" (the caller's side is asked to call it)
    /// or "invite" (this server calls it, with the summary in X-Summary, User-to-User and
    /// Call-Info, and bridges the caller to it; the target's host must be an IP address or a
    /// name this machine resolves).
    pub transfer_method: String,
    /// The hand-off (caller, reason, summary, the call's URL) is POSTed here as JSON, for the CRM.
    pub handoff_webhook: Option<String>,
    /// Where a call's record is on this server's HTTP side, for Call-Info and the webhook (the
    /// call's id is appended); default: `http://<--http address>/api/v1/calls/`.
    pub call_url: Option<String>,
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
    /// The agents' queue here (warm transfer to agents whose phones register with this server;
    /// agents come from the store, `ivr agents`). When set, transfers go to it.
    pub queue: Option<crate::acd::AcdConfig>,
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
            transfer_method: "refer".into(),
            handoff_webhook: None,
            call_url: None,
            registrar: None,
            transfer_dtmf: None,
            shutdown_grace_secs: 30,
            queue: None,
        }
    }
}

/// What a call's leg asks of the signalling thread.
pub(crate) enum Command {
    Ring(String),
    /// Answer with our RTP address.
    Answer(String, SocketAddr),
    Reject(String, u16, String),
    Hangup(String),
    /// REFER the call `.0` to `.1`, with these headers.
    Refer(String, String, Vec<(String, String)>),
    /// Keypad digits by SIP INFO (the caller offered no RFC 4733 events).
    InfoDigits(String, String),
    /// Ring an agent's phone for a waiting caller (the queue's offer); the agent's leg goes to
    /// the caller's call on `control`.
    Dial { call: String, agent: String, extension: String, caller: String, control: Sender<crate::driver::Control> },
    /// Call the company's PBX (a hand-off with the summary in the headers); the leg goes to the
    /// caller's call on `control`, or a failure as the leg's hang-up.
    DialUri { target: String, caller: String, headers: Vec<(sip_bridge::sip::message::HeaderName, String)>, control: Sender<crate::driver::Control> },
    /// The agents' phones that may register (from the store).
    Phones(Vec<sip_bridge::sip::registrar::PhoneAccount>),
    /// A browser's call, its offer answered: start it (the server's stop reaches it on `stop`).
    Browser { call_id: String, from: String, leg: Box<crate::browser_leg::BrowserLeg>, page: Sender<crate::browser_leg::ToPage>, stop: Receiver<Stop> },
}

/// What the signalling thread tells a call's leg.
pub(crate) enum CallSignal {
    Dtmf(char),
    /// The digits sent by INFO were all answered.
    DigitsSent,
    Confirmed,
    /// A call we placed was answered with this media.
    Answered(sip_bridge::sdp::Agreed),
    Ended,
}

/// A call in progress as the signalling thread knows it: its leg's signals and the server's.
struct CallHandle {
    signals: Sender<CallSignal>,
    /// None for a leg we placed (an agent's): the caller's call owns it.
    stop: Option<Sender<Stop>>,
}

/// Where a server is in its life: taking calls, refusing new ones while the calls in progress go
/// on, or ending those too.
pub(crate) const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const CLOSING: u8 = 2;

pub struct SipServer {
    pub local: SocketAddr,
    /// The agents' queue, when configured.
    pub desk: Option<Arc<crate::desk::Desk>>,
    stop: Arc<AtomicBool>,
    state: Arc<AtomicU8>,
    active: Arc<AtomicUsize>,
    commands: Sender<Command>,
    browsers: crate::browser::Registry,
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
        let browsers: crate::browser::Registry = Arc::default();
        let server = records.server.clone().unwrap_or_default();
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        let desk = match &cfg.queue {
            Some(q) => {
                let realm = cfg.registrar.clone().unwrap_or_default().realm;
                Some(crate::desk::Desk::start(q.clone(), sink.clone(), server.clone(), cmd_tx.clone(), realm)?)
            }
            None => None,
        };
        let voicemails = match &desk {
            Some(_) => Some(Arc::new(crate::voicemail::Voicemails::start(&records.dir.join("voicemail"), Arc::clone(&pipeline), sink.clone())?)),
            None => None,
        };
        let ctx = Context {
            cfg,
            session,
            vad,
            pipeline,
            local,
            state: Arc::clone(&state),
            active: Arc::clone(&active),
            recorder,
            sink,
            server,
            desk: desk.clone(),
            voicemails,
            browsers: Arc::clone(&browsers),
        };
        let stop2 = Arc::clone(&stop);
        let commands = cmd_tx.clone();
        let (tcp_tx, tcp_rx) = mpsc::channel();
        let connections: Connections = Arc::default();
        {
            let (stop, connections) = (Arc::clone(&stop), Arc::clone(&connections));
            std::thread::Builder::new().name("ivr-sip-tcp".into()).spawn(move || accept_tcp(tcp, tcp_tx, connections, stop))?;
        }
        std::thread::Builder::new()
            .name("ivr-sip".into())
            .spawn(move || signalling(socket, tcp_rx, connections, ctx, (commands, cmd_rx), stop2))?;
        Ok(SipServer { local, desk, stop, state, active, commands: cmd_tx, browsers })
    }

    /// Browser (WebRTC) calls through this server: same session, queue and records as SIP calls.
    pub fn browser_calls(&self, cfg: sip_bridge::webrtc::WebRtcConfig) -> crate::browser::BrowserCalls {
        crate::browser::BrowserCalls::new(cfg, self.commands.clone(), Arc::clone(&self.state), Arc::clone(&self.browsers))
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

pub(crate) struct Context {
    pub(crate) cfg: SipConfig,
    pub(crate) session: SessionConfig,
    pub(crate) vad: SileroModel,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) local: SocketAddr,
    state: Arc<AtomicU8>,
    pub(crate) active: Arc<AtomicUsize>,
    pub(crate) recorder: Option<Arc<crate::recording::Recorder>>,
    pub(crate) sink: crate::record::RecordSink,
    /// This server's name in the store.
    pub(crate) server: String,
    pub(crate) desk: Option<Arc<crate::desk::Desk>>,
    /// Where callers who cannot reach anyone leave messages (with the queue).
    pub(crate) voicemails: Option<Arc<crate::voicemail::Voicemails>>,
    /// Browser calls in progress.
    pub(crate) browsers: crate::browser::Registry,
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

fn signalling(socket: UdpSocket, tcp: Receiver<TcpMessage>, connections: Connections, ctx: Context, (cmd_tx, cmd_rx): (Sender<Command>, Receiver<Command>), stop: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut endpoint = Endpoint::new(ctx.cfg.endpoint.clone(), ctx.local);
    // Agents' phones register here when there is a queue (their accounts come from the store).
    let registrar = ctx.cfg.registrar.clone().filter(|r| !r.accounts.is_empty()).or_else(|| ctx.desk.as_ref().map(|_| ctx.cfg.registrar.clone().unwrap_or_default()));
    if let Some(reg) = registrar {
        // Signs the nonces: a fresh secret per run, so challenges do not outlive the server.
        let mut secret = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut secret) {
            tracing::warn!("no random secret for the registrar's nonces ({e}); using the clock");
            secret[..16].copy_from_slice(&std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos().to_le_bytes());
        }
        endpoint = endpoint.with_registrar(sip_bridge::sip::registrar::Registrar::new(reg, secret));
    }
    let mut calls: HashMap<String, CallHandle> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut told = RUNNING;
    while !stop.load(Ordering::Relaxed) {
        // The server's state changed: every call is told (each decides what that means for it).
        let state = ctx.state.load(Ordering::Relaxed);
        if state != told {
            told = state;
            let s = if state == DRAINING { Stop::Draining } else { Stop::Shutdown };
            for c in calls.values() {
                if let Some(stop) = &c.stop {
                    let _ = stop.send(s);
                }
            }
            for c in ctx.browsers.lock().unwrap_or_else(|p| p.into_inner()).values() {
                let _ = c.stop.send(s);
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
            let now = started.elapsed();
            match cmd {
                Command::Ring(id) => endpoint.ringing(&id, now),
                Command::Answer(id, rtp) => endpoint.accept(&id, rtp, now),
                Command::Reject(id, status, reason) => endpoint.reject(&id, status, &reason, now),
                Command::Hangup(id) => endpoint.hangup(&id, now),
                Command::InfoDigits(id, digits) => endpoint.send_info_digits(&id, &digits, now),
                Command::Phones(phones) => {
                    if let Some(r) = endpoint.registrar_mut() {
                        r.set_phones(phones);
                    }
                }
                Command::Dial { call, agent, extension, caller, control } => {
                    let placed = agent_phone(&endpoint, &extension, ctx.local, now).and_then(|to| place(&ctx, &mut endpoint, &cmd_tx, to, &caller, Vec::new(), now));
                    match placed {
                        Ok((agent_call_id, handle, leg)) => {
                            tracing::info!(%call, %agent, %extension, %agent_call_id, "ringing the agent");
                            calls.insert(agent_call_id, handle);
                            let _ = control.send(crate::driver::Control::AgentLeg { agent, leg: Box::new(leg) });
                        }
                        Err(why) => {
                            tracing::info!(%call, %agent, %extension, "cannot ring the agent: {why}");
                            if let Some(d) = &ctx.desk {
                                d.unreachable(&call, &agent);
                            }
                        }
                    }
                }
                Command::DialUri { target, caller, headers, control } => {
                    match pbx_address(&target).and_then(|to| place(&ctx, &mut endpoint, &cmd_tx, to, &caller, headers, now)) {
                        Ok((pbx_call_id, handle, leg)) => {
                            tracing::info!(%target, %pbx_call_id, "handing over to the PBX");
                            calls.insert(pbx_call_id, handle);
                            let _ = control.send(crate::driver::Control::AgentLeg { agent: crate::attendant::PBX.into(), leg: Box::new(leg) });
                        }
                        Err(why) => {
                            tracing::warn!(%target, "cannot call the PBX: {why}");
                            let failed = crate::attendant::Input::Agent(sip_bridge::leg::LegEvent::HungUp);
                            let _ = control.send(crate::driver::Control::Attendant(failed));
                        }
                    }
                }
                Command::Browser { call_id, from, leg, page, stop } => {
                    if let Err(e) = crate::live::start_browser_call(&ctx, &cmd_tx, &call_id, from, *leg, page, stop) {
                        tracing::error!(%call_id, "cannot take the browser call: {e}");
                        ctx.browsers.lock().unwrap_or_else(|p| p.into_inner()).remove(&call_id);
                    }
                }
                Command::Refer(id, target, headers) => {
                    // An agent whose phone registered here is reached where it registered.
                    let user = sip_bridge::sip::registrar::user_of(sip_bridge::sip::message::uri_of(&target));
                    let registered = endpoint.registrar().and_then(|r| r.lookup(user, now)).map(|b| b.contact.clone());
                    endpoint.refer(&id, registered.as_deref().unwrap_or(&target), &headers, now)
                }
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
                    } else {
                        match crate::live::start_call(&ctx, &cmd_tx, &call_id, from, &media) {
                            Ok((signals, stop)) => {
                                calls.insert(call_id, CallHandle { signals, stop: Some(stop) });
                            }
                            Err(e) => {
                                tracing::error!(%call_id, "cannot take the call: {e}");
                                endpoint.reject(&call_id, 503, "Service Unavailable", now);
                            }
                        }
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
                Output::Call(CallEvent::Progress { call_id, status }) => tracing::debug!(%call_id, status, "ringing"),
                Output::Call(CallEvent::Answered { call_id, media }) => signal(&calls, &call_id, CallSignal::Answered(media)),
                Output::Call(CallEvent::Ended { call_id, why }) => {
                    tracing::info!(%call_id, ?why, "call ended");
                    if let Some(c) = calls.remove(&call_id) {
                        let _ = c.signals.send(CallSignal::Ended);
                    }
                }
            }
        }
    }
}

/// Where a call we place goes: its Request-URI, where the INVITE is sent, and its To.
type Destination = (String, sip_bridge::sip::endpoint::Peer, String);

/// An agent's phone: the contact its extension registered, reached where it registered from.
fn agent_phone(endpoint: &Endpoint, extension: &str, local: SocketAddr, now: Duration) -> Result<Destination, String> {
    let binding = endpoint.registrar().and_then(|r| r.lookup(extension, now)).ok_or_else(|| format!("extension {extension} is not registered"))?;
    Ok((binding.contact.clone(), binding.source, format!("sip:{extension}@{}", local.ip())))
}

/// A PBX at `target`: a SIP URI whose host is an IP address or a name this machine resolves
/// (port 5060 unless given), over UDP.
fn pbx_address(target: &str) -> Result<Destination, String> {
    let uri = sip_bridge::sip::message::uri_of(target);
    let hostport = uri.split_once(':').map(|(_, r)| r).unwrap_or(uri);
    let hostport = hostport.rsplit_once('@').map(|(_, h)| h).unwrap_or(hostport);
    let hostport = hostport.split([';', '?']).next().unwrap_or_default();
    let with_port = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:5060") };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port).map_err(|e| format!("{hostport}: {e}"))?.next().ok_or_else(|| format!("{hostport}: no address"))?;
    Ok((uri.to_string(), sip_bridge::sip::endpoint::Peer::Udp(addr), uri.to_string()))
}

/// Places a call (an agent's warm transfer or a PBX hand-off): its media sockets, the INVITE with
/// the caller's number as caller ID, and the leg the caller's call will drive with its handle here.
fn place(
    ctx: &Context,
    endpoint: &mut Endpoint,
    commands: &Sender<Command>,
    (target, peer, to): Destination,
    caller: &str,
    headers: Vec<(sip_bridge::sip::message::HeaderName, String)>,
    now: Duration,
) -> Result<(String, CallHandle, crate::sip_leg::SipLeg), String> {
    let ports = crate::sip_leg::media_ports(ctx.local.ip()).map_err(|e| format!("no media ports: {e}"))?;
    let rtp = ports.0.local_addr().map_err(|e| e.to_string())?;
    let outgoing = sip_bridge::sip::endpoint::OutgoingCall { target, peer, to, caller_id: caller.to_string(), rtp, headers };
    let call_id = endpoint.invite(outgoing, now);
    let (signals, signal_rx) = mpsc::channel();
    let leg = crate::sip_leg::SipLeg::outbound(call_id.clone(), ports, ctx.cfg.media.clone(), signal_rx, commands.clone());
    Ok((call_id, CallHandle { signals, stop: None }, leg))
}

fn signal(calls: &HashMap<String, CallHandle>, id: &str, s: CallSignal) {
    if let Some(c) = calls.get(id) {
        let _ = c.signals.send(s);
    }
}
