//! Discord interaction DTOs (only the fields used) and the reply bodies the gateway sends.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};

/// Interaction type 1.
pub const PING: u8 = 1;
/// Interaction type 2.
pub const APPLICATION_COMMAND: u8 = 2;

/// Message flag: only the invoking user sees it.
pub const EPHEMERAL: u64 = 64;

/// An incoming interaction.
#[derive(Debug, Deserialize)]
pub struct Interaction {
    /// Interaction type (1 ping, 2 command, ...).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Interaction id.
    #[serde(default)]
    pub id: String,
    /// Application id.
    #[serde(default)]
    pub application_id: String,
    /// Continuation token (15 minutes).
    #[serde(default)]
    pub token: String,
    /// Guild (absent in DMs).
    pub guild_id: Option<String>,
    /// Channel.
    pub channel_id: Option<String>,
    /// The invoking member (in guilds).
    pub member: Option<Member>,
    /// The invoking user (in DMs).
    pub user: Option<User>,
    /// Command data.
    pub data: Option<CommandData>,
}

/// A guild member.
#[derive(Debug, Deserialize)]
pub struct Member {
    /// Role ids.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user.
    pub user: Option<User>,
}

/// A user.
#[derive(Debug, Deserialize)]
pub struct User {
    /// User id.
    pub id: String,
}

/// A command invocation.
#[derive(Debug, Deserialize)]
pub struct CommandData {
    /// Command name.
    pub name: String,
    /// Command type: 1 slash (`CHAT_INPUT`), 3 message (absent means 1).
    #[serde(rename = "type", default = "slash")]
    pub kind: u8,
    /// The message a message command was invoked on.
    pub target_id: Option<String>,
    /// Options given.
    #[serde(default)]
    pub options: Vec<CommandOption>,
    /// Objects the options refer to (attachments).
    #[serde(default)]
    pub resolved: Resolved,
}

/// One option value.
#[derive(Debug, Deserialize)]
pub struct CommandOption {
    /// Option name.
    pub name: String,
    /// String, number, boolean, or an id for attachments.
    #[serde(default)]
    pub value: Value,
}

fn slash() -> u8 {
    1
}

/// Resolved objects.
#[derive(Debug, Default, Deserialize)]
pub struct Resolved {
    /// Attachments by id.
    #[serde(default)]
    pub attachments: HashMap<String, Attachment>,
    /// Messages by id (the target of a message command).
    #[serde(default)]
    pub messages: HashMap<String, ResolvedMessage>,
}

/// A message a command refers to.
#[derive(Clone, Debug, Deserialize)]
pub struct ResolvedMessage {
    /// Message id.
    pub id: String,
    /// Its channel.
    pub channel_id: String,
    /// Its text (empty for a message of only embeds or files).
    #[serde(default)]
    pub content: String,
    /// Who wrote it.
    pub author: Option<MessageAuthor>,
    /// When it was sent (ISO 8601).
    pub timestamp: Option<String>,
}

/// A message's author.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageAuthor {
    /// User name.
    pub username: String,
    /// Display name, when set.
    pub global_name: Option<String>,
}

/// An uploaded file.
#[derive(Clone, Debug, Deserialize)]
pub struct Attachment {
    /// File name.
    pub filename: String,
    /// CDN link.
    pub url: String,
    /// MIME type.
    pub content_type: Option<String>,
}

impl Interaction {
    /// The invoking user's id.
    pub fn user_id(&self) -> Option<String> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
            .map(|u| u.id.clone())
    }

    /// The member's roles (empty outside guilds).
    pub fn roles(&self) -> &[String] {
        self.member.as_ref().map_or(&[], |m| &m.roles)
    }
}

impl CommandData {
    /// Options by name; attachment ids are replaced by the resolved attachment object.
    pub fn options_map(&self) -> BTreeMap<String, Value> {
        self.options
            .iter()
            .map(|o| {
                let value = match o.value.as_str().and_then(|id| self.resolved.attachments.get(id)) {
                    Some(a) => json!({"filename": a.filename, "url": a.url, "content_type": a.content_type}),
                    None => o.value.clone(),
                };
                (o.name.clone(), value)
            })
            .collect()
    }

    /// A string option.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.value.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The target message of a message command, as the worker reads it (`options.message`).
    pub fn target_message(&self) -> Option<Value> {
        let m = self.resolved.messages.get(self.target_id.as_deref()?)?;
        let author = m
            .author
            .as_ref()
            .map(|a| a.global_name.clone().unwrap_or_else(|| a.username.clone()));
        Some(
            json!({"id": m.id, "channel_id": m.channel_id, "content": m.content,
                    "author": author, "timestamp": m.timestamp}),
        )
    }

    /// An attachment option, resolved.
    pub fn attachment(&self, name: &str) -> Option<&Attachment> {
        let id = self.string(name)?;
        self.resolved.attachments.get(id)
    }
}

/// `{"type":1}`.
pub fn pong() -> Value {
    json!({"type": 1})
}

/// Type 5: "thinking...", edited later by the worker.
pub fn deferred() -> Value {
    json!({"type": 5})
}

/// Type 4 with flags 64: an immediate message only the invoker sees.
pub fn ephemeral(content: &str) -> Value {
    json!({"type": 4, "data": {"content": content, "flags": EPHEMERAL}})
}
