//! Browser calls as the web side sees them: an SDP offer in, the answer and the call's id out
//! (the call itself then runs like a phone's), and the end of a call by its id. The HTTP routes
//! (WHIP-style: POST the offer, DELETE the session) are in the web crates; this is what they call.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
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

/// The address browser media binds to and offers as its candidate: `[webrtc] bind` when it is a
/// concrete address, else the source address of this machine's default route (what a UDP socket
/// connected to a documentation address gets; connecting sends nothing), else loopback (a machine
/// with no route reaches only itself).
fn media_ip(cfg: &WebRtcConfig) -> IpAddr {
    if let Some(ip) = cfg.bind.filter(|ip| !ip.is_unspecified()) {
        return ip;
    }
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| {
        s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        s.local_addr()
    });
    match routed {
        Ok(local) if !local.ip().is_unspecified() => local.ip(),
        _ => IpAddr::from(Ipv4Addr::LOCALHOST),
    }
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
    /// The address the media sockets bind to and offer (see [`media_ip`]).
    media_ip: IpAddr,
    commands: Sender<Command>,
    state: Arc<AtomicU8>,
    calls: Registry,
}

impl BrowserCalls {
    pub(crate) fn new(cfg: WebRtcConfig, commands: Sender<Command>, state: Arc<AtomicU8>, calls: Registry) -> Self {
        let media_ip = media_ip(&cfg);
        tracing::info!(%media_ip, public_ip = ?cfg.public_ip, "browser calls' media address");
        Self { cfg: Arc::new(cfg), media_ip, commands, state, calls }
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
            let socket = UdpSocket::bind((self.media_ip, 0))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_address_is_bind_or_a_concrete_address_of_this_machine() {
        let set = WebRtcConfig { bind: Some("10.0.0.5".parse().unwrap()), ..Default::default() };
        assert_eq!(media_ip(&set), "10.0.0.5".parse::<IpAddr>().unwrap());
        // Unset or 0.0.0.0: never the unspecified address (it cannot be a candidate), and one a
        // socket can bind here (the default route's source, or loopback without a route).
        for bind in [None, Some(IpAddr::from(Ipv4Addr::UNSPECIFIED))] {
            let ip = media_ip(&WebRtcConfig { bind, ..Default::default() });
            assert!(!ip.is_unspecified(), "{ip}");
            UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("{ip} is not an address of this machine: {e}"));
        }
    }
}
