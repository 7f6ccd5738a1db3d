//! A SIP call as a [`Leg`]: its RTP and RTCP sockets, its sans-IO media session (jitter buffer,
//! codecs, RFC 4733, RTCP), and channels to the signalling thread, which owns the SIP endpoint.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use ivr_audio::FRAME_SAMPLES;
use sip_bridge::leg::{KeyVia, Leg, LegCommand, LegEvent};
use sip_bridge::rtp::media::{MediaSession, MediaStats};

use crate::server::{CallSignal, Command};

pub(crate) struct SipLeg {
    call_id: String,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    media: MediaSession,
    signals: Receiver<CallSignal>,
    commands: Sender<Command>,
    events: VecDeque<LegEvent>,
    buf: Vec<u8>,
    connected: bool,
    /// Keys are going out as RFC 4733 events / by SIP INFO.
    sending_events: bool,
    sending_info: bool,
    /// For a call we placed: the media settings to start its session with once answered.
    outbound: Option<sip_bridge::rtp::media::MediaConfig>,
}

impl SipLeg {
    /// `rtp` and `rtcp` are the call's bound sockets (see [`media_ports`]).
    pub(crate) fn new(call_id: String, (rtp, rtcp): (UdpSocket, UdpSocket), media: MediaSession, signals: Receiver<CallSignal>, commands: Sender<Command>) -> Self {
        let _ = rtp.set_nonblocking(true);
        let _ = rtcp.set_nonblocking(true);
        Self {
            call_id,
            rtp,
            rtcp,
            media,
            signals,
            commands,
            events: VecDeque::new(),
            buf: vec![0u8; 2048],
            connected: false,
            sending_events: false,
            sending_info: false,
            outbound: None,
        }
    }

    /// The leg of a call we placed (to an agent's phone): no media until the answer says what
    /// was agreed ([`CallSignal::Answered`]).
    pub(crate) fn outbound(call_id: String, ports: (UdpSocket, UdpSocket), cfg: sip_bridge::rtp::media::MediaConfig, signals: Receiver<CallSignal>, commands: Sender<Command>) -> Self {
        let media = MediaSession::new(&sip_bridge::sdp::Agreed::unknown(), &cfg, seed_of(&ports.0), ntp_now(), Duration::ZERO);
        let mut leg = Self::new(call_id, ports, media, signals, commands);
        leg.outbound = Some(cfg);
        leg
    }

    pub(crate) fn stats(&self) -> MediaStats {
        self.media.stats()
    }

    /// Says goodbye on RTCP (the call is over).
    pub(crate) fn close(&mut self) {
        if let Some((bye, to)) = self.media.rtcp_bye() {
            let _ = self.rtcp.send_to(&bye, to);
        }
    }

    fn tell(&self, c: Command) {
        let _ = self.commands.send(c);
    }

    /// Takes in what arrived: signals from the signalling thread, RTP (RFC 4733 keys among it) and
    /// RTCP.
    fn pump(&mut self, now: Duration) {
        while let Ok(s) = self.signals.try_recv() {
            match s {
                CallSignal::Confirmed if !self.connected => {
                    self.connected = true;
                    self.events.push_back(LegEvent::Connected);
                }
                CallSignal::Confirmed => {}
                CallSignal::Answered(agreed) => {
                    if let Some(cfg) = &self.outbound {
                        self.media = MediaSession::new(&agreed, cfg, seed_of(&self.rtp), ntp_now(), now);
                    }
                    if !self.connected {
                        self.connected = true;
                        self.events.push_back(LegEvent::Connected);
                    }
                }
                CallSignal::Dtmf(digit) => self.events.push_back(LegEvent::Key { digit, via: KeyVia::Info }),
                CallSignal::DigitsSent => {
                    if std::mem::take(&mut self.sending_info) {
                        self.events.push_back(LegEvent::DigitsSent);
                    }
                }
                CallSignal::Ended => self.events.push_back(LegEvent::HungUp),
            }
        }
        while let Ok((n, from)) = self.rtp.recv_from(&mut self.buf) {
            if let Some(digit) = self.media.on_datagram(&self.buf[..n], from, now) {
                self.events.push_back(LegEvent::Key { digit, via: KeyVia::Rfc4733 });
            }
        }
        while let Ok((n, from)) = self.rtcp.recv_from(&mut self.buf) {
            self.media.on_rtcp_datagram(&self.buf[..n], from, now);
        }
        if self.sending_events && !self.media.sending_digits() {
            self.sending_events = false;
            self.events.push_back(LegEvent::DigitsSent);
        }
    }
}

impl Leg for SipLeg {
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent> {
        if self.events.is_empty() {
            self.pump(now);
        }
        self.events.pop_front()
    }

    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], now: Duration) {
        self.media.next_frame(frame);
        if self.connected {
            if let Some((report, to)) = self.media.poll_rtcp(now) {
                let _ = self.rtcp.send_to(&report, to);
            }
        }
    }

    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration) {
        if !self.connected {
            return;
        }
        let packet = self.media.packetize(frame, speaking, now);
        let _ = self.rtp.send_to(&packet, self.media.remote());
    }

    fn silent_for(&self, now: Duration) -> Duration {
        self.media.silent_for(now)
    }

    fn command(&mut self, command: LegCommand, _now: Duration) {
        let id = self.call_id.clone();
        match command {
            LegCommand::Ring => self.tell(Command::Ring(id)),
            LegCommand::Answer => match self.rtp.local_addr() {
                Ok(addr) => self.tell(Command::Answer(id, addr)),
                Err(e) => {
                    tracing::error!(call_id = %id, "no RTP address to answer with: {e}");
                    self.tell(Command::Reject(id, 500, "Server Internal Error".into()));
                }
            },
            LegCommand::Reject { status, reason } => self.tell(Command::Reject(id, status, reason)),
            LegCommand::SendDigits(digits) => {
                if self.media.send_digits(&digits) {
                    self.sending_events = true;
                } else {
                    // No RFC 4733 events offered: SIP INFO instead.
                    self.sending_info = true;
                    self.tell(Command::InfoDigits(id, digits));
                }
            }
            LegCommand::Transfer { target, headers } => self.tell(Command::Refer(id, target, headers)),
            LegCommand::HangUp => self.tell(Command::Hangup(id)),
        }
    }
}

/// An RTP socket on an even port and its RTCP socket on the next (RFC 3550 11), as callers expect
/// when the SDP names only the RTP port.
pub(crate) fn media_ports(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
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

/// Seeds a media session's SSRC, first sequence number and timestamp: differs per call and run.
pub(crate) fn seed_of(rtp: &UdpSocket) -> u64 {
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    clock ^ u64::from(rtp.local_addr().map(|a| a.port()).unwrap_or(0))
}

/// The wall-clock time now in NTP format (seconds since 1900 in the high 32 bits), for RTCP.
pub(crate) fn ntp_now() -> u64 {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = unix.as_secs() + 2_208_988_800;
    (secs << 32) | (((unix.subsec_nanos() as u64) << 32) / 1_000_000_000)
}
