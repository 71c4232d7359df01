//! The commands Onomancer offers, as data (names, descriptions, options): slash commands, and
//! the *Record decision* message command (right-click a message, Apps). Their serenity builders,
//! and registration through Discord's bulk-overwrite endpoints (global or one guild).

use serenity::all::{
    Command, CommandOptionType, CommandType, CreateCommand, CreateCommandOption, GuildId, Http,
    InteractionContext,
};

/// How a command is invoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Typed as `/name` (Discord's `CHAT_INPUT`, type 1).
    Slash,
    /// Picked from a message's *Apps* menu (Discord's `MESSAGE`, type 3); the target message is
    /// the input. `key` is its job command and role-config name (message command names may hold
    /// spaces and capitals).
    Message {
        /// Job command and role-config name (`record-decision`).
        key: &'static str,
    },
}

/// The kind of a command option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// Free text.
    String,
    /// A file uploaded with the command.
    Attachment,
}

/// One option of a command.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// Option name (lower case, as typed).
    pub name: &'static str,
    /// Shown in Discord's picker (at most 100 characters).
    pub description: &'static str,
    /// Its kind.
    pub kind: OptionKind,
    /// Whether Discord makes the user fill it.
    pub required: bool,
    /// Fixed choices (name = value), if any.
    pub choices: &'static [&'static str],
}

/// One slash command.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Command name as Discord shows it (`transform`, `Record decision`).
    pub name: &'static str,
    /// Slash or message command.
    pub kind: CommandKind,
    /// Shown in Discord for slash commands (at most 100 characters); for message commands only
    /// in `/help` (Discord takes none).
    pub description: &'static str,
    /// Its options, required ones first (Discord insists). Message commands have none.
    pub options: &'static [OptionSpec],
}

impl CommandSpec {
    /// The job command and role-config name: the name of a slash command, the key of a message
    /// command.
    pub fn key(&self) -> &'static str {
        match self.kind {
            CommandKind::Slash => self.name,
            CommandKind::Message { key } => key,
        }
    }
}

const PERSONAS: &[&str] = &["leadership", "product", "marketing", "devrel"];

const fn opt(
    name: &'static str,
    description: &'static str,
    kind: OptionKind,
    required: bool,
) -> OptionSpec {
    OptionSpec {
        name,
        description,
        kind,
        required,
        choices: &[],
    }
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        kind: CommandKind::Slash,
        name: "transform",
        description:
            "Rewrite a document for each audience (leadership, product, marketing, devrel)",
        options: &[
            opt(
                "link",
                "Link to the document (Google Doc, GitHub file or web page)",
                OptionKind::String,
                false,
            ),
            opt(
                "file",
                "The document as an attached file",
                OptionKind::Attachment,
                false,
            ),
            opt(
                "personas",
                "Comma-separated audiences (default: this server's)",
                OptionKind::String,
                false,
            ),
            opt(
                "product",
                "The product the document belongs to",
                OptionKind::String,
                false,
            ),
        ],
    },
    CommandSpec {
        kind: CommandKind::Slash,
        name: "digest",
        description: "This week's digest of what shipped, changed and was decided",
        options: &[OptionSpec {
            name: "persona",
            description: "The audience to write the digest for",
            kind: OptionKind::String,
            required: false,
            choices: PERSONAS,
        }],
    },
    CommandSpec {
        kind: CommandKind::Slash,
        name: "decisions",
        description: "Search recorded decisions, answered with citations",
        options: &[opt(
            "query",
            "What to look for (leave empty for the latest decisions)",
            OptionKind::String,
            false,
        )],
    },
    CommandSpec {
        kind: CommandKind::Slash,
        name: "usage",
        description: "Tokens, cost, cache hit rate and quota left for this server",
        options: &[],
    },
    CommandSpec {
        kind: CommandKind::Slash,
        name: "status",
        description: "State of a job, or of this server's queue",
        options: &[opt(
            "job",
            "A job id (default: this server's queue)",
            OptionKind::String,
            false,
        )],
    },
    CommandSpec {
        kind: CommandKind::Slash,
        name: "help",
        description: "What Onomancer can do",
        options: &[],
    },
    CommandSpec {
        kind: CommandKind::Message {
            key: RECORD_DECISION,
        },
        name: "Record decision",
        description: "Record a message as a decision, found later by `/decisions`",
        options: &[],
    },
];

