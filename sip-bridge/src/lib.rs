//! The telephony side of a call: SIP signalling, SDP negotiation, RTP media, DTMF and transfers.
//!
//! Protocol logic is sans-IO (parsers and state machines that take bytes and the time and return
//! what to send); the socket layer is thin. G.711 itself lives in `voice_pipeline::audio::g711`,
//! because the pipeline's tools (`ivr say --rate 8000`) use it too.

pub mod rtp;
pub mod sdp;
pub mod server;
pub mod sip;
