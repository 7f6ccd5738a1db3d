//! RTP media, sans-IO: packets and codecs (`media`), the jitter buffer and loss concealment,
//! RFC 4733 keypad events, and RTCP reports.

pub mod dtmf;
pub mod jitter;
pub mod media;
pub mod rtcp;
