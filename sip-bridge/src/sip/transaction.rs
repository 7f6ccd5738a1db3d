//! Server transactions (RFC 3261 section 17.2, with RFC 6026's Accepted state), sans-IO.
//!
//! A transaction absorbs the network's retransmissions of one request and retransmits our final
//! response over UDP until the peer stops asking. It takes requests, our responses and the time
//! (`Duration` since the endpoint started), and returns bytes to send; it never touches a socket or
//! reads a clock. Client transactions (our BYE, REFER, INFO) follow the same pattern
//! ([`ClientTransaction`], RFC 3261 section 17.1.2).

use std::time::Duration;

use super::message::{Message, Method};

/// The prefix of a branch made the RFC 3261 way (unique per transaction).
const MAGIC_COOKIE: &str = "z9hG4bK";

/// RTT estimate.
pub const T1: Duration = Duration::from_millis(500);
/// Longest retransmit interval for non-INVITE requests and INVITE responses.
pub const T2: Duration = Duration::from_secs(4);
/// How long a message may live in the network.
pub const T4: Duration = Duration::from_secs(5);

/// What identifies a transaction (RFC 3261 17.2.3): the top Via's branch and sent-by, and the
/// method (ACK belongs to its INVITE's transaction; CANCEL has its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub branch: String,
    pub sent_by: String,
    pub method: Method,
}

impl Key {
    pub fn of(msg: &Message) -> Option<Key> {
        let via = msg.top_via()?;
        let method = match msg.method() {
            Some(Method::Ack) => Method::Invite,
            Some(m) => m.clone(),
            None => msg.cseq()?.method,
        };
        // A branch without the magic cookie (or with nothing after it) comes from an RFC 2543
        // element: its requests are matched by Call-ID, CSeq number and From tag instead, which
        // an ACK or CANCEL shares with its INVITE (RFC 3261 17.2.3, RFC 4475 3.2.1 and 3.4.1).
        let branch = match via.branch {
            Some(b) if b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE) => b,
            _ => format!("rfc2543;{};{};{}", msg.call_id(), msg.cseq()?.number, msg.from_tag().unwrap_or("")),
        };
        Some(Key { branch, sent_by: format!("{}:{}", via.host, via.port.unwrap_or(5060)), method })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Request received, no final response yet (a provisional one may have been sent).
    Proceeding,
    /// INVITE answered with 2xx: retransmitted INVITEs are absorbed, ACKs go to the dialog.
    Accepted,
    /// Final non-2xx response sent: retransmitted until the ACK (INVITE) or kept for retransmitted
    /// requests (non-INVITE).
    Completed,
    /// ACK received for a non-2xx final response; absorbing ACK retransmissions.
    Confirmed,
    Terminated,
}

/// What the transaction wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send these bytes to the peer.
    Send(Vec<u8>),
    /// An INVITE's non-2xx final response was never acknowledged (Timer H).
    NoAck,
    /// The transaction is over; forget it.
    Terminated,
}

#[derive(Debug)]
pub struct ServerTransaction {
    invite: bool,
    /// Over TCP the transport is reliable: no retransmissions, and no lingering.
    reliable: bool,
    state: State,
    last_response: Option<Vec<u8>>,
    /// Next response retransmission (Timer G) and its interval.
    retransmit_at: Option<Duration>,
    interval: Duration,
    /// When the current state ends (Timers H, I, J, L).
    state_ends_at: Option<Duration>,
}

