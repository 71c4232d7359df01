//! The job payloads the gateway writes: defined in `onomancer_shared::payloads`, where the
//! workers decode them from.

pub use onomancer_shared::payloads::*;
