//! The telephony side of a call: SIP signalling, SDP negotiation, RTP media, DTMF and transfers.
//!
//! Protocol logic is sans-IO (parsers and state machines that take bytes and the time and return
//! what to send). It knows nothing of models or dialogue: its unit is a call's leg (audio frames
//! at `ivr_audio::RATE` in and out, keys, hang-up); `call-control` joins legs to the bot. G.711
//! and resampling live in `ivr-audio`, shared with the speech side.

pub mod leg;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod webrtc;
