//! The telephony side of a call: SIP signalling, SDP negotiation, RTP media, DTMF and transfers.
//!
//! Empty for now: the SIP bridge is built in its own issue. G.711 itself lives in
//! `voice_pipeline::audio::g711`, because the pipeline's tools (`ivr say --rate 8000`) use it too.
