//! A browser's call as a [`Leg`]: its UDP socket and its sans-IO `webrtc::BrowserSession`. The
//! signalling is HTTP (an offer/answer), so unlike a SIP leg it needs no signalling thread: a
//! hang-up from the page's DELETE comes on a channel, and the call's captions and state go to the
//! page over the session's data channel.
//!
//! A caller's leg exists once its offer is answered. An agent's leg (a warm transfer to an agent
//! whose device is the console in their browser) exists first, "ringing", while the console shows
//! the call; the agent's answer (the console's offer) brings its media later, on a channel.

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

/// An accepted offer: the session, its socket and the instant its call time counts from.
pub struct BrowserMedia {
    pub session: BrowserSession,
    pub socket: UdpSocket,
    pub epoch: Instant,
}

pub struct BrowserLeg {
    media: Option<BrowserMedia>,
    /// An agent's leg before the agent answered in the browser: where the media will come from.
    pending: Option<Receiver<BrowserMedia>>,
    /// The session's call time is measured from when the offer was accepted; the driver's from
    /// when the call's thread started: the difference, fixed at the first tick with media.
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
    /// A caller's leg: its offer is answered, the call waits for our answer (ringing).
    pub fn new(media: BrowserMedia, inbox: Receiver<ToPage>) -> Self {
        let _ = media.socket.set_nonblocking(true);
        Self { media: Some(media), pending: None, offset: None, inbox, events: VecDeque::new(), buf: vec![0u8; 2048], answered: false, connected_early: false, ended: false }
    }

    /// An agent's leg, ringing until the agent answers in the browser (`media` brings the
    /// session); connected as soon as its media is.
    pub fn ringing(media: Receiver<BrowserMedia>, inbox: Receiver<ToPage>) -> Self {
        Self { media: None, pending: Some(media), offset: None, inbox, events: VecDeque::new(), buf: vec![0u8; 2048], answered: true, connected_early: false, ended: false }
    }

    pub fn stats(&self) -> BrowserStats {
        self.media.as_ref().map(|m| m.session.stats()).unwrap_or_default()
    }

    /// The session's time for the driver's `now`.
    fn session_time(&mut self, now: Duration) -> Duration {
        let Some(m) = &self.media else { return now };
        let offset = *self.offset.get_or_insert_with(|| m.epoch.elapsed().saturating_sub(now));
        now + offset
    }

    fn message(&mut self, json: serde_json::Value, now: Duration) {
        let t = self.session_time(now);
        if let Some(m) = &mut self.media {
            m.session.send_message(json.to_string(), t);
        }
        self.flush();
    }

    fn flush(&mut self) {
        let Some(m) = &mut self.media else { return };
        while let Some((to, bytes)) = m.session.poll_transmit() {
            if let Err(e) = m.socket.send_to(&bytes, to) {
                tracing::debug!(%to, "WebRTC send: {e}");
            }
        }
    }

    fn end(&mut self, why: &'static str, now: Duration) {
        if self.ended {
            return;
        }
        self.message(serde_json::json!({"type": "state", "state": "ended"}), now);
        match &mut self.media {
            Some(m) => m.session.close(why),
            None => {
                // Never answered: nothing to close but the ringing.
                self.pending = None;
                self.ended = true;
                self.events.push_back(LegEvent::HungUp);
            }
        }
        self.flush();
    }

    /// Takes in what arrived: datagrams, the timers, what the server has for the page.
    fn pump(&mut self, now: Duration) {
        if let Some(media) = self.pending.as_ref().and_then(|p| p.try_recv().ok()) {
            let _ = media.socket.set_nonblocking(true);
            self.media = Some(media);
            self.pending = None;
        }
        let t = self.session_time(now);
        while let Ok(m) = self.inbox.try_recv() {
            match (m, &mut self.media) {
                (ToPage::Message(json), Some(media)) => media.session.send_message(json, t),
                (ToPage::Message(_), None) => {}
                (ToPage::HangUp, Some(media)) => media.session.close("the page ended the session"),
                (ToPage::HangUp, None) => self.end("the agent declined in the console", now),
            }
        }
        let Some(m) = &mut self.media else { return };
        while let Ok((n, from)) = m.socket.recv_from(&mut self.buf) {
            m.session.on_datagram(&self.buf[..n], from, t);
        }
        m.session.on_tick(t);
        self.flush();
        let Some(m) = &mut self.media else { return };
        while let Some(e) = m.session.poll_event() {
            match e {
                BrowserEvent::Connected => {
                    let m = crate::metrics::metrics();
                    m.browser_sessions.with_label_values(&["connected"]).inc();
                    m.browser_connect.observe(t.as_secs_f64());
                    if self.answered {
                        self.events.push_back(LegEvent::Connected);
                    } else {
                        self.connected_early = true;
                    }
                }
                BrowserEvent::Key(digit) => self.events.push_back(LegEvent::Key { digit, via: KeyVia::Page }),
                BrowserEvent::Closed(why) => {
                    crate::metrics::metrics().browser_sessions.with_label_values(&[why.replace(' ', "_").as_str()]).inc();
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
        match &mut self.media {
            Some(m) => m.session.next_frame(frame),
            None => frame.fill(0.0),
        }
    }

    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration) {
        let t = self.session_time(now);
        if let Some(m) = &mut self.media {
            m.session.send_frame(frame, speaking, t);
        }
        self.flush();
    }

    fn silent_for(&self, now: Duration) -> Duration {
        let t = now + self.offset.unwrap_or_default();
        self.media.as_ref().map(|m| m.session.silent_for(t)).unwrap_or_default()
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
