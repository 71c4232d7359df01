//! Wire types of the Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`):
//! explicit request and response DTOs, nothing else.

use serde::{Deserialize, Serialize};

use super::cost::TokenCounts;
use crate::text::SharedText;

/// A prompt-cache breakpoint: the prefix up to and including the block carrying it is cached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Always `ephemeral`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `"5m"` (default when absent) or `"1h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

impl CacheControl {
    /// `{"type":"ephemeral"}`: the default 5-minute cache.
    pub fn ephemeral() -> Self {
        Self {
            kind: "ephemeral".into(),
            ttl: None,
        }
    }

    /// `{"type":"ephemeral","ttl":"1h"}`: the 1-hour cache (writes cost 2x instead of 1.25x).
    pub fn ephemeral_1h() -> Self {
        Self {
            kind: "ephemeral".into(),
            ttl: Some("1h".into()),
        }
    }
}

/// A content block. Only text is sent by Onomancer; other kinds in responses are kept as
/// [`ContentBlock::Other`] so a new block type never fails decoding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// `{"type":"text","text":..}`, optionally a cache breakpoint.
    Text {
        /// The text (shared: a document sent in several requests is held once).
        text: SharedText,
        /// Marks the end of a cacheable prefix.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// Any block type this client does not use (tool_use, thinking, ...).
    #[serde(other)]
    Other,
}

impl ContentBlock {
    /// A plain text block.
    pub fn text(text: impl Into<SharedText>) -> Self {
        Self::Text {
            text: text.into(),
            cache_control: None,
        }
    }

    /// A text block that ends a cached prefix (`cache_control: {"type":"ephemeral"}`).
    pub fn cached_text(text: impl Into<SharedText>, cache_control: CacheControl) -> Self {
        Self::Text {
            text: text.into(),
            cache_control: Some(cache_control),
        }
    }
}

/// `system`: a string, or text blocks (needed to put a cache breakpoint in the system prompt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// A plain string.
    Text(String),
    /// Text blocks, possibly with `cache_control`.
    Blocks(Vec<ContentBlock>),
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The caller.
    User,
    /// The model (prefill or earlier turns).
    Assistant,
}

/// A message's `content`: a string or blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// A plain string.
    Text(SharedText),
    /// Blocks, possibly with `cache_control`.
    Blocks(Vec<ContentBlock>),
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`; turns alternate, starting with `user`.
    pub role: Role,
    /// The turn's content.
    pub content: MessageContent,
}

impl Message {
    /// A user turn with plain text.
    pub fn user(text: impl Into<SharedText>) -> Self {
        Self {
            role: Role::User,
            content: MessageContent::Text(text.into()),
        }
    }

    /// A user turn made of blocks.
    pub fn user_blocks(blocks: Vec<ContentBlock>) -> Self {
        Self {
            role: Role::User,
            content: MessageContent::Blocks(blocks),
        }
    }
}

/// `POST /v1/messages` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model id, from [`crate::llm::pricing::ModelRoutes`] (never a literal in code).
    pub model: String,
    /// Output cap.
    pub max_tokens: u32,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Sampling temperature (0.0 to 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Texts that end generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
}

impl MessagesRequest {
    /// A request with one user message and no system prompt.
    pub fn new(model: impl Into<String>, max_tokens: u32, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            max_tokens,
            system: None,
            messages,
            temperature: None,
            stop_sequences: None,
        }
    }

    /// Sets the system prompt.
    pub fn system(mut self, system: SystemPrompt) -> Self {
        self.system = Some(system);
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The `count_tokens` body for the same input.
    pub fn count_tokens_request(&self) -> CountTokensRequest {
        CountTokensRequest {
            model: self.model.clone(),
            system: self.system.clone(),
            messages: self.messages.clone(),
        }
    }
}

/// `POST /v1/messages/count_tokens` body: the input of a messages request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// Model id.
    pub model: String,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// The conversation.
    pub messages: Vec<Message>,
}

/// `count_tokens` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTokensResponse {
    /// Input tokens the request would use.
    pub input_tokens: u64,
}

/// Split of cache writes by TTL (newer API versions report it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCreation {
    /// Tokens written with the 5-minute TTL.
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    /// Tokens written with the 1-hour TTL.
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

/// `usage` of a response: billed tokens by kind. The cache fields are optional and nullable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens (after the last cache breakpoint).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Cache writes by TTL, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
}

impl Usage {
    /// The four billed counts (plus the 1h share of cache writes), each counted exactly once.
    pub fn tokens(&self) -> TokenCounts {
        TokenCounts {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_creation: self.cache_creation_input_tokens.unwrap_or(0),
            cache_creation_1h: self
                .cache_creation
                .map(|c| c.ephemeral_1h_input_tokens)
                .unwrap_or(0),
            cache_read: self.cache_read_input_tokens.unwrap_or(0),
        }
    }
}

/// `POST /v1/messages` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id (`msg_...`).
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: Role,
    /// Generated blocks.
    pub content: Vec<ContentBlock>,
    /// The model that answered (may be a dated id).
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn` or `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Which stop sequence matched, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Billed tokens.
    pub usage: Usage,
}

impl MessagesResponse {
    /// The text blocks joined (what a transform posts).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text, .. } => Some(text),
                ContentBlock::Other => None,
            })
            .flat_map(SharedText::chunks)
            .collect()
    }

    /// True when generation stopped at `max_tokens` (the text is cut off).
    pub fn truncated(&self) -> bool {
        self.stop_reason.as_deref() == Some("max_tokens")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_serializes_to_the_wire_format() {
        let req = MessagesRequest::new(
            "m",
            1024,
            vec![Message::user_blocks(vec![
                ContentBlock::cached_text("doc", CacheControl::ephemeral()),
                ContentBlock::text("write for leadership"),
            ])],
        )
        .system(SystemPrompt::Blocks(vec![ContentBlock::cached_text(
            "sys",
            CacheControl::ephemeral_1h(),
        )]))
        .temperature(0.2);
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({
                "model": "m", "max_tokens": 1024, "temperature": 0.2f32,
                "system": [{"type":"text","text":"sys","cache_control":{"type":"ephemeral","ttl":"1h"}}],
                "messages": [{"role":"user","content":[
                    {"type":"text","text":"doc","cache_control":{"type":"ephemeral"}},
                    {"type":"text","text":"write for leadership"}
                ]}]
            })
        );
        let plain =
            serde_json::to_value(MessagesRequest::new("m", 5, vec![Message::user("hi")])).unwrap();
        assert_eq!(
            plain,
            json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})
        );
    }

    #[test]
    fn response_parses_with_nullable_cache_fields_and_unknown_blocks() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m-2025",
            "content": [{"type":"thinking","thinking":"..","signature":"x"},{"type":"text","text":"Hello"},{"type":"text","text":" world"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": null,
                      "cache_read_input_tokens": 7}
        });
        let r: MessagesResponse = serde_json::from_value(body).unwrap();
        assert_eq!(r.text(), "Hello world");
        assert_eq!(r.content[0], ContentBlock::Other);
        let t = r.usage.tokens();
        assert_eq!(
            (t.input, t.output, t.cache_creation, t.cache_read),
            (10, 5, 0, 7)
        );
        assert_eq!(t.total_input(), 17);
        assert!(!r.truncated());
    }

    #[test]
    fn cache_creation_split_is_read() {
        let u: Usage = serde_json::from_value(json!({
            "input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}
        }))
        .unwrap();
        let t = u.tokens();
        assert_eq!(
            (t.cache_creation, t.cache_creation_1h, t.cache_read),
            (300, 200, 0)
        );
    }
}
