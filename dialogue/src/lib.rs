//! The dialogue manager: what the bot says and does with each caller turn.
//!
//! - [`knowledge`]: the company's knowledge base and intents, plain TOML files it maintains.
//! - [`embed`]: sentence embeddings on the device (all-MiniLM-L6-v2 with candle).
//! - [`intent`]: nearest-neighbour intent recognition with a calibrated confidence.

pub mod embed;
pub mod intent;
pub mod knowledge;
pub mod store;
pub mod tools;