pub use onomancer_shared::payloads::RECORD_DECISION;

/// The command named `name` invoked as `kind` (Discord's `data.type`: 1 slash, 3 message).
pub fn command(name: &str, kind: u8) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| {
        c.name == name
            && match c.kind {
                CommandKind::Slash => kind == 1,
                CommandKind::Message { .. } => kind == 3,
            }
    })
}

/// The serenity builders for [`COMMANDS`] (guild-only: every command needs a tenant).
pub fn create_commands() -> Vec<CreateCommand> {
    COMMANDS
        .iter()
        .map(|c| {
            if let CommandKind::Message { .. } = c.kind {
                return CreateCommand::new(c.name)
                    .kind(CommandType::Message)
                    .contexts(vec![InteractionContext::Guild]);
            }
            let options = c
                .options
                .iter()
                .map(|o| {
                    let kind = match o.kind {
                        OptionKind::String => CommandOptionType::String,
                        OptionKind::Attachment => CommandOptionType::Attachment,
                    };
                    o.choices.iter().fold(
                        CreateCommandOption::new(kind, o.name, o.description).required(o.required),
                        |b, choice| b.add_string_choice(*choice, *choice),
                    )
                })
                .collect();
            CreateCommand::new(c.name)
                .description(c.description)
                .contexts(vec![InteractionContext::Guild])
                .set_options(options)
        })
        .collect()
}

/// Overwrites the application's commands with [`COMMANDS`]: in one guild (instant, for testing)
/// or globally. `http` must have its application id set.
pub async fn register_commands(
    http: &Http,
    guild: Option<GuildId>,
) -> Result<Vec<Command>, serenity::Error> {
    let commands = create_commands();
    match guild {
        Some(g) => http.create_guild_commands(g, &commands).await,
        None => http.create_global_commands(&commands).await,
    }
}

/// The `/help` text.
pub fn help_text() -> String {
    let mut s = String::from("**Onomancer commands**\n");
    for c in COMMANDS {
        if let CommandKind::Message { .. } = c.kind {
            s.push_str(&format!(
                "*{}* (on a message: right-click or long-press, then Apps): {}\n",
                c.name, c.description
            ));
            continue;
        }
        s.push_str(&format!("`/{}`: {}", c.name, c.description));
        if !c.options.is_empty() {
            let names: Vec<String> = c
                .options
                .iter()
                .map(|o| {
                    if o.required {
                        o.name.to_string()
                    } else {
                        format!("[{}]", o.name)
                    }
                })
                .collect();
            s.push_str(&format!(" ({})", names.join(", ")));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_respect_discords_limits() {
        for c in COMMANDS {
            assert!(c.name.len() <= 32, "{}", c.name);
            match c.kind {
                CommandKind::Slash => assert!(c.name.bytes().all(|b| b.is_ascii_lowercase())),
                CommandKind::Message { key } => {
                    assert!(c.options.is_empty());
                    assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
                }
            }
            assert!(
                !c.description.is_empty() && c.description.len() <= 100,
                "{}",
                c.name
            );
            let mut seen_optional = false;
            for o in c.options {
                assert!(o.description.len() <= 100, "{}.{}", c.name, o.name);
                assert!(
                    !(seen_optional && o.required),
                    "{}: required after optional",
                    c.name
                );
                seen_optional |= !o.required;
            }
        }
        assert!(help_text().contains("`/decisions`"));
        assert!(help_text().contains("*Record decision* (on a message"));
        assert_eq!(
            command("decisions", 1).map(CommandSpec::key),
            Some("decisions")
        );
        assert_eq!(
            command("Record decision", 3).map(CommandSpec::key),
            Some(RECORD_DECISION)
        );
        assert!(command("Record decision", 1).is_none());
        assert!(command("decisions", 3).is_none());
    }
}
