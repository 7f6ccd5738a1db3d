//! Calls we place (the user agent client side of INVITE): to an agent's phone for a warm
//! transfer, or to a PBX. The INVITE goes where the callee's phone registered from (symmetric
//! signalling, as for everything else), retransmitted over UDP until answered (RFC 3261 17.1.1);
//! a 2xx is acknowledged by us and again for each copy (RFC 6026); a refusal is acknowledged by
//! the transaction. Hanging up before the answer sends CANCEL once the callee has sent a
//! provisional response (RFC 3261 9.1), and a 2xx that crosses the CANCEL is acknowledged and
//! ended with BYE.

use std::net::SocketAddr;
use std::time::Duration;

use super::{CallEvent, Dialog, DialogState, EndReason, Endpoint, Peer};
use crate::sdp::{self, Offer};
use crate::sip::message::{uri_of, HeaderName, Message, Method, StartLine};
use crate::sip::transaction::{InviteClientTransaction, InviteEvent};

/// A call to place.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// The Request-URI: the phone's registered contact, or the PBX's address.
    pub target: String,
    /// Where the INVITE goes (a registered phone: where its REGISTER came from).
    pub peer: Peer,
    /// The callee's address of record for the To header (e.g. `sip:2001@host`).
    pub to: String,
    /// Who the callee sees as calling: the caller's number, as the user part of our From.
    pub caller_id: String,
    /// Our media address in the offer.
    pub rtp: SocketAddr,
    /// More headers (a summary for a PBX: X-Summary, User-to-User, Call-Info).
    pub headers: Vec<(HeaderName, String)>,
}

/// What the callee's 2xx fixed for our requests in the dialog.
#[derive(Debug, Clone)]
pub(super) struct Remote {
    /// Their To header, with their tag.
    pub to: String,
    /// Their Contact: where in-dialog requests go.
    pub target: String,
    /// The route set (their Record-Route reversed, RFC 3261 12.1.2).
    pub route: Vec<String>,
}

/// An INVITE of ours, by its Via branch.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub call_id: String,
    pub invite: Message,
    pub peer: Peer,
    pub tx: InviteClientTransaction,
    /// A provisional response came (a CANCEL may be sent).
    provisional: bool,
    /// The application hung up before the answer.
    cancelled: bool,
    /// The ACK for the 2xx, sent again for each copy.
    ack: Option<Vec<u8>>,
}

impl Endpoint {
    /// Places a call; returns its Call-ID. Events follow: [`CallEvent::Progress`] while it rings,
    /// [`CallEvent::Answered`] with the agreed media, or [`CallEvent::Ended`] with the refusal.
    pub fn invite(&mut self, call: OutgoingCall, now: Duration) -> String {
        let call_id = format!("{}@{}", self.token(), self.local.ip());
        let branch = format!("z9hG4bK{}", self.token());
        let local_tag = self.token();
        let mut m = Message { start: StartLine::Request { method: Method::Invite, uri: call.target.clone() }, headers: Vec::new(), body: Vec::new() };
        m.add_header(HeaderName::Via, format!("SIP/2.0/{} {};branch={branch};rport", call.peer.transport(), self.local));
        m.add_header(HeaderName::MaxForwards, "70");
        // A URI's user part ("sip:+4930111222@host" -> "+4930111222"), or a bare number.
        let uri = uri_of(&call.caller_id);
        let number = if uri.contains('@') { crate::sip::registrar::user_of(uri) } else { uri.trim_start_matches("tel:") };
        let user: String = number.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_')).collect();
        let user = if user.is_empty() { "anonymous".to_string() } else { user };
        m.add_header(HeaderName::From, format!("\"{user}\" <sip:{user}@{}>;tag={local_tag}", self.local));
        m.add_header(HeaderName::To, format!("<{}>", call.to));
        m.add_header(HeaderName::CallId, call_id.clone());
        m.add_header(HeaderName::CSeq, "1 INVITE");
        m.add_header(HeaderName::Contact, format!("<sip:ivr@{};transport={}>", self.local, call.peer.transport().to_lowercase()));
        m.add_header(HeaderName::Allow, super::allowed(false));
        m.add_header(HeaderName::UserAgent, self.cfg.user_agent.clone());
        for (name, value) in call.headers {
            m.add_header(name, value);
        }
        m.add_header(HeaderName::ContentType, "application/sdp");
        m.body = sdp::offer(&self.cfg.codecs, call.rtp, now.as_millis() as u64).into_bytes();
        let bytes = m.to_bytes();
        self.send(call.peer, bytes.clone());
        self.rtp.insert(call_id.clone(), call.rtp);
        let tx = InviteClientTransaction::new(bytes, call.peer.reliable(), now);
        self.outgoing.insert(branch, Outgoing { call_id: call_id.clone(), invite: m.clone(), peer: call.peer, tx, provisional: false, cancelled: false, ack: None });
        // The dialog's media is unknown until the answer says what was agreed.
        self.dialogs.insert(call_id.clone(), Dialog::new(DialogState::Early, call.peer, m, local_tag, sdp::Agreed::unknown()));
        call_id
    }

