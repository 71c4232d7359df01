//! Claude: the Messages API client, its wire types, typed errors the queue acts on, and the
//! model routes and prices read from configuration.

mod body;
pub mod client;
pub mod error;
pub mod pricing;
pub mod types;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod pause_tests;

pub use client::{ClaudeClient, ClaudeConfig, ClaudeReply, HttpVersion, ANTHROPIC_VERSION};
pub use error::{ApiError, LlmError};
pub use pricing::{ModelPrice, ModelRoutes, Prices};
pub use types::{
    CacheControl, ContentBlock, CountTokensRequest, Message, MessageContent, MessagesRequest,
    MessagesResponse, Role, SystemPrompt, Usage,
};
