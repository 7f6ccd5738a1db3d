//! Call control: what happens to a call between its transport and the bot. It joins a call's leg
//! (today a SIP leg from `sip-bridge`) to the bot's session (`voice-pipeline`) and owns the
//! policies around them: ringing, answering, transfer routing, keypad transfer, the RTP timeout and
//! the call records. Transports know nothing of models or dialogue; this crate is where they meet.

pub mod acd;
pub mod attendant;
pub mod browser;
pub mod browser_leg;
pub mod call;
pub mod desk;
pub mod driver;
pub mod handoff;
pub mod hold;
mod live;
pub mod metrics;
pub mod record;
pub mod recording;
pub mod server;
pub mod sim;
pub mod voicemail;
mod sip_leg;