    /// Whether `call_id` is a call we placed that has not been answered.
    pub(super) fn ringing_out(&self, call_id: &str) -> bool {
        self.outgoing.values().any(|o| o.call_id == call_id && !o.cancelled && o.ack.is_none())
    }

    /// Hangs up a call we placed before its answer: CANCEL (now, or at the first provisional
    /// response). The application hears [`EndReason::LocalBye`] at once.
    pub(super) fn cancel_outgoing(&mut self, call_id: &str, now: Duration) {
        self.dialogs.remove(call_id);
        self.rtp.remove(call_id);
        let Some(branch) = self.outgoing.iter().find(|(_, o)| o.call_id == call_id).map(|(b, _)| b.clone()) else { return };
        if let Some(o) = self.outgoing.get_mut(&branch) {
            o.cancelled = true;
            if o.provisional {
                self.send_cancel(&branch, now);
            }
        }
        self.event(CallEvent::Ended { call_id: call_id.to_string(), why: EndReason::LocalBye });
    }

    /// CANCEL for our INVITE: the same branch, Request-URI, From, To, Call-ID and CSeq number.
    fn send_cancel(&mut self, branch: &str, now: Duration) {
        let Some(o) = self.outgoing.get_mut(branch) else { return };
        o.tx.cancelled(now);
        let inv = &o.invite;
        let mut c = Message { start: StartLine::Request { method: Method::Cancel, uri: inv.uri().unwrap_or_default().to_string() }, headers: Vec::new(), body: Vec::new() };
        for name in [HeaderName::Via, HeaderName::MaxForwards, HeaderName::From, HeaderName::To, HeaderName::CallId] {
            if let Some(v) = inv.header(name.clone()) {
                c.add_header(name, v.to_string());
            }
        }
        c.add_header(HeaderName::CSeq, "1 CANCEL");
        let (call_id, peer) = (o.call_id.clone(), o.peer);
        // Its own (non-INVITE) client transaction, found by the same branch among `sent`.
        self.send_request(&call_id, peer, c, branch.to_string(), now);
    }

    /// A response to one of our INVITEs.
    pub(super) fn on_invite_response(&mut self, branch: &str, msg: &Message, status: u16, now: Duration) {
        let Some(o) = self.outgoing.get_mut(branch) else { return };
        let events = o.tx.on_response(status, now);
        for e in events {
            self.invite_event(branch, e, Some(msg), now);
        }
    }

    fn invite_event(&mut self, branch: &str, e: InviteEvent, msg: Option<&Message>, now: Duration) {
        let Some(o) = self.outgoing.get_mut(branch) else { return };
        let (call_id, peer, cancelled) = (o.call_id.clone(), o.peer, o.cancelled);
        match e {
            InviteEvent::Retransmit(bytes) => self.send(peer, bytes),
            InviteEvent::Provisional(status) => {
                let first = !std::mem::replace(&mut o.provisional, true);
                let _ = o;
                if cancelled {
                    if first {
                        self.send_cancel(branch, now);
                    }
                } else if status > 100 {
                    self.event(CallEvent::Progress { call_id, status });
                }
            }
            InviteEvent::Final(status) if (200..300).contains(&status) => {
                let Some(msg) = msg else { return };
                self.answered(branch, msg, now);
            }
            InviteEvent::Final(status) | InviteEvent::Copy(status) if status >= 300 => {
                let Some(msg) = msg else { return };
                let ack = self.non_2xx_ack(branch, msg);
                self.send(peer, ack);
                if matches!(e, InviteEvent::Final(_)) && !cancelled {
                    self.dialogs.remove(&call_id);
                    self.rtp.remove(&call_id);
                    self.event(CallEvent::Ended { call_id, why: EndReason::Unanswered(status) });
                }
            }
            InviteEvent::Copy(_) => {
                if let Some(ack) = self.outgoing.get(branch).and_then(|o| o.ack.clone()) {
                    self.send(peer, ack);
                }
            }
            InviteEvent::Final(_) => {}
            InviteEvent::Timeout => {
                if !cancelled {
                    self.dialogs.remove(&call_id);
                    self.rtp.remove(&call_id);
                    self.event(CallEvent::Ended { call_id, why: EndReason::Unanswered(408) });
                }
            }
            InviteEvent::Terminated => {
                self.outgoing.remove(branch);
            }
        }
    }

