//! SIP signalling (RFC 3261), sans-IO: messages here; transactions and dialogs take parsed
//! messages and the time and say what to send.

pub mod grammar;
pub mod header;
pub mod message;
pub mod method;
pub mod transaction;
pub mod endpoint;
pub mod registrar;
