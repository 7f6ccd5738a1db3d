//! A browser's call over WebRTC, sans-IO: the offer/answer, ICE-lite, DTLS-SRTP and the data
//! channel are str0m's (`Rtc`, which takes datagrams and the time and returns what to send); this
//! module adds what a call needs on top: the audio codec and jitter buffer ([`audio`]), the
//! keypad and captions over the data channel, and when the call is over (the browser hung up,
//! closed the page, or never connected).
//!
//! Time: like the rest of the transports the session takes `now` as call time (a `Duration`);
//! str0m wants an `Instant`, which is `epoch + now` for an `epoch` fixed when the session is made.

pub mod audio;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ivr_audio::FRAME_SAMPLES;
use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::ExtensionValues;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

pub use audio::{BrowserAudio, BrowserCodec};

use crate::rtp::media::MediaConfig;

/// A STUN or TURN server the browser may use (handed to the page; the server side is ICE-lite
/// and gathers nothing itself).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Browser calls: where their media sockets are and how they are reached.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// The address the media sockets bind to (one UDP socket per browser call), offered as the
    /// host candidate. Unset (or 0.0.0.0): the address this machine reaches other networks from,
    /// so that browsers on the LAN and on this machine both reach it out of the box (Firefox does
    /// not pair with a server's loopback candidate); loopback on a machine without a route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<IpAddr>,
    /// The address browsers reach this server at when it is behind a 1:1 NAT (a cloud VM's public
    /// IP): offered as the candidate instead of `bind`, on the same port.
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN servers for the browsers (the caller page passes them to RTCPeerConnection).
    pub ice_servers: Vec<IceServer>,
    /// A session whose browser has not connected (ICE and DTLS) in this time is closed.
    pub connect_timeout_secs: u32,
    /// A connected browser sends audio all the time (silence too): one whose media stops this
    /// long (the tab closed, the laptop slept, the network went) is gone, and the call ends.
    pub media_timeout_secs: u32,
    /// Jitter buffer of the browser's audio.
    pub media: MediaConfig,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            bind: None,
            public_ip: None,
            ice_servers: Vec::new(),
            connect_timeout_secs: 15,
            media_timeout_secs: 8,
            media: MediaConfig::default(),
        }
    }
}

/// Why an offer was refused (the signalling answers 400 with this).
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("the offer is not a valid SDP offer: {0}")]
    Sdp(String),
    #[error("the offer has no audio (an m=audio line)")]
    NoAudio,
    #[error("the offer has no audio codec this server speaks (Opus/48000 or PCMU/8000)")]
    NoCodec,
    #[error("the offer cannot be accepted: {0}")]
    Rejected(String),
    #[error("no usable address for the media: {0}")]
    Address(String),
    #[error(transparent)]
    Codec(#[from] audio::CodecError),
}

/// What the page sends on the data channel (JSON text).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PageMessage {
    /// A keypad key.
    Key { key: String },
    /// The hang-up button (the page also DELETEs the session; either ends the call).
    Hangup,
}

/// What happened on a browser call.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// A keypad key from the page.
    Key(char),
    /// The call is over, and why.
    Closed(&'static str),
}

/// Counters for the call record.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct BrowserStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub concealed: u64,
    pub late: u64,
    /// Data channel messages that were not a [`PageMessage`].
    pub bad_messages: u64,
    pub codec: Option<BrowserCodec>,
    /// From the browser's RTCP receiver reports: the round trip and the share of our packets lost.
    pub round_trip_ms: Option<f64>,
    pub remote_loss: Option<f32>,
    /// The jitter buffer's playout delay at the end, and the most frames it held.
    pub playout_delay_ms: u32,
    pub deepest_frames: u32,
}

/// The label of the data channel the page opens for keys and captions.
pub const CONTROL_CHANNEL: &str = "control";

/// One browser call.
pub struct BrowserSession {
    rtc: Rtc,
    epoch: Instant,
    /// The address in our candidate (the public one behind a 1:1 NAT, else the socket's).
    advertised: SocketAddr,
    media_cfg: MediaConfig,
    audio: Option<(Mid, Pt, BrowserAudio)>,
    channel: Option<ChannelId>,
    /// Messages for the page, waiting for the data channel to open.
    outbox: VecDeque<String>,
    events: VecDeque<BrowserEvent>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    connected: bool,
    closed: bool,
    connect_by: Duration,
    media_timeout: Duration,
    last_media: Option<Duration>,
    started: Duration,
    seq: u64,
    timestamp: u32,
    /// Marker on the next packet (start of a talk spurt).
    marker: bool,
    stats: BrowserStats,
}

