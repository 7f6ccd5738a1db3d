//! Browser calls as the web side sees them: an SDP offer in, the answer and the call's id out
//! (the call itself then runs like a phone's), and the end of a call by its id. The HTTP routes
//! (WHIP-style: POST the offer, DELETE the session) are in the web crates; this is what they call.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sip_bridge::webrtc::{BrowserSession, IceServer, OfferError, WebRtcConfig};

use crate::browser_leg::{BrowserLeg, BrowserMedia, ToPage};
use crate::driver::Stop;
use crate::server::Command;

/// Why a browser call could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrowserCallError {
    /// The offer cannot make a call (the web side answers 400 with this).
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The server is stopping (503: another server takes the call).
    #[error("the server is not taking calls (it is stopping)")]
    Stopping,
    /// The offer's call is not there to answer (409: it stopped ringing, or was never offered).
    #[error("{0}")]
    Refused(String),
    /// No socket for the media (500).
    #[error("no socket for the call's media: {0}")]
    Socket(#[from] std::io::Error),
}

/// A browser call in progress as the server knows it.
pub(crate) struct BrowserEntry {
    pub(crate) page: Sender<ToPage>,
    pub(crate) stop: Sender<Stop>,
}

/// Browser calls in progress by id: for the page's DELETE and the server's stop.
pub(crate) type Registry = Arc<Mutex<HashMap<String, BrowserEntry>>>;

/// The handle the web side takes browser calls through (cheap to clone).
#[derive(Clone)]
pub struct BrowserCalls {
    cfg: Arc<WebRtcConfig>,
    commands: Sender<Command>,
    state: Arc<AtomicU8>,
    calls: Registry,
}

impl BrowserCalls {
    pub(crate) fn new(cfg: WebRtcConfig, commands: Sender<Command>, state: Arc<AtomicU8>, calls: Registry) -> Self {
        Self { cfg: Arc::new(cfg), commands, state, calls }
    }

    /// The STUN/TURN servers the page should give its RTCPeerConnection.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.cfg.ice_servers
    }

    /// Browser calls in progress (connecting or connected).
    pub fn active(&self) -> usize {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Answers an offer: a media socket on the configured address and the session. The caller's
    /// page and the agents' console both come through here.
    pub fn accept(&self, sdp: &str) -> Result<(BrowserMedia, String), BrowserCallError> {
        let offers = &crate::metrics::metrics().browser_offers;
        let accepted = (|| {
            let socket = UdpSocket::bind((self.cfg.bind, 0))?;
            let local = socket.local_addr()?;
            let epoch = Instant::now();
            let (session, answer) = BrowserSession::accept(sdp, &self.cfg, local, epoch, Duration::ZERO)?;
            Ok((BrowserMedia { session, socket, epoch }, answer))
        })();
        let result = match &accepted {
            Ok(_) => "answered",
            Err(BrowserCallError::Offer(_)) => "refused",
            Err(_) => "unavailable",
        };
        offers.with_label_values(&[result]).inc();
        accepted
    }

    /// Takes a browser caller's offer: the media (see [`Self::accept`]) and the call started on
    /// its own thread, answered like a phone call. `from` says who called (for the record).
    /// Returns the call's id and the SDP answer.
    pub fn offer(&self, sdp: &str, from: &str) -> Result<(String, String), BrowserCallError> {
        if self.state.load(Ordering::Relaxed) != crate::server::RUNNING {
            return Err(BrowserCallError::Stopping);
        }
        let (media, answer) = self.accept(sdp)?;
        let local = media.socket.local_addr()?;
        let id = new_id();
        let (page_tx, page_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let leg = BrowserLeg::new(media, page_rx);
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), BrowserEntry { page: page_tx.clone(), stop: stop_tx });
        let start = Command::Browser { call_id: id.clone(), from: from.to_string(), leg: Box::new(leg), page: page_tx, stop: stop_rx };
        if self.commands.send(start).is_err() {
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return Err(BrowserCallError::Stopping);
        }
        tracing::info!(call_id = %id, %from, %local, "browser call offered");
        Ok((id, answer))
    }

    /// Ends a browser call (the page's DELETE); false when there is no such call.
    pub fn hang_up(&self, id: &str) -> bool {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        match calls.get(id) {
            Some(c) => {
                let _ = c.page.send(ToPage::HangUp);
                true
            }
            None => false,
        }
    }
}

/// A browser call's id: 128 random bits, hex (it is the capability to end the call).
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes = t.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