impl ServerTransaction {
    pub fn new(request: &Message, reliable: bool) -> Self {
        Self {
            invite: request.method() == Some(&Method::Invite),
            reliable,
            state: State::Proceeding,
            last_response: None,
            retransmit_at: None,
            interval: T1,
            state_ends_at: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The same request again (a retransmission), or the ACK of an INVITE. Returns what to resend.
    pub fn on_request(&mut self, request: &Message, now: Duration) -> Vec<Event> {
        let _ = now;
        if request.method() == Some(&Method::Ack) {
            if self.invite && self.state == State::Completed {
                self.state = State::Confirmed;
                self.retransmit_at = None;
                // Timer I: absorb ACK retransmissions for T4 (none over TCP).
                self.state_ends_at = Some(now + if self.reliable { Duration::ZERO } else { T4 });
                return self.expire(now);
            }
            return Vec::new();
        }
        match self.state {
            // A retransmitted request: send the latest response again.
            State::Proceeding | State::Completed => self.last_response.clone().map(Event::Send).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Our response to the request. Returns what to send.
    pub fn respond(&mut self, response: &Message, now: Duration) -> Vec<Event> {
        let Some(status) = response.status() else { return Vec::new() };
        if !matches!(self.state, State::Proceeding) {
            return Vec::new();
        }
        let bytes = response.to_bytes();
        self.last_response = Some(bytes.clone());
        let mut out = vec![Event::Send(bytes)];
        if status < 200 {
            return out;
        }
        if self.invite && status < 300 {
            // RFC 6026: the dialog retransmits the 2xx; this absorbs INVITE copies for 64*T1.
            self.state = State::Accepted;
            self.state_ends_at = Some(now + 64 * T1);
        } else if self.invite {
            self.state = State::Completed;
            if !self.reliable {
                self.retransmit_at = Some(now + T1);
                self.interval = T1;
            }
            // Timer H: wait this long for the ACK.
            self.state_ends_at = Some(now + 64 * T1);
        } else {
            self.state = State::Completed;
            // Timer J: keep the response for retransmitted requests (none over TCP).
            self.state_ends_at = Some(now + if self.reliable { Duration::ZERO } else { 64 * T1 });
        }
        out.extend(self.expire(now));
        out
    }

    /// When [`Self::on_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match (self.retransmit_at, self.state_ends_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timeout(&mut self, now: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(at) = self.retransmit_at.filter(|&at| at <= now) {
            if self.state == State::Completed {
                if let Some(r) = &self.last_response {
                    out.push(Event::Send(r.clone()));
                }
                // Timer G doubles up to T2.
                self.interval = (self.interval * 2).min(T2);
                self.retransmit_at = Some(at + self.interval);
            } else {
                self.retransmit_at = None;
            }
        }
        out.extend(self.expire(now));
        out
    }

    fn expire(&mut self, now: Duration) -> Vec<Event> {
        if self.state_ends_at.is_none_or(|t| t > now) {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.invite && self.state == State::Completed {
            out.push(Event::NoAck);
        }
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.state_ends_at = None;
        out.push(Event::Terminated);
        out
    }
}

/// Where our own (non-INVITE) request stands (RFC 3261 17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Sent, nothing heard: retransmitted with doubling intervals up to T2 (Timer E).
    Trying,
    /// A provisional response came: retransmitted every T2.
    Proceeding,
    /// Final response delivered; copies of it are absorbed for T4 over UDP (Timer K).
    Completed,
    Terminated,
}

/// What a client transaction reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Send the request again.
    Retransmit(Vec<u8>),
    /// The final response's status, once (retransmitted copies are absorbed).
    Final(u16),
    /// No final response within 64*T1 (Timer F): the request failed (as a 408).
    Timeout,
    Terminated,
}

/// A non-INVITE request we sent (BYE, REFER, INFO), sans-IO: our request's bytes in, responses
/// and the time in, retransmissions and its outcome out.
#[derive(Debug)]
pub struct ClientTransaction {
    request: Vec<u8>,
    reliable: bool,
    state: ClientState,
    /// Next retransmission (Timer E) and its interval.
    retransmit_at: Option<Duration>,
    interval: Duration,
    /// Timer F while waiting; Timer K once completed.
    ends_at: Duration,
}

impl ClientTransaction {
    /// The request was just sent at `now` (by the caller of this).
    pub fn new(request: Vec<u8>, reliable: bool, now: Duration) -> Self {
        Self {
            request,
            reliable,
            state: ClientState::Trying,
            retransmit_at: (!reliable).then_some(now + T1),
            interval: T1,
            ends_at: now + 64 * T1,
        }
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    /// A response to this request.
    pub fn on_response(&mut self, status: u16, now: Duration) -> Vec<ClientEvent> {
        match (self.state, status) {
            (ClientState::Trying | ClientState::Proceeding, 100..=199) => {
                if self.state == ClientState::Trying && !self.reliable {
                    self.retransmit_at = Some(now + T2);
                    self.interval = T2;
                }
                self.state = ClientState::Proceeding;
                Vec::new()
            }
            (ClientState::Trying | ClientState::Proceeding, 200..=699) => {
                self.retransmit_at = None;
                if self.reliable {
                    self.state = ClientState::Terminated;
                    vec![ClientEvent::Final(status), ClientEvent::Terminated]
                } else {
                    self.state = ClientState::Completed;
                    self.ends_at = now + T4;
                    vec![ClientEvent::Final(status)]
                }
            }
            // Copies of the final response, or nonsense.
            _ => Vec::new(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            ClientState::Terminated => None,
            _ => Some(self.retransmit_at.map_or(self.ends_at, |r| r.min(self.ends_at))),
        }
    }

    pub fn on_timeout(&mut self, now: Duration) -> Vec<ClientEvent> {
        if self.state == ClientState::Terminated {
            return Vec::new();
        }
        if now >= self.ends_at {
            let waiting = matches!(self.state, ClientState::Trying | ClientState::Proceeding);
            self.state = ClientState::Terminated;
            self.retransmit_at = None;
            return if waiting { vec![ClientEvent::Timeout, ClientEvent::Terminated] } else { vec![ClientEvent::Terminated] };
        }
        match self.retransmit_at {
            Some(at) if now >= at => {
                if self.state == ClientState::Trying {
                    self.interval = (self.interval * 2).min(T2);
                }
                self.retransmit_at = Some(now + self.interval);
                vec![ClientEvent::Retransmit(self.request.clone())]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str) -> Message {
        let text = format!(
            "{method} sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-t1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:ivr@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 {}\r\nContent-Length: 0\r\n\r\n",
            if method == "ACK" { "ACK" } else { method }
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn sends(events: &[Event]) -> usize {
        events.iter().filter(|e| matches!(e, Event::Send(_))).count()
    }

    #[test]
    fn a_rejected_invite_is_retransmitted_with_doubling_intervals_until_acked() {
        let invite = request("INVITE");
        let mut tx = ServerTransaction::new(&invite, false);
        assert_eq!(sends(&tx.respond(&invite.response(100, "Trying", None), ms(0))), 1);
        assert_eq!(sends(&tx.on_request(&invite, ms(300))), 1, "a retransmitted INVITE gets the 100 again");
        assert_eq!(sends(&tx.respond(&invite.response(486, "Busy Here", Some("x")), ms(400))), 1);
        // Timer G: 500 ms, then 1 s, 2 s, 4 s, 4 s ...
        let mut resent = Vec::new();
        let mut now = ms(400);
        while let Some(t) = tx.poll_timeout() {
            if t > ms(12_000) {
                break;
            }
            now = t;
            if sends(&tx.on_timeout(now)) > 0 {
                resent.push(now.as_millis());
            }
        }
        assert_eq!(resent, vec![900, 1900, 3900, 7900, 11900]);
        let ack = request("ACK");
        assert_eq!(Key::of(&ack), Key::of(&invite), "the ACK belongs to the INVITE's transaction");
        tx.on_request(&ack, now);
        assert_eq!(tx.state(), State::Confirmed);
        assert_eq!(tx.on_timeout(now + T4), vec![Event::Terminated]);
    }

    #[test]
    fn an_unacknowledged_rejection_gives_up_after_64_t1() {
        let invite = request("INVITE");
        let mut tx = ServerTransaction::new(&invite, false);
        tx.respond(&invite.response(603, "Decline", Some("x")), ms(0));
        let mut events = Vec::new();
        while let Some(t) = tx.poll_timeout() {
            events.extend(tx.on_timeout(t));
        }
        assert!(events.ends_with(&[Event::NoAck, Event::Terminated]), "{events:?}");
        assert_eq!(tx.state(), State::Terminated);
    }

    #[test]
    fn an_accepted_invite_absorbs_copies_and_tcp_does_not_retransmit() {
        let invite = request("INVITE");
        let mut tx = ServerTransaction::new(&invite, true);
        tx.respond(&invite.response(200, "OK", Some("x")), ms(0));
        assert_eq!(tx.state(), State::Accepted);
        assert!(tx.on_request(&invite, ms(100)).is_empty(), "the dialog resends the 2xx, not the transaction");
        assert_eq!(tx.on_timeout(64 * T1), vec![Event::Terminated]);

        let bye = request("BYE");
        let mut tx = ServerTransaction::new(&bye, true);
        let out = tx.respond(&bye.response(200, "OK", None), ms(0));
        assert_eq!(out.last(), Some(&Event::Terminated), "over TCP a non-INVITE ends at once");
    }

    #[test]
    fn a_non_invite_request_retransmitted_gets_the_same_response() {
        let options = request("OPTIONS");
        let mut tx = ServerTransaction::new(&options, false);
        let first = tx.respond(&options.response(200, "OK", None), ms(0));
        let again = tx.on_request(&options, ms(500));
        assert_eq!(first, again);
        assert_eq!(tx.on_timeout(64 * T1), vec![Event::Terminated]);
    }

    /// Runs a client transaction's timers up to `until`, collecting what it reports.
    fn run_client(tx: &mut ClientTransaction, until: Duration) -> Vec<(Duration, ClientEvent)> {
        let mut out = Vec::new();
        while let Some(t) = tx.poll_timeout().filter(|t| *t <= until) {
            out.extend(tx.on_timeout(t).into_iter().map(|e| (t, e)));
        }
        out
    }

    #[test]
    fn our_request_is_retransmitted_doubling_to_t2_then_times_out() {
        let mut tx = ClientTransaction::new(b"BYE".to_vec(), false, ms(0));
        let events = run_client(&mut tx, Duration::from_secs(60));
        let resent: Vec<u128> = events.iter().filter(|(_, e)| matches!(e, ClientEvent::Retransmit(_))).map(|(t, _)| t.as_millis()).collect();
        assert_eq!(&resent[..6], &[500, 1500, 3500, 7500, 11500, 15500], "Timer E doubles up to T2 = 4 s");
        assert_eq!(events[events.len() - 2], (64 * T1, ClientEvent::Timeout), "Timer F");
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn a_provisional_slows_retransmission_and_the_final_is_reported_once() {
        let mut tx = ClientTransaction::new(b"REFER".to_vec(), false, ms(0));
        assert!(tx.on_response(100, ms(100)).is_empty());
        assert_eq!(tx.state(), ClientState::Proceeding);
        let events = run_client(&mut tx, ms(8_200));
        let resent: Vec<u128> = events.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(resent, [4_100, 8_100], "every T2 once proceeding");
        assert_eq!(tx.on_response(202, ms(8_300)), vec![ClientEvent::Final(202)]);
        assert!(tx.on_response(202, ms(8_400)).is_empty(), "a copy is absorbed");
        assert_eq!(run_client(&mut tx, ms(20_000)), vec![(ms(8_300) + T4, ClientEvent::Terminated)], "Timer K");
    }

    #[test]
    fn over_tcp_nothing_is_resent_and_the_final_ends_it() {
        let mut tx = ClientTransaction::new(b"INFO".to_vec(), true, ms(0));
        assert_eq!(tx.poll_timeout(), Some(64 * T1), "only Timer F");
        assert_eq!(tx.on_response(200, ms(30)), vec![ClientEvent::Final(200), ClientEvent::Terminated]);
        assert_eq!(tx.poll_timeout(), None);
    }
}

/// Where our INVITE stands (RFC 3261 17.1.1, with RFC 6026's Accepted state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// Sent, nothing heard: retransmitted over UDP with doubling intervals (Timer A) until a
    /// response or Timer B.
    Calling,
    /// A provisional response came: the callee is ringing; no more retransmissions.
    Proceeding,
    /// Answered (2xx): copies of the 2xx are re-acknowledged by the dialog for 64*T1 (Timer M).
    Accepted,
    /// Refused (3xx-6xx): the transaction acknowledged it; copies are acknowledged again for 32 s
    /// over UDP (Timer D).
    Completed,
    Terminated,
}

/// What our INVITE's transaction reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteEvent {
    /// Send the INVITE again.
    Retransmit(Vec<u8>),
    /// A provisional response (180 Ringing, 183 Session Progress).
    Provisional(u16),
    /// The final response, once.
    Final(u16),
    /// A copy of the final response: acknowledge it again.
    Copy(u16),
    /// No response within 64*T1 (Timer B), or no final one within 64*T1 of giving up (CANCEL).
    Timeout,
    Terminated,
}

/// An INVITE we sent, sans-IO.
#[derive(Debug)]
pub struct InviteClientTransaction {
    request: Vec<u8>,
    reliable: bool,
    state: InviteState,
    retransmit_at: Option<Duration>,
    interval: Duration,
    /// Timer B while calling, the CANCEL's deadline while proceeding, Timers D and M after.
    ends_at: Option<Duration>,
}

impl InviteClientTransaction {
    pub fn new(request: Vec<u8>, reliable: bool, now: Duration) -> Self {
        Self { request, reliable, state: InviteState::Calling, retransmit_at: (!reliable).then_some(now + T1), interval: T1, ends_at: Some(now + 64 * T1) }
    }

    pub fn state(&self) -> InviteState {
        self.state
    }

    /// We sent CANCEL: a final response must come within 64*T1 (RFC 3261 9.1), else we give up.
    pub fn cancelled(&mut self, now: Duration) {
        if matches!(self.state, InviteState::Calling | InviteState::Proceeding) {
            self.ends_at = Some(self.ends_at.map_or(now + 64 * T1, |e| e.min(now + 64 * T1)));
        }
    }

    pub fn on_response(&mut self, status: u16, now: Duration) -> Vec<InviteEvent> {
        match (self.state, status) {
            (InviteState::Calling | InviteState::Proceeding, 100..=199) => {
                if self.state == InviteState::Calling {
                    // Timer B covers only the silence before any answer (a CANCEL, sent only
                    // after a provisional response, sets its own deadline).
                    self.ends_at = None;
                }
                self.retransmit_at = None;
                self.state = InviteState::Proceeding;
                vec![InviteEvent::Provisional(status)]
            }
            (InviteState::Calling | InviteState::Proceeding, 200..=299) => {
                self.retransmit_at = None;
                self.state = InviteState::Accepted;
                self.ends_at = Some(now + 64 * T1);
                vec![InviteEvent::Final(status)]
            }
            (InviteState::Calling | InviteState::Proceeding, 300..=699) => {
                self.retransmit_at = None;
                self.state = InviteState::Completed;
                self.ends_at = Some(now + if self.reliable { Duration::ZERO } else { Duration::from_secs(32) });
                vec![InviteEvent::Final(status)]
            }
            (InviteState::Accepted, 200..=299) | (InviteState::Completed, 300..=699) => vec![InviteEvent::Copy(status)],
            _ => Vec::new(),
        }
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        match (self.retransmit_at, self.ends_at) {
            (Some(r), Some(e)) => Some(r.min(e)),
            (r, e) => r.or(e),
        }
    }

    pub fn on_timeout(&mut self, now: Duration) -> Vec<InviteEvent> {
        if self.state == InviteState::Terminated {
            return Vec::new();
        }
        if self.ends_at.is_some_and(|e| now >= e) {
            let waiting = matches!(self.state, InviteState::Calling | InviteState::Proceeding);
            self.state = InviteState::Terminated;
            self.retransmit_at = None;
            self.ends_at = None;
            return if waiting { vec![InviteEvent::Timeout, InviteEvent::Terminated] } else { vec![InviteEvent::Terminated] };
        }
        match self.retransmit_at {
            Some(at) if now >= at => {
                self.interval *= 2;
                self.retransmit_at = Some(now + self.interval);
                vec![InviteEvent::Retransmit(self.request.clone())]
            }
            _ => Vec::new(),
        }
    }
}
