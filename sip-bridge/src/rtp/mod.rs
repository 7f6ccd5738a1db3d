//! RTP media, sans-IO: the jitter buffer and loss concealment here; packets and RTCP to come.

pub mod dtmf;
pub mod jitter;
pub mod media;
