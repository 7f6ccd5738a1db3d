//! The SIP user agent server that answers calls, sans-IO: messages in (with where they came from and
//! the time), messages out (with where to send them) and call events for the application.
//!
//! Responses go back to where the request came from (RFC 3261 18.2.2 with RFC 3581 rport), never to
//! an address read from the message, and in-dialog requests (BYE) to the address the caller's
//! INVITE came from: symmetric signalling, which also works through NAT.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::message::{HeaderName, Message, Method, ParseError, StartLine};
use super::registrar::Registrar;
use super::transaction::{self, ClientEvent, ClientTransaction, Key, ServerTransaction, T1, T2};
use crate::sdp::{self, Agreed, Codec, Offer};

mod uac;
pub use uac::OutgoingCall;

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Udp(SocketAddr),
    /// A TCP connection (by the transport's id) and its remote address.
    Tcp(u64, SocketAddr),
}

impl Peer {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(a) | Peer::Tcp(_, a) => *a,
        }
    }
    fn reliable(&self) -> bool {
        matches!(self, Peer::Tcp(..))
    }
    fn transport(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "UDP",
            Peer::Tcp(..) => "TCP",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Codecs in order of preference.
    pub codecs: Vec<Codec>,
    /// Calls at once; more get 503 with Retry-After.
    pub max_calls: usize,
    pub retry_after_secs: u32,
    pub user_agent: String,
    /// New calls accepted per second from one source address (a burst of twice that is allowed);
    /// more get 503. Protects the models from a flood or a looping peer.
    pub invites_per_sec: f64,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self { codecs: vec![Codec::Pcmu, Codec::Pcma, Codec::G722], max_calls: 50, retry_after_secs: 5, user_agent: "ivr".into(), invites_per_sec: 5.0 }
    }
}

