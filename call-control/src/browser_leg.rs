//! A browser's call as a [`Leg`]: its UDP socket and its sans-IO `webrtc::BrowserSession`. The
//! signalling (the HTTP offer/answer) is over before the leg exists, so unlike a SIP leg it needs
//! no signalling thread: a hang-up from the page's DELETE comes on a channel, and the call's
//! captions and state go to the page over the session's data channel.

use std::collections::VecDeque;
use std::net::UdpSocket;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use ivr_audio::FRAME_SAMPLES;
use sip_bridge::leg::{KeyVia, Leg, LegCommand, LegEvent};
use sip_bridge::webrtc::{BrowserEvent, BrowserSession, BrowserStats};

/// What the rest of the server tells a browser leg.
#[derive(Debug, Clone)]
pub enum ToPage {
    /// A JSON message for the page (a caption, the call's state).
    Message(String),
    /// The page's DELETE: the caller hung up.
    HangUp,
}

pub struct BrowserLeg {
    session: BrowserSession,
    socket: UdpSocket,
    /// The session's call time is measured from when the offer was accepted; the driver's from
    /// when the call's thread started: the difference, fixed at the first tick.
    epoch: Instant,
    offset: Option<Duration>,
    inbox: Receiver<ToPage>,
    events: VecDeque<LegEvent>,
    buf: Vec<u8>,
    answered: bool,
    /// Connected before we answered (the page was quicker than the ringing): told at the answer.
    connected_early: bool,
    ended: bool,
}

impl BrowserLeg {
    /// `epoch` is the instant the session's call time counts from.
    pub fn new(session: BrowserSession, socket: UdpSocket, epoch: Instant, inbox: Receiver<ToPage>) -> Self {
        let _ = socket.set_nonblocking(true);
        Self { session, socket, epoch, offset: None, inbox, events: VecDeque::new(), buf: vec![0u8; 2048], answered: false, connected_early: false, ended: false }
    }

    pub fn stats(&self) -> BrowserStats {
        self.session.stats()
    }

    /// The session's time for the driver's `now`.
    fn session_time(&mut self, now: Duration) -> Duration {
        let offset = *self.offset.get_or_insert_with(|| self.epoch.elapsed().saturating_sub(now));
        now + offset
    }

    fn message(&mut self, json: serde_json::Value, now: Duration) {
        let t = self.session_time(now);
        self.session.send_message(json.to_string(), t);
        self.flush();
    }

    fn flush(&mut self) {
        while let Some((to, bytes)) = self.session.poll_transmit() {
            if let Err(e) = self.socket.send_to(&bytes, to) {
                tracing::debug!(%to, "WebRTC send: {e}");
            }
        }
    }

    fn end(&mut self, why: &'static str, now: Duration) {
        if !self.ended {
            self.message(serde_json::json!({"type": "state", "state": "ended"}), now);
            self.session.close(why);
            self.flush();
        }
    }

    /// Takes in what arrived: datagrams, the timers, what the server has for the page.
    fn pump(&mut self, now: Duration) {
        let t = self.session_time(now);
        while let Ok((n, from)) = self.socket.recv_from(&mut self.buf) {
            self.session.on_datagram(&self.buf[..n], from, t);
        }
        self.session.on_tick(t);
        while let Ok(m) = self.inbox.try_recv() {
            match m {
                ToPage::Message(json) => self.session.send_message(json, t),
                ToPage::HangUp => self.session.close("the page ended the session"),
            }
        }
        self.flush();
        while let Some(e) = self.session.poll_event() {
            match e {
                BrowserEvent::Connected if self.answered => self.events.push_back(LegEvent::Connected),
                BrowserEvent::Connected => self.connected_early = true,
                BrowserEvent::Key(digit) => self.events.push_back(LegEvent::Key { digit, via: KeyVia::Page }),
                BrowserEvent::Closed(why) => {
                    if !self.ended {
                        tracing::info!(why, "browser call closed");
                        self.ended = true;
                        self.events.push_back(LegEvent::HungUp);
                    }
                }
            }
        }
    }
}

impl Leg for BrowserLeg {
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent> {
        if self.events.is_empty() {
            self.pump(now);
        }
        self.events.pop_front()
    }

    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], _now: Duration) {
        self.session.next_frame(frame);
    }

    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration) {
        let t = self.session_time(now);
        self.session.send_frame(frame, speaking, t);
        self.flush();
    }

    fn silent_for(&self, now: Duration) -> Duration {
        let t = now + self.offset.unwrap_or_default();
        self.session.silent_for(t)
    }

    fn command(&mut self, command: LegCommand, now: Duration) {
        match command {
            LegCommand::Ring => self.message(serde_json::json!({"type": "state", "state": "ringing"}), now),
            LegCommand::Answer => {
                self.answered = true;
                self.message(serde_json::json!({"type": "state", "state": "answered"}), now);
                if std::mem::take(&mut self.connected_early) {
                    self.events.push_back(LegEvent::Connected);
                }
            }
            LegCommand::Reject { status, reason } => {
                self.message(serde_json::json!({"type": "state", "state": "rejected", "status": status, "reason": reason}), now);
                self.end("refused", now);
            }
            // A browser has no use for keypad tones (they are for a PBX in front).
            LegCommand::SendDigits(_) => self.events.push_back(LegEvent::DigitsSent),
            // A browser cannot be asked to call elsewhere: browser calls are transferred through
            // the server (the queue, or a call it places); this is a policy mistake, so end.
            LegCommand::Transfer { target, .. } => {
                tracing::warn!(%target, "a browser call cannot be REFERred; hanging up");
                self.end("transfer", now);
            }
            LegCommand::HangUp => self.end("the server hung up", now),
        }
    }
}
