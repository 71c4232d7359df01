//! Why configuration was refused (stops the process at start) and why a tenant lookup failed.
//!
//! Every `ConfigError` names the file and, where there is one, the field path (`quotas.usersMax`,
//! `config.defaultPersonas[2]`), and never a secret value.

use std::path::PathBuf;

/// Configuration that cannot be used. Display: `<file>: <field>: <problem>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or folder could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file is not JSON (the message has the line and column).
    #[error("{}: not valid JSON: {source}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// A field has the wrong type or value, is missing, or is not a known field.
    #[error("{}: {field}: {message}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// Dotted field path, e.g. `quotas.transformationsPerDay`.
        field: String,
        /// What is wrong, e.g. `invalid type: string "ten", expected u32`.
        message: String,
    },
    /// A tenant (or the defaults) names a tier that `quotas.json` does not define.
    #[error("{}: tier: unknown tier {tier:?} (quotas.json defines: {})", path.display(), known.join(", "))]
    UnknownTier {
        /// The file that names the tier.
        path: PathBuf,
        /// The unknown name.
        tier: String,
        /// The tiers that exist.
        known: Vec<String>,
    },
    /// A tenant file's name is not a valid tenant id.
    #[error("{}: the file name must be a tenant id: {source}", path.display())]
    InvalidTenantId {
        /// The file.
        path: PathBuf,
        /// Why the id is invalid.
        source: crate::ids::InvalidId,
    },
    /// `tenantId` inside a tenant file differs from its file name.
    #[error("{}: tenantId: {tenant_id:?} does not match the file name (expected {expected:?})", path.display())]
    TenantIdMismatch {
        /// The file.
        path: PathBuf,
        /// The id written in the file.
        tenant_id: String,
        /// The id the file name gives.
        expected: String,
    },
    /// Two tenants claim the same Discord server.
    #[error("{}: config.discordServerId: server {guild_id} is already used by {}", path.display(), other.display())]
    DuplicateDiscordServer {
        /// The second file.
        path: PathBuf,
        /// The guild id.
        guild_id: String,
        /// The file that claimed it first.
        other: PathBuf,
    },
    /// Two tenants list the same API key.
    #[error("{}: credentials.apiKeys: a key hash is already used by {}", path.display(), other.display())]
    DuplicateApiKey {
        /// The second file.
        path: PathBuf,
        /// The file that listed it first.
        other: PathBuf,
    },
    /// A credential refers to an environment variable that is not set.
    #[error("{}: {field}: environment variable {var} is not set", path.display())]
    MissingEnv {
        /// The tenant file.
        path: PathBuf,
        /// The credential's field path.
        field: String,
        /// The variable.
        var: String,
    },
    /// A credential is encrypted but `ONOMANCER_MASTER_KEY` is not set.
    #[error("{}: {field}: encrypted, but ONOMANCER_MASTER_KEY is not set", path.display())]
    MissingMasterKey {
        /// The tenant file.
        path: PathBuf,
        /// The credential's field path.
        field: String,
    },
    /// A credential could not be decrypted (wrong master key, corrupted or malformed value).
    #[error("{}: {field}: cannot decrypt: {reason}", path.display())]
    Undecryptable {
        /// The tenant file.
        path: PathBuf,
        /// The credential's field path.
        field: String,
        /// Why (never the value).
        reason: super::secrets::SecretError,
    },
    /// A credential is a plain string while `allowPlaintextSecrets` is off.
    #[error("{}: {field}: plain-text secrets are not allowed (use {{\"env\": \"VAR\"}} or {{\"encrypted\": \"v1:...\"}}, or set allowPlaintextSecrets in defaults.json for development)", path.display())]
    PlaintextSecret {
        /// The tenant file.
        path: PathBuf,
        /// The credential's field path.
        field: String,
    },
    /// The default tenant named by `defaults.json` (`thj`) has no file.
    #[error("{}: defaultTenant: no tenant file for {tenant:?} in tenants/", path.display())]
    NoDefaultTenant {
        /// `defaults.json`.
        path: PathBuf,
        /// The default tenant id.
        tenant: String,
    },
    /// An `ONOMANCER_TENANT_*` variable that names no tenant field (a typo would otherwise be
    /// silently ignored).
    #[error("environment variable {var}: names no tenant field (form: ONOMANCER_TENANT_<ID>_<FIELD_PATH>, e.g. ONOMANCER_TENANT_THJ_QUOTAS_TRANSFORMATIONS_PER_DAY)")]
    UnknownOverride {
        /// The variable's name.
        var: String,
    },
}

impl ConfigError {
    /// Builds a `Field` error.
    pub(crate) fn field(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Field {
            path: path.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A tenant lookup that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// No tenant with this id is configured.
    #[error("unknown tenant {0:?}")]
    Unknown(String),
}
