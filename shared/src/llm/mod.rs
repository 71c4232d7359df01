//! Claude: the Messages API client, its wire types, typed errors the queue acts on, the model
//! routes and prices read from configuration, and the cost of a call (token counts times price,
//! in micro-dollars). `usage` builds on this module; nothing here depends on `usage`.

mod body;
pub mod client;
pub mod cost;
pub mod error;
pub mod pricing;
pub mod types;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod pause_tests;

pub use client::{ClaudeClient, ClaudeConfig, ClaudeReply, HttpVersion, ANTHROPIC_VERSION};
pub use cost::{cost_micros, format_dollars, micros_to_dollars, round_to_cents, TokenCounts};
pub use error::{ClaudeApiError, LlmError};
pub use pricing::{ModelPrice, ModelRoutes, Prices};
pub use types::{
    CacheControl, ContentBlock, CountTokensRequest, Message, MessageContent, MessagesRequest,
    MessagesResponse, Role, SystemPrompt, Usage,
};