/// What happened to a call, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A new call with its agreed media; answer with [`Endpoint::accept`] or [`Endpoint::reject`].
    Incoming { call_id: String, from: String, media: Agreed },
    /// The caller acknowledged our answer: media may flow.
    Confirmed { call_id: String },
    /// A keypad digit by SIP INFO (the RFC 4733 ones come with the media).
    Dtmf { call_id: String, digit: char },
    /// How a transfer (our REFER) goes: the caller's NOTIFYs carry the status of their call to the
    /// target (100 trying, 200 connected, 4xx-6xx failed); a refused or unanswered REFER reports
    /// its own status (408 when the caller never answered it).
    Transfer { call_id: String, status: u16 },
    /// Every digit queued by [`Endpoint::send_info_digits`] has been answered (or given up on).
    DigitsSent { call_id: String },
    /// A call we placed is ringing (180) or in progress (183).
    Progress { call_id: String, status: u16 },
    /// A call we placed was answered (and acknowledged): media may flow.
    Answered { call_id: String, media: Agreed },
    Ended { call_id: String, why: EndReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (BYE).
    RemoteBye,
    /// The caller gave up before the answer (CANCEL).
    Cancelled,
    /// Our 200 OK was never acknowledged.
    NoAck,
    /// We hung up.
    LocalBye,
    Rejected,
    /// A call we placed was refused with this status (408: no answer at all).
    Unanswered(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Send { to: Peer, bytes: Vec<u8> },
    Call(CallEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogState {
    /// INVITE received, not yet answered.
    Early,
    /// 200 OK sent, waiting for the ACK.
    Answered,
    Confirmed,
}

/// A request we sent, with its client transaction.
#[derive(Debug)]
struct Sent {
    call_id: String,
    method: Method,
    peer: Peer,
    tx: ClientTransaction,
}

#[derive(Debug)]
struct Dialog {
    state: DialogState,
    peer: Peer,
    /// The INVITE that made the dialog: the caller's (we answered it), or ours (see `uac`).
    invite: Message,
    /// Set when we placed the call: what the callee's answer fixed for our requests in it.
    uac: Option<uac::Remote>,
    local_tag: String,
    media: Agreed,
    /// The 200 OK, retransmitted until the ACK (RFC 3261 13.3.1.4).
    ok: Option<Vec<u8>>,
    ok_next: Duration,
    ok_interval: Duration,
    ok_deadline: Duration,
    /// Our CSeq for requests we send in the dialog.
    local_cseq: u32,
    /// Keypad digits still to send by INFO, one request at a time.
    info_digits: VecDeque<char>,
    info_in_flight: bool,
}

impl Dialog {
    /// A dialog made by `invite` (theirs or ours), before any request of ours in it.
    fn new(state: DialogState, peer: Peer, invite: Message, local_tag: String, media: Agreed) -> Self {
        Self {
            state,
            peer,
            invite,
            uac: None,
            local_tag,
            media,
            ok: None,
            ok_next: Duration::ZERO,
            ok_interval: T1,
            ok_deadline: Duration::ZERO,
            local_cseq: 1,
            info_digits: VecDeque::new(),
            info_in_flight: false,
        }
    }
}

pub struct Endpoint {
    cfg: EndpointConfig,
    /// What we put in Via and Contact.
    local: SocketAddr,
    /// Server transactions and the peer each request came from.
    transactions: HashMap<Key, (ServerTransaction, Peer)>,
    dialogs: HashMap<String, Dialog>,
    /// Our media address per answered call.
    rtp: HashMap<String, SocketAddr>,
    /// Requests we sent (BYE, REFER), by Via branch, retransmitted over UDP until answered.
    sent: HashMap<String, Sent>,
    /// Calls we placed (INVITE client transactions), by Via branch.
    outgoing: HashMap<String, uac::Outgoing>,
    outputs: VecDeque<Output>,
    next_id: u64,
    /// Per source address: tokens left and when they were counted (INVITE rate limit).
    buckets: HashMap<std::net::IpAddr, (f64, Duration)>,
    /// Answers REGISTER when the agents' phones register here.
    registrar: Option<Registrar>,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig, local: SocketAddr) -> Self {
        Self {
            cfg,
            local,
            transactions: HashMap::new(),
            dialogs: HashMap::new(),
            rtp: HashMap::new(),
            sent: HashMap::new(),
            outgoing: HashMap::new(),
            outputs: VecDeque::new(),
            next_id: 1,
            buckets: HashMap::new(),
            registrar: None,
        }
    }

    /// Accept REGISTER from the agents' phones (405 without a registrar).
    pub fn with_registrar(mut self, registrar: Registrar) -> Self {
        self.registrar = Some(registrar);
        self
    }

    pub fn registrar(&self) -> Option<&Registrar> {
        self.registrar.as_ref()
    }

    pub fn registrar_mut(&mut self) -> Option<&mut Registrar> {
        self.registrar.as_mut()
    }

    /// What we answer in Allow headers.
    fn allow(&self) -> String {
        allowed(self.registrar.is_some())
    }

    /// Whether this endpoint acts on requests of this method (the Allow list).
    fn takes(&self, method: &Method) -> bool {
        TAKEN.contains(method) || (*method == Method::Register && self.registrar.is_some())
    }

    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn calls(&self) -> usize {
        self.dialogs.len()
    }

    fn token(&mut self) -> String {
        self.next_id += 1;
        format!("{:x}{:04x}", self.next_id.wrapping_mul(0x9e3779b97f4a7c15) >> 16, self.next_id & 0xffff)
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        self.outputs.push_back(Output::Send { to, bytes });
    }

    fn event(&mut self, e: CallEvent) {
        self.outputs.push_back(Output::Call(e));
    }

    /// A datagram or a framed stream message from `from`.
    pub fn on_message(&mut self, bytes: &[u8], from: Peer, now: Duration) {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => return self.on_unparsable(bytes, &e, from),
        };
        if !msg.is_request() {
            return self.on_response(&msg, now);
        }
        let Some(key) = Key::of(&msg) else {
            return self.reply(&msg, from, 400, "Missing Via branch", now);
        };
        // A request its transaction already knows: a retransmission, or the ACK of a rejection.
        if let Some((tx, peer)) = self.transactions.get_mut(&key) {
            // Answered where the copy came from: a NAT may have moved the peer to a new port.
            *peer = from;
            let events = tx.on_request(&msg, now);
            self.transaction_events(&key, events);
            if msg.method() != Some(&Method::Ack) {
                return;
            }
        }
        // A UAS is where a request ends, so Max-Forwards is not checked here: it protects
        // forwarding loops, and nothing is forwarded (RFC 4475 3.3.11).
        let Some(method) = msg.method().cloned() else { return };
        // RFC 3261 8.2.1: a method we do not know is 501, one we know but do not take 405.
        if !self.takes(&method) {
            let (status, reason) = if matches!(method, Method::Extension(_)) { (501, "Not Implemented") } else { (405, "Method Not Allowed") };
            let mut r = msg.response(status, reason, Some(&self.token()));
            r.add_header(HeaderName::Allow, self.allow());
            return self.respond(&msg, r, from, now);
        }
        if let Some(refusal) = self.refusal(&msg, &method) {
            return self.respond(&msg, refusal, from, now);
        }
        match method {
            Method::Invite => self.on_invite(msg, from, now),
            Method::Ack => self.on_ack(&msg),
            Method::Cancel => self.on_cancel(&msg, from, now),
            Method::Bye => {
                if self.dialogs.remove(msg.call_id()).is_some() {
                    self.reply(&msg, from, 200, "OK", now);
                    self.event(CallEvent::Ended { call_id: msg.call_id().to_string(), why: EndReason::RemoteBye });
                } else {
                    self.reply(&msg, from, 481, "Call/Transaction Does Not Exist", now);
                }
            }
            Method::Options => {
                let mut r = msg.response(200, "OK", Some(&self.token()));
                r.add_header(HeaderName::Allow, self.allow());
                r.add_header(HeaderName::Accept, "application/sdp");
                self.respond(&msg, r, from, now);
            }
            Method::Info => self.on_info(&msg, from, now),
            Method::Notify => self.on_notify(&msg, from, now),
            Method::Register => {
                let tag = self.token();
                let Some(registrar) = self.registrar.as_mut() else { return };
                let mut r = registrar.on_register(&msg, from, now);
                if r.to_tag().is_none() {
                    let to = format!("{};tag={tag}", r.header(HeaderName::To).unwrap_or(""));
                    r.set_header(HeaderName::To, to);
                }
                self.respond(&msg, r, from, now);
            }
            // Refused above.
            _ => {}
        }
    }

    /// The checks of RFC 3261 8.2.2 for a request of a method we take, in its order: a
    /// Request-URI scheme we do not serve gets 416 (RFC 4475 3.3.2, 3.3.3); a Require naming an
    /// extension we do not have gets 420 listing it in Unsupported (3.3.5; never for ACK or
    /// CANCEL). An ACK is never answered.
    fn refusal(&mut self, msg: &Message, method: &Method) -> Option<Message> {
        if *method == Method::Ack {
            return None;
        }
        let scheme = msg.uri().and_then(super::grammar::scheme_of).unwrap_or("").to_ascii_lowercase();
        if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
            return Some(msg.response(416, "Unsupported URI Scheme", Some(&self.token())));
        }
        let required = msg.header_values(HeaderName::Require);
        if *method != Method::Cancel && !required.is_empty() {
            let mut r = msg.response(420, "Bad Extension", Some(&self.token()));
            r.add_header(HeaderName::Unsupported, required.join(", "));
            return Some(r);
        }
        None
    }

    /// Bytes that are not a valid message: a request gets 400 (513 when too large) with the
    /// reason, if it carries enough to be answered at all; anything else is dropped.
    fn on_unparsable(&mut self, bytes: &[u8], e: &ParseError, from: Peer) {
        tracing::debug!(%e, ?from, "unparsable SIP message");
        if let Some(r) = super::message::best_effort_response(bytes, e.status(), &e.to_string()) {
            self.send(from, r);
        }
    }

    fn reply(&mut self, req: &Message, to: Peer, status: u16, reason: &str, now: Duration) {
        let tag = self.token();
        let r = req.response(status, reason, Some(&tag));
        self.respond(req, r, to, now);
    }

    /// Sends a response through the request's transaction (created on demand).
    fn respond(&mut self, req: &Message, mut response: Message, to: Peer, now: Duration) {
        response.set_header(HeaderName::Server, self.cfg.user_agent.clone());
        let Some(key) = Key::of(req) else {
            self.send(to, response.to_bytes());
            return;
        };
        if req.method() == Some(&Method::Ack) {
            return;
        }
        let (tx, _) = self.transactions.entry(key.clone()).or_insert_with(|| (ServerTransaction::new(req, to.reliable()), to));
        let events = tx.respond(&response, now);
        let mut sends = Vec::new();
        let mut done = false;
        for e in events {
            match e {
                transaction::Event::Send(b) => sends.push(b),
                transaction::Event::Terminated => done = true,
                transaction::Event::NoAck => {}
            }
        }
        for b in sends {
            self.send(to, b);
        }
        if done {
            self.transactions.remove(&key);
        }
    }

    fn transaction_events(&mut self, key: &Key, events: Vec<transaction::Event>) {
        let peer = self.transactions.get(key).map(|(_, p)| *p);
        for e in events {
            match e {
                transaction::Event::Send(b) => {
                    // Retransmissions go where the request came from.
                    if let Some(p) = peer {
                        self.send(p, b);
                    }
                }
                transaction::Event::Terminated => {
                    self.transactions.remove(key);
                }
                transaction::Event::NoAck => {}
            }
        }
    }

    fn on_invite(&mut self, msg: Message, from: Peer, now: Duration) {
        let call_id = msg.call_id().to_string();
        if msg.to_tag().is_some() {
            // A re-INVITE (hold and unhold): answer with the same media, direction adjusted.
            let Some(d) = self.dialogs.get(&call_id) else {
                return self.reply(&msg, from, 481, "Call/Transaction Does Not Exist", now);
            };
            let (local_tag, media) = (d.local_tag.clone(), d.media.clone());
            let offer = Offer::parse(&msg.body);
            let media = match offer.as_ref().map(|o| sdp::negotiate(o, &self.cfg.codecs)) {
                Ok(Ok(m)) => m,
                Ok(Err(_)) | Err(_) if msg.body.is_empty() => media,
                _ => return self.reply(&msg, from, 488, "Not Acceptable Here", now),
            };
            let mut r = msg.response(200, "OK", Some(&local_tag));
            r.add_header(HeaderName::Contact, format!("<sip:ivr@{};transport={}>", self.local, from.transport().to_lowercase()));
            r.add_header(HeaderName::ContentType, "application/sdp");
            r.body = sdp::describe(&media, self.rtp_of(&call_id), 1, 2).into_bytes();
            if let Some(d) = self.dialogs.get_mut(&call_id) {
                d.media = media;
            }
            return self.respond(&msg, r, from, now);
        }
        if self.dialogs.contains_key(&call_id) {
            return self.reply(&msg, from, 482, "Loop Detected", now);
        }
        if !self.admit(from.addr().ip(), now) {
            let mut r = msg.response(503, "Service Unavailable (too many calls from this address)", Some(&self.token()));
            r.add_header(HeaderName::RetryAfter, self.cfg.retry_after_secs.to_string());
            return self.respond(&msg, r, from, now);
        }
        if self.dialogs.len() >= self.cfg.max_calls {
            let mut r = msg.response(503, "Service Unavailable", Some(&self.token()));
            r.add_header(HeaderName::RetryAfter, self.cfg.retry_after_secs.to_string());
            return self.respond(&msg, r, from, now);
        }
        if let Some(r) = self.unacceptable_content(&msg) {
            return self.respond(&msg, r, from, now);
        }
        if msg.body.is_empty() {
            return self.reply(&msg, from, 488, "Not Acceptable Here (an SDP offer is required)", now);
        }
        let media = match Offer::parse(&msg.body).and_then(|o| sdp::negotiate(&o, &self.cfg.codecs)) {
            Ok(m) => m,
            Err(e) => {
                let mut r = msg.response(488, "Not Acceptable Here", Some(&self.token()));
                r.add_header(HeaderName::Warning, format!("399 ivr \"{e}\""));
                return self.respond(&msg, r, from, now);
            }
        };
        let trying = msg.response(100, "Trying", None);
        self.respond(&msg, trying, from, now);
        let local_tag = self.token();
        let from_uri = msg.header(HeaderName::From).map(|f| super::message::uri_of(f).to_string()).unwrap_or_default();
        self.dialogs.insert(
            call_id.clone(),
            Dialog::new(DialogState::Early, from, msg, local_tag, media.clone()),
        );
        self.event(CallEvent::Incoming { call_id, from: from_uri, media });
    }

    /// RFC 3261 8.2.3 for a new call: a body that is not SDP, or encoded in a way we do not
    /// read, gets 415 saying what we take (RFC 4475 3.3.6); a caller whose Accept leaves out SDP
    /// could not read our answer, so 406 (3.3.15).
    fn unacceptable_content(&mut self, msg: &Message) -> Option<Message> {
        let media_type = |v: &str| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let content_type = msg.header(HeaderName::ContentType).map(media_type);
        let encoded = msg.header_values(HeaderName::ContentEncoding).iter().any(|e| !e.eq_ignore_ascii_case("identity"));
        if (!msg.body.is_empty() && content_type.as_deref() != Some("application/sdp")) || encoded {
            let mut r = msg.response(415, "Unsupported Media Type", Some(&self.token()));
            r.add_header(HeaderName::Accept, "application/sdp");
            r.add_header(HeaderName::AcceptEncoding, "identity");
            return Some(r);
        }
        let accepts = msg.header_values(HeaderName::Accept);
        let takes_sdp = accepts.is_empty() || accepts.iter().any(|a| matches!(media_type(a).as_str(), "application/sdp" | "application/*" | "*/*"));
        if !takes_sdp {
            let mut r = msg.response(406, "Not Acceptable", Some(&self.token()));
            r.add_header(HeaderName::Accept, "application/sdp");
            return Some(r);
        }
        None
    }

    /// Token bucket per source address for new calls.
    fn admit(&mut self, ip: std::net::IpAddr, now: Duration) -> bool {
        let rate = self.cfg.invites_per_sec.max(0.001);
        let burst = (rate * 2.0).max(1.0);
        // Forget addresses that have been quiet long enough to be full again (bounded memory).
        if self.buckets.len() > 10_000 {
            self.buckets.retain(|_, (_, t)| now.saturating_sub(*t).as_secs_f64() * rate < burst);
        }
        let (tokens, last) = self.buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_sub(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn rtp_of(&self, call_id: &str) -> SocketAddr {
        self.rtp.get(call_id).copied().unwrap_or(self.local)
    }

    /// Answers a call: 200 OK with our media at `rtp`, retransmitted until the ACK.
    pub fn accept(&mut self, call_id: &str, rtp: SocketAddr, now: Duration) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        if d.state != DialogState::Early {
            return;
        }
        let mut r = d.invite.response(200, "OK", Some(&d.local_tag));
        r.add_header(HeaderName::Contact, format!("<sip:ivr@{};transport={}>", self.local, d.peer.transport().to_lowercase()));
        r.add_header(HeaderName::Allow, allowed(false));
        r.add_header(HeaderName::ContentType, "application/sdp");
        r.body = sdp::describe(&d.media, rtp, now.as_millis() as u64, 1).into_bytes();
        d.state = DialogState::Answered;
        d.ok_next = now + T1;
        d.ok_interval = T1;
        d.ok_deadline = now + 64 * T1;
        let (invite, peer) = (d.invite.clone(), d.peer);
        d.ok = Some({
            let mut r2 = r.clone();
            r2.set_header(HeaderName::Server, self.cfg.user_agent.clone());
            r2.to_bytes()
        });
        self.rtp.insert(call_id.to_string(), rtp);
        self.respond(&invite, r, peer, now);
    }

    /// Tells the caller the call is ringing (180, with our tag).
    pub fn ringing(&mut self, call_id: &str, now: Duration) {
        let Some(d) = self.dialogs.get(call_id).filter(|d| d.state == DialogState::Early) else { return };
        let (r, invite, peer) = (d.invite.response(180, "Ringing", Some(&d.local_tag)), d.invite.clone(), d.peer);
        self.respond(&invite, r, peer, now);
    }

    /// Refuses a call that has not been answered (486 Busy Here, 603 Decline, ...).
    pub fn reject(&mut self, call_id: &str, status: u16, reason: &str, now: Duration) {
        let Some(d) = self.dialogs.remove(call_id) else { return };
        if d.state != DialogState::Early {
            self.dialogs.insert(call_id.to_string(), d);
            return;
        }
        let r = d.invite.response(status, reason, Some(&d.local_tag));
        self.respond(&d.invite, r, d.peer, now);
        self.event(CallEvent::Ended { call_id: call_id.to_string(), why: EndReason::Rejected });
    }

    /// Hangs up an answered call (BYE).
    pub fn hangup(&mut self, call_id: &str, now: Duration) {
        if self.ringing_out(call_id) {
            return self.cancel_outgoing(call_id, now);
        }
        let Some(mut d) = self.dialogs.remove(call_id) else { return };
        d.local_cseq += 1;
        let branch = format!("z9hG4bK{}", self.token());
        let bye = self.in_dialog_request(&d, Method::Bye, &branch);
        self.send_request(call_id, d.peer, bye, branch, now);
        self.rtp.remove(call_id);
        self.event(CallEvent::Ended { call_id: call_id.to_string(), why: EndReason::LocalBye });
    }

    /// Blind transfer (RFC 3515): asks the caller to call `target` (a SIP URI). Progress comes as
    /// [`CallEvent::Transfer`]; the call stays up until the application hangs up.
    /// `headers` go in the REFER itself (a PBX receiving it may pass them on to its agents).
    pub fn refer(&mut self, call_id: &str, target: &str, headers: &[(String, String)], now: Duration) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        d.local_cseq += 1;
        let branch = format!("z9hG4bK{}", self.token());
        let Some(d) = self.dialogs.get(call_id) else { return };
        let mut refer = self.in_dialog_request(d, Method::Refer, &branch);
        refer.add_header(HeaderName::ReferTo, format!("<{target}>"));
        refer.add_header(HeaderName::ReferredBy, format!("<sip:ivr@{}>", self.local));
        refer.add_header(HeaderName::Contact, format!("<sip:ivr@{}>", self.local));
        for (name, value) in headers {
            refer.add_header(HeaderName::Other(name.clone()), value.clone());
        }
        let peer = d.peer;
        self.send_request(call_id, peer, refer, branch, now);
    }

    /// Sends keypad digits by SIP INFO (`application/dtmf-relay`), for a caller that did not offer
    /// RFC 4733 events: one request per digit, each after the previous one was answered, so that
    /// no peer sees overlapping INFOs. [`CallEvent::DigitsSent`] follows the last.
    pub fn send_info_digits(&mut self, call_id: &str, digits: &str, now: Duration) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        d.info_digits.extend(digits.chars());
        if !d.info_in_flight {
            self.next_info_digit(call_id, now);
        }
    }

    fn next_info_digit(&mut self, call_id: &str, now: Duration) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let Some(digit) = d.info_digits.pop_front() else {
            if std::mem::take(&mut d.info_in_flight) {
                self.event(CallEvent::DigitsSent { call_id: call_id.to_string() });
            }
            return;
        };
        d.local_cseq += 1;
        d.info_in_flight = true;
        let branch = format!("z9hG4bK{}", self.token());
        let Some(d) = self.dialogs.get(call_id) else { return };
        let mut info = self.in_dialog_request(d, Method::Info, &branch);
        info.add_header(HeaderName::ContentType, "application/dtmf-relay");
        info.body = format!("Signal={digit}\r\nDuration=160\r\n").into_bytes();
        let peer = d.peer;
        self.send_request(call_id, peer, info, branch, now);
    }

    /// Sends a request of ours and keeps it, by its Via branch, for retransmission until answered
    /// (Timers E and F over UDP).
    fn send_request(&mut self, call_id: &str, peer: Peer, msg: Message, branch: String, now: Duration) {
        let bytes = msg.to_bytes();
        self.send(peer, bytes.clone());
        let Some(method) = msg.method().cloned() else { return };
        self.sent.insert(
            branch,
            Sent { call_id: call_id.into(), method, peer, tx: ClientTransaction::new(bytes, peer.reliable(), now) },
        );
    }

    /// A response to a request we sent.
    fn on_response(&mut self, msg: &Message, now: Duration) {
        let Some(branch) = msg.top_via().and_then(|v| v.branch) else { return };
        let Some(status) = msg.status() else { return };
        if msg.cseq().is_some_and(|c| c.method == Method::Invite) {
            return self.on_invite_response(&branch, msg, status, now);
        }
        let Some(s) = self.sent.get_mut(&branch) else { return };
        let events = s.tx.on_response(status, now);
        self.client_events(&branch, events, now);
    }

    /// What a client transaction of ours reported.
    fn client_events(&mut self, branch: &str, events: Vec<ClientEvent>, now: Duration) {
        for e in events {
            let Some(s) = self.sent.get(branch) else { return };
            let (call_id, method, peer) = (s.call_id.clone(), s.method.clone(), s.peer);
            match e {
                ClientEvent::Retransmit(bytes) => self.send(peer, bytes),
                ClientEvent::Final(status) => self.request_done(&call_id, &method, status, now),
                ClientEvent::Timeout => self.request_done(&call_id, &method, 408, now),
                ClientEvent::Terminated => {
                    self.sent.remove(branch);
                }
            }
        }
    }

    /// Our request got its final answer (408 when none came).
    fn request_done(&mut self, call_id: &str, method: &Method, status: u16, now: Duration) {
        match method {
            Method::Refer if status >= 300 => self.event(CallEvent::Transfer { call_id: call_id.to_string(), status }),
            Method::Info => self.next_info_digit(call_id, now),
            _ => {}
        }
    }

    /// NOTIFY for our REFER: the status line of the caller's call to the target (message/sipfrag).
    fn on_notify(&mut self, msg: &Message, from: Peer, now: Duration) {
        let call_id = msg.call_id().to_string();
        if !self.dialogs.contains_key(&call_id) {
            return self.reply(msg, from, 481, "Call/Transaction Does Not Exist", now);
        }
        let is_refer = msg.header(HeaderName::Event).is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"));
        if !is_refer {
            return self.reply(msg, from, 489, "Bad Event", now);
        }
        self.reply(msg, from, 200, "OK", now);
        let body = String::from_utf8_lossy(&msg.body);
        let status = body.lines().next().and_then(|l| l.strip_prefix("SIP/2.0 ")).and_then(|r| r.get(..3)).and_then(|c| c.parse::<u16>().ok());
        if let Some(status) = status {
            self.event(CallEvent::Transfer { call_id, status });
        }
    }

    /// A request inside the dialog, from us to the other party (the caller, or the callee of a
    /// call we placed).
    fn in_dialog_request(&self, d: &Dialog, method: Method, branch: &str) -> Message {
        let inv = &d.invite;
        let (target, from, to, route) = match &d.uac {
            // Our From stays ours; their To carries their tag; their route set reversed.
            Some(r) => (r.target.clone(), inv.header(HeaderName::From).unwrap_or("<sip:ivr>").to_string(), r.to.clone(), r.route.clone()),
            // Our From is their To (with our tag), our To is their From; the route set in
            // order (RFC 3261 12.1.1 for the callee's requests).
            None => (
                inv.header(HeaderName::Contact).map(super::message::uri_of).unwrap_or("sip:caller").to_string(),
                format!("{};tag={}", inv.header(HeaderName::To).unwrap_or("<sip:ivr>"), d.local_tag),
                inv.header(HeaderName::From).unwrap_or("<sip:caller>").to_string(),
                inv.header_values(HeaderName::RecordRoute).into_iter().map(str::to_string).collect(),
            ),
        };
        let mut m = Message { start: StartLine::Request { method: method.clone(), uri: target }, headers: Vec::new(), body: Vec::new() };
        m.add_header(HeaderName::Via, format!("SIP/2.0/{} {};branch={branch};rport", d.peer.transport(), self.local));
        m.add_header(HeaderName::MaxForwards, "70");
        m.add_header(HeaderName::From, from);
        m.add_header(HeaderName::To, to);
        m.add_header(HeaderName::CallId, inv.call_id().to_string());
        m.add_header(HeaderName::CSeq, format!("{} {method}", d.local_cseq));
        for r in route {
            m.add_header(HeaderName::Route, r);
        }
        m.add_header(HeaderName::UserAgent, self.cfg.user_agent.clone());
        m
    }

    fn on_ack(&mut self, msg: &Message) {
        let call_id = msg.call_id().to_string();
        if let Some(d) = self.dialogs.get_mut(&call_id) {
            if d.state == DialogState::Answered && msg.to_tag() == Some(d.local_tag.as_str()) {
                d.state = DialogState::Confirmed;
                d.ok = None;
                self.event(CallEvent::Confirmed { call_id });
            }
        }
    }

    fn on_cancel(&mut self, msg: &Message, from: Peer, now: Duration) {
        let call_id = msg.call_id().to_string();
        let early = self.dialogs.get(&call_id).is_some_and(|d| d.state == DialogState::Early);
        if !early {
            return self.reply(msg, from, 481, "Call/Transaction Does Not Exist", now);
        }
        self.reply(msg, from, 200, "OK", now);
        if let Some(d) = self.dialogs.remove(&call_id) {
            let r = d.invite.response(487, "Request Terminated", Some(&d.local_tag));
            self.respond(&d.invite, r, d.peer, now);
        }
        self.event(CallEvent::Ended { call_id, why: EndReason::Cancelled });
    }

    fn on_info(&mut self, msg: &Message, from: Peer, now: Duration) {
        let call_id = msg.call_id().to_string();
        if !self.dialogs.contains_key(&call_id) {
            return self.reply(msg, from, 481, "Call/Transaction Does Not Exist", now);
        }
        let kind = msg.header(HeaderName::ContentType).unwrap_or("").to_ascii_lowercase();
        let body = String::from_utf8_lossy(&msg.body);
        // application/dtmf-relay: "Signal=5\r\nDuration=160"; application/dtmf: "5".
        let digit = if kind.starts_with("application/dtmf-relay") {
            body.lines().find_map(|l| l.split_once('=').filter(|(k, _)| k.trim().eq_ignore_ascii_case("signal")).map(|(_, v)| v.trim().to_string()))
        } else if kind.starts_with("application/dtmf") {
            Some(body.trim().to_string())
        } else {
            None
        };
        let digit = digit.and_then(|d| {
            let mut c = d.chars();
            match (c.next(), c.next()) {
                (Some(x), None) if x.is_ascii_digit() || matches!(x, '*' | '#' | 'A'..='D') => Some(x),
                _ => match d.as_str() {
                    "10" => Some('*'),
                    "11" => Some('#'),
                    _ => None,
                },
            }
        });
        self.reply(msg, from, 200, "OK", now);
        if let Some(digit) = digit {
            self.event(CallEvent::Dtmf { call_id, digit });
        }
    }

    /// When [`Self::on_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let tx = self.transactions.values().filter_map(|(t, _)| t.poll_timeout()).min();
        let ok = self.dialogs.values().filter(|d| d.ok.is_some()).map(|d| d.ok_next.min(d.ok_deadline)).min();
        let sent = self.sent.values().filter_map(|s| s.tx.poll_timeout()).min();
        let outgoing = self.outgoing.values().filter_map(|o| o.tx.poll_timeout()).min();
        [tx, ok, sent, outgoing].into_iter().flatten().min()
    }

    pub fn on_timeout(&mut self, now: Duration) {
        if let Some(r) = self.registrar.as_mut() {
            r.expire(now);
        }
        let keys: Vec<Key> =
            self.transactions.iter().filter(|(_, (t, _))| t.poll_timeout().is_some_and(|t| t <= now)).map(|(k, _)| k.clone()).collect();
        for k in keys {
            if let Some((tx, _)) = self.transactions.get_mut(&k) {
                let events = tx.on_timeout(now);
                self.transaction_events(&k, events);
            }
        }
        // Our requests: their client transactions' timers (E, F, K).
        let due: Vec<String> = self.sent.iter().filter(|(_, s)| s.tx.poll_timeout().is_some_and(|t| t <= now)).map(|(b, _)| b.clone()).collect();
        for branch in due {
            if let Some(s) = self.sent.get_mut(&branch) {
                let events = s.tx.on_timeout(now);
                self.client_events(&branch, events, now);
            }
        }
        self.outgoing_timeouts(now);
        // 2xx retransmission until the ACK; without one, the call is ended (RFC 3261 13.3.1.4).
        let mut resend = Vec::new();
        let mut give_up = Vec::new();
        for (id, d) in self.dialogs.iter_mut() {
            let Some(ok) = &d.ok else { continue };
            if now >= d.ok_deadline {
                give_up.push(id.clone());
            } else if now >= d.ok_next && !d.peer.reliable() {
                resend.push((d.peer, ok.clone()));
                d.ok_interval = (d.ok_interval * 2).min(T2);
                d.ok_next = now + d.ok_interval;
            } else if d.peer.reliable() {
                d.ok_next = d.ok_deadline;
            }
        }
        for (to, bytes) in resend {
            self.send(to, bytes);
        }
        for id in give_up {
            tracing::info!(call_id = %id, "no ACK for our 200 OK; ending the call");
            self.hangup(&id, now);
            // The caller never confirmed: report it as that, not as our hangup.
            if let Some(Output::Call(CallEvent::Ended { why, .. })) = self.outputs.back_mut() {
                *why = EndReason::NoAck;
            }
        }
    }
}

/// What we answer in Allow headers.
/// The methods this endpoint acts on (REGISTER too when it has a registrar).
const TAKEN: [Method; 7] = [Method::Invite, Method::Ack, Method::Cancel, Method::Bye, Method::Options, Method::Info, Method::Notify];

/// An Allow header's value: the methods taken, REGISTER with them when asked.
fn allowed(register: bool) -> String {
    let mut methods: Vec<&str> = TAKEN.iter().map(Method::as_str).collect();
    if register {
        methods.push(Method::Register.as_str());
    }
    methods.join(", ")
}