    /// The callee answered: ACK, and the dialog is confirmed with the agreed media (or ended
    /// at once with BYE when we had hung up meanwhile, or the answer's media is unusable).
    fn answered(&mut self, branch: &str, msg: &Message, now: Duration) {
        let Some(o) = self.outgoing.get(branch) else { return };
        let (call_id, peer, invite) = (o.call_id.clone(), o.peer, o.invite.clone());
        let to = msg.header(HeaderName::To).unwrap_or_default().to_string();
        let target = msg.header(HeaderName::Contact).map(uri_of).map(str::to_string).unwrap_or_else(|| invite.uri().unwrap_or_default().to_string());
        let mut route: Vec<String> = msg.header_values(HeaderName::RecordRoute).into_iter().map(str::to_string).collect();
        route.reverse();
        let remote = Remote { to, target, route };
        // ACK: a new transaction of its own (RFC 3261 13.2.2.4), same CSeq number.
        let ack_branch = format!("z9hG4bK{}", self.token());
        if !self.dialogs.contains_key(&call_id) {
            // Hung up meanwhile: a dialog only long enough to ACK and BYE.
            let mut d = Dialog::new(DialogState::Confirmed, peer, invite, String::new(), sdp::Agreed::unknown());
            d.uac = Some(remote);
            let ack = self.in_dialog_request(&d, Method::Ack, &ack_branch);
            self.send(peer, ack.to_bytes());
            if let Some(o) = self.outgoing.get_mut(branch) {
                o.ack = Some(ack.to_bytes());
            }
            d.local_cseq += 1;
            let bye_branch = format!("z9hG4bK{}", self.token());
            let bye = self.in_dialog_request(&d, Method::Bye, &bye_branch);
            self.send_request(&call_id, peer, bye, bye_branch, now);
            return;
        }
        let Some(d) = self.dialogs.get_mut(&call_id) else { return };
        d.uac = Some(remote);
        d.state = DialogState::Confirmed;
        let media = Offer::parse(&msg.body).and_then(|answer| {
            // The answerer's choice among what we offered, in its order.
            let chosen: Vec<sdp::Codec> = answer.formats.iter().filter_map(|(_, name, _)| sdp::Codec::from_name(name)).filter(|c| self.cfg.codecs.contains(c)).collect();
            sdp::negotiate(&answer, &chosen)
        });
        let Some(d) = self.dialogs.get(&call_id) else { return };
        let ack = self.in_dialog_request(d, Method::Ack, &ack_branch).to_bytes();
        self.send(peer, ack.clone());
        if let Some(o) = self.outgoing.get_mut(branch) {
            o.ack = Some(ack);
        }
        match media {
            Ok(media) => {
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.media = media.clone();
                }
                self.event(CallEvent::Answered { call_id, media });
            }
            Err(e) => {
                tracing::warn!(%call_id, "the callee's answer has no media we offered ({e}); hanging up");
                self.hangup(&call_id, now);
            }
        }
    }

    /// The ACK of a refusal (RFC 3261 17.1.1.3): our INVITE's branch and headers, their To.
    fn non_2xx_ack(&self, branch: &str, msg: &Message) -> Vec<u8> {
        let Some(o) = self.outgoing.get(branch) else { return Vec::new() };
        let inv = &o.invite;
        let mut a = Message { start: StartLine::Request { method: Method::Ack, uri: inv.uri().unwrap_or_default().to_string() }, headers: Vec::new(), body: Vec::new() };
        for name in [HeaderName::Via, HeaderName::MaxForwards, HeaderName::From] {
            if let Some(v) = inv.header(name.clone()) {
                a.add_header(name, v.to_string());
            }
        }
        a.add_header(HeaderName::To, msg.header(HeaderName::To).unwrap_or_default().to_string());
        a.add_header(HeaderName::CallId, inv.call_id().to_string());
        a.add_header(HeaderName::CSeq, "1 ACK");
        a.to_bytes()
    }

    /// Our INVITEs' timers (A, B, D, M and the CANCEL's deadline).
    pub(super) fn outgoing_timeouts(&mut self, now: Duration) {
        let due: Vec<String> = self.outgoing.iter().filter(|(_, o)| o.tx.poll_timeout().is_some_and(|t| t <= now)).map(|(b, _)| b.clone()).collect();
        for branch in due {
            let Some(o) = self.outgoing.get_mut(&branch) else { continue };
            for e in o.tx.on_timeout(now) {
                self.invite_event(&branch, e, None, now);
            }
        }
    }
}