impl BrowserSession {
    /// Accepts a browser's SDP offer for media on `local` (a bound UDP socket's address); returns
    /// the session and the SDP answer. `epoch` is the instant of call time zero; `now` the call
    /// time of the offer.
    pub fn accept(offer: &str, cfg: &WebRtcConfig, local: SocketAddr, epoch: Instant, now: Duration) -> Result<(Self, String), OfferError> {
        if !offer.lines().any(|l| l.starts_with("m=audio")) {
            return Err(OfferError::NoAudio);
        }
        // An offer's actpass lets us choose; str0m would take the passive side, and RFC 5763
        // (and JSEP) recommend the answerer be active: we start the DTLS handshake as soon as
        // ICE is up, a round trip sooner.
        let offer = offer.replace("a=setup:actpass", "a=setup:passive");
        let offer = SdpOffer::from_sdp_string(&offer).map_err(|e| OfferError::Sdp(e.to_string()))?;
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true)
            .enable_pcmu(true)
            .set_rtp_mode(true)
            // RTCP's round trip and loss, as for a phone call.
            .set_stats_interval(Some(Duration::from_secs(2)))
            .build(epoch + now);
        // ICE-lite offers host candidates only: behind a 1:1 NAT the public address is the
        // candidate (same port), and datagrams that arrive are addressed to it as far as ICE is
        // concerned (the NAT rewrote them to our local address).
        let advertised = cfg.public_ip.map(|ip| SocketAddr::new(ip, local.port())).unwrap_or(local);
        let host = Candidate::host(advertised, "udp").map_err(|e| OfferError::Address(format!("{advertised}: {e}")))?;
        rtc.add_local_candidate(host);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| OfferError::Rejected(e.to_string()))?;
        let mut session = Self {
            rtc,
            epoch,
            advertised,
            media_cfg: cfg.media.clone(),
            audio: None,
            channel: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            connected: false,
            closed: false,
            connect_by: now + Duration::from_secs(cfg.connect_timeout_secs.max(1) as u64),
            media_timeout: Duration::from_secs(cfg.media_timeout_secs.max(1) as u64),
            last_media: None,
            started: now,
            seq: u64::from(epoch.elapsed().subsec_nanos() & 0x7fff),
            timestamp: epoch.elapsed().subsec_nanos(),
            marker: true,
            stats: BrowserStats::default(),
        };
        session.drive(now);
        let answer = answer.to_sdp_string();
        // (str0m tells which codec at `MediaAdded`, once the connection is up; the answer says now.)
        if !answer_has_audio(&answer) {
            return Err(OfferError::NoCodec);
        }
        Ok((session, answer))
    }

    pub fn stats(&self) -> BrowserStats {
        let mut s = self.stats;
        if let Some((_, _, a)) = &self.audio {
            let j = a.jitter_stats();
            s.concealed = j.concealed;
            s.late = j.late;
            s.codec = Some(a.codec());
            s.playout_delay_ms = a.playout_delay_ms();
            s.deepest_frames = a.deepest_frames();
        }
        s
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A datagram that arrived on the session's socket from `from`.
    pub fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Duration) {
        if self.closed {
            return;
        }
        let Ok(contents) = bytes.try_into() else {
            // Not STUN, DTLS, RTP or RTCP: nothing of ours.
            return;
        };
        let input = Input::Receive(self.epoch + now, Receive { proto: Protocol::Udp, source: from, destination: self.advertised, contents });
        if self.rtc.accepts(&input) {
            if let Err(e) = self.rtc.handle_input(input) {
                tracing::debug!(%from, "WebRTC input refused: {e}");
            }
        }
        self.drive(now);
    }

    /// Lets time pass (timers: ICE consent, DTLS retransmits, RTCP reports, SCTP).
    pub fn on_tick(&mut self, now: Duration) {
        if self.closed {
            return;
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(self.epoch + now)) {
            tracing::debug!("WebRTC timer: {e}");
        }
        self.drive(now);
        if !self.connected && now >= self.connect_by {
            self.close("the browser never connected");
        }
        if self.connected && self.last_media.is_some() && self.silent_for(now) >= self.media_timeout {
            self.close("the browser's media stopped");
        }
    }

    /// The next datagram to send and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<BrowserEvent> {
        self.events.pop_front()
    }

    /// How long the browser's media has been silent (nothing received), from the start before the
    /// first packet.
    pub fn silent_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.last_media.unwrap_or(self.started))
    }

    /// The browser's next 20 ms at 16 kHz.
    pub fn next_frame(&mut self, out: &mut [f32; FRAME_SAMPLES]) {
        match &mut self.audio {
            Some((_, _, a)) if self.connected => a.next_frame(out),
            _ => out.fill(0.0),
        }
    }

    /// A 20 ms frame for the browser; `speaking` false marks silence (sent all the same: the
    /// browser's jitter buffer plays a steady stream).
    pub fn send_frame(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration) {
        if !self.connected || self.closed {
            return;
        }
        let Some((mid, pt, audio)) = &mut self.audio else { return };
        let payload = audio.encode(frame);
        let ticks = audio.codec().ticks_per_frame();
        let marker = speaking && self.marker;
        self.marker = !speaking;
        let (mid, pt) = (*mid, *pt);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else { return };
        let sent = stream.write_rtp(pt, self.seq.into(), self.timestamp, self.epoch + now, marker, ExtensionValues::default(), false, payload);
        self.seq += 1;
        self.timestamp = self.timestamp.wrapping_add(ticks);
        match sent {
            Ok(()) => self.stats.packets_out += 1,
            Err(e) => tracing::debug!("RTP to the browser: {e}"),
        }
        self.drive(now);
    }

    /// A JSON message for the page (captions, call state); queued until the data channel opens.
    pub fn send_message(&mut self, json: String, now: Duration) {
        if self.closed {
            return;
        }
        self.outbox.push_back(json);
        self.flush_outbox();
        self.drive(now);
    }

    /// Ends the session from our side (the page is told over the data channel first, when open).
    pub fn close(&mut self, why: &'static str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.rtc.disconnect();
        while let Ok(Output::Transmit(t)) = self.rtc.poll_output() {
            self.transmits.push_back((t.destination, t.contents.to_vec()));
        }
        self.events.push_back(BrowserEvent::Closed(why));
    }

    fn flush_outbox(&mut self) {
        let Some(id) = self.channel else { return };
        let Some(mut channel) = self.rtc.channel(id) else { return };
        while let Some(m) = self.outbox.front() {
            match channel.write(false, m.as_bytes()) {
                Ok(true) => {
                    self.outbox.pop_front();
                }
                Ok(false) => break,
                Err(e) => {
                    tracing::debug!("data channel: {e}");
                    self.outbox.pop_front();
                }
            }
        }
    }

    /// Takes everything str0m has to say until its next timeout.
    fn drive(&mut self, now: Duration) {
        while !self.closed {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) => break,
                Ok(Output::Transmit(t)) => self.transmits.push_back((t.destination, t.contents.to_vec())),
                Ok(Output::Event(e)) => self.on_event(e, now),
                Err(e) => {
                    tracing::info!("WebRTC session failed: {e}");
                    self.close("the connection failed");
                }
            }
        }
        if !self.rtc.is_alive() && !self.closed {
            self.close("the connection closed");
        }
    }

    fn on_event(&mut self, e: Event, now: Duration) {
        match e {
            Event::Connected if !self.connected => {
                self.connected = true;
                self.events.push_back(BrowserEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.close("the browser went away"),
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.audio.is_none() => {
                // The codecs both sides have (our configured ones the browser's m-line lists).
                let remote = self.rtc.media(m.mid).map(|media| media.remote_pts().to_vec()).unwrap_or_default();
                let params: Vec<_> = self.rtc.codec_config().params().iter().filter(|p| remote.contains(&p.pt())).map(|p| (p.pt(), p.spec().codec)).collect();
                let chosen = params.iter().find(|(_, c)| *c == Codec::Opus).or_else(|| params.iter().find(|(_, c)| *c == Codec::PCMU)).copied();
                if let Some((pt, codec)) = chosen {
                    let codec = if codec == Codec::Opus { BrowserCodec::Opus } else { BrowserCodec::Pcmu };
                    match BrowserAudio::new(codec, &self.media_cfg) {
                        Ok(audio) => self.audio = Some((m.mid, pt, audio)),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            // One audio m-line is used; packets of another (a second track) are not ours.
            Event::RtpPacket(p) => {
                if let Some((mid, pt, audio)) = &mut self.audio {
                    if p.header.payload_type == *pt && p.header.ext_vals.mid.is_none_or(|m| m == *mid) {
                        self.stats.packets_in += 1;
                        self.last_media = Some(now);
                        audio.push(p.header.sequence_number, p.header.timestamp, p.payload, now);
                    }
                }
            }
            Event::ChannelOpen(id, label) if label == CONTROL_CHANNEL => {
                self.channel = Some(id);
                self.flush_outbox();
            }
            Event::ChannelData(d) if Some(d.id) == self.channel => match serde_json::from_slice::<PageMessage>(&d.data) {
                Ok(PageMessage::Key { key }) => match key.chars().next() {
                    Some(k) if key.chars().count() == 1 && crate::rtp::dtmf::event_code(k).is_some() => self.events.push_back(BrowserEvent::Key(k)),
                    _ => self.stats.bad_messages += 1,
                },
                Ok(PageMessage::Hangup) => self.close("the caller hung up"),
                Err(_) => self.stats.bad_messages += 1,
            },
            Event::ChannelClose(id) if Some(id) == self.channel => self.close("the page closed the call"),
            Event::ChannelBufferedAmountLow(_) => self.flush_outbox(),
            Event::MediaEgressStats(s) => {
                if let Some(rtt) = s.rtt {
                    self.stats.round_trip_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
                if let Some(loss) = s.loss {
                    self.stats.remote_loss = Some(loss);
                }
            }
            _ => {}
        }
    }
}

/// Whether an answer accepted an audio m-line (a non-zero port) with Opus or PCMU.
fn answer_has_audio(answer: &str) -> bool {
    let mut in_audio = false;
    for line in answer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ") && m.split(' ').nth(1).is_some_and(|port| port != "0");
        } else if in_audio && line.starts_with("a=rtpmap:") {
            let lower = line.to_ascii_lowercase();
            if lower.contains(" opus/48000") || lower.contains(" pcmu/8000") {
                return true;
            }
        }
    }
    false
}
