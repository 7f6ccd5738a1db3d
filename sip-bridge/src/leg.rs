//! A leg: one party of a call as call control sees it, whatever carries it. A SIP call (signalling
//! plus RTP) is one; a browser's WebRTC connection and the simulator's recorded caller have the
//! same shape, so call control, the bot's session and (later) the bridge between two parties do not
//! know which transport a party uses.
//!
//! A leg delivers 16 kHz frames ([`ivr_audio::FRAME_SAMPLES`] every [`ivr_audio::FRAME`]), keys
//! and hang-up, and takes audio out and a few commands. It is driven by whoever owns the call's
//! clock: the live driver every 20 ms of wall time, the simulator and the in-memory tests as fast as
//! they like.

use std::time::Duration;

use ivr_audio::FRAME_SAMPLES;

/// How a key reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyVia {
    /// RFC 4733 telephone-events in the media.
    Rfc4733,
    /// SIP INFO.
    Info,
    /// A browser's keypad, over the WebRTC data channel.
    Page,
    /// The simulator's or a test's script.
    Script,
}

/// What happened on a leg.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// The party is connected and media may flow (for SIP: our answer was acknowledged).
    Connected,
    /// A keypad key (0-9, *, #).
    Key { digit: char, via: KeyVia },
    /// The keys of [`LegCommand::SendDigits`] have all gone out.
    DigitsSent,
    /// The party hung up (or gave up before the answer).
    HungUp,
}

/// What call control asks of a leg.
#[derive(Debug, Clone, PartialEq)]
pub enum LegCommand {
    /// Tell the party we are ringing (SIP 180).
    Ring,
    /// Answer; the leg reports [`LegEvent::Connected`] when media may flow.
    Answer,
    /// Refuse the call before it is answered.
    Reject { status: u16, reason: String },
    /// Send keys to the party (RFC 4733, or SIP INFO where the party offered no events); the leg
    /// reports [`LegEvent::DigitsSent`] when they are out.
    SendDigits(String),
    /// Ask the party to call `target` instead (SIP REFER, carrying `headers`, e.g. the hand-over
    /// summary for a PBX); the leg then ends.
    Transfer { target: String, headers: Vec<(String, String)> },
    /// End the call from our side.
    HangUp,
}

/// One party of a call. Frames are 16 kHz mono, [`FRAME_SAMPLES`] long.
pub trait Leg {
    /// The next thing that happened on the leg, if any.
    fn poll_event(&mut self, now: Duration) -> Option<LegEvent>;
    /// The party's next frame (silence or concealment where nothing arrived in time).
    fn receive(&mut self, frame: &mut [f32; FRAME_SAMPLES], now: Duration);
    /// A frame for the party; `speaking` marks the start of talkspurts for the transport.
    fn send(&mut self, frame: &[f32; FRAME_SAMPLES], speaking: bool, now: Duration);
    /// How long the party's media has been silent on the wire (nothing received at all): a
    /// party that is gone without hanging up.
    fn silent_for(&self, now: Duration) -> Duration;
    /// Carries out a command.
    fn command(&mut self, command: LegCommand, now: Duration);
}
