//! The tenant types (`TenantConfig`, `TenantQuotas`, ...) and their JSON form, field names exactly
//! as the seed's `config/tenants/thj.json` writes them (camelCase), extended with the product's
//! GitHub, Linear and Discord routing. Unknown fields are refused so typos are caught.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::defaults::required;
use super::secrets::SecretRef;
use crate::ids::Persona;
use crate::queue::RateLimit;

/// A tenant file after layering (defaults, tier, file, environment), before validation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub tenant_id: String,
    pub name: String,
    pub tier: String,
    pub config: RawConfig,
    pub quotas: TenantQuotas,
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimit>,
    #[serde(default)]
    pub credentials: RawCredentials,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub discord_server_id: String,
    #[serde(default)]
    pub google_workspace_id: Option<String>,
    pub default_personas: Vec<String>,
    #[serde(default)]
    pub folder_ids: BTreeMap<String, String>,
    #[serde(default)]
    pub github: RawGithub,
    #[serde(default)]
    pub linear: LinearConfig,
    #[serde(default)]
    pub discord: TenantDiscordConfig,
    #[serde(default)]
    pub products: BTreeMap<String, ProductConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawGithub {
    #[serde(default)]
    pub document_paths: Vec<String>,
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawCredentials {
    #[serde(default)]
    pub github_webhook_secret: Option<SecretRef>,
    #[serde(default)]
    pub linear_webhook_secret: Option<SecretRef>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default)]
    pub google_service_account: Option<SecretRef>,
}

/// A tenant's settings (the seed's `TenantConfig`, extended).
#[derive(Clone, Debug)]
pub struct TenantConfig {
    /// The tenant's Discord server (guild) id.
    pub discord_server_id: String,
    /// The tenant's Google Workspace, when it brings its own.
    pub google_workspace_id: Option<String>,
    /// Personas generated when a request names none.
    pub default_personas: Vec<Persona>,
    /// Google Drive folder ids by role (`root`, `products`, `shared`, or a persona).
    pub folder_ids: BTreeMap<String, String>,
    /// GitHub routing.
    pub github: GithubConfig,
    /// Linear routing.
    pub linear: LinearConfig,
    /// Discord behaviour.
    pub discord: TenantDiscordConfig,
    /// Products (projects) the tenant tracks, by key.
    pub products: BTreeMap<String, ProductConfig>,
}

/// GitHub routing: which pushed files are documents to transform, and where events are posted.
#[derive(Clone, Debug, Default)]
pub struct GithubConfig {
    /// Globs (`docs/prd/**`) of repository paths whose changes trigger a transform.
    pub document_paths: Vec<String>,
    /// `document_paths`, compiled.
    pub document_globs: GlobSet,
    /// Repository `full_name` (`org/repo`) -> Discord channel id for its notifications.
    pub channels: BTreeMap<String, String>,
}

impl GithubConfig {
    /// Whether a repository path is a document to transform.
    pub fn is_document(&self, path: &str) -> bool {
        self.document_globs.is_match(path)
    }

    /// The channel for a repository's notifications (`None`: not routed).
    pub fn channel_for(&self, repo_full_name: &str) -> Option<&str> {
        self.channels.get(repo_full_name).map(String::as_str)
    }
}

/// Linear routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinearConfig {
    /// Linear team key (`ENG`) -> Discord channel id.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

/// Discord behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantDiscordConfig {
    /// Where notifications without a more specific route go (and weekly digests).
    #[serde(default)]
    pub notification_channel_id: Option<String>,
    /// Command name -> role ids allowed to run it; absent or empty means everyone.
    #[serde(default)]
    pub command_roles: BTreeMap<String, Vec<String>>,
}

impl TenantDiscordConfig {
    /// Whether a member with `member_roles` may run `command`.
    pub fn command_allowed(&self, command: &str, member_roles: &[String]) -> bool {
        match self.command_roles.get(command) {
            None => true,
            Some(allowed) if allowed.is_empty() => true,
            Some(allowed) => member_roles.iter().any(|r| allowed.contains(r)),
        }
    }
}

/// A product (project) of the tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductConfig {
    /// Name shown in digests.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Drive folder for the product's documents.
    #[serde(default)]
    pub folder_id: Option<String>,
    /// GitHub repositories (`org/repo`) of the product.
    #[serde(default)]
    pub repos: Vec<String>,
    /// Linear team keys of the product.
    #[serde(default)]
    pub linear_teams: Vec<String>,
}

/// Usage limits (the seed's `TenantQuotas`, plus the gateway admission rate). `None` (JSON
/// `null`) means unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantQuotas {
    /// Transforms per UTC day.
    #[serde(deserialize_with = "required")]
    pub transformations_per_day: Option<u32>,
    /// Transforms per calendar month (UTC).
    #[serde(deserialize_with = "required")]
    pub transformations_per_month: Option<u32>,
    /// Google Drive storage.
    #[serde(rename = "storageGB", deserialize_with = "required")]
    pub storage_gb: Option<u32>,
    /// Seats.
    #[serde(deserialize_with = "required")]
    pub users_max: Option<u32>,
    /// Requests per minute the gateway admits for this tenant.
    pub requests_per_minute: u32,
}

/// Checks that a Discord id is a snowflake (digits).
pub(crate) fn check_snowflake(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{id:?} is not a Discord id (1 to 20 digits)"));
    }
    Ok(())
}

/// Validates the raw config into a `TenantConfig`; errors are `(field path, message)`.
pub(crate) fn build_config(raw: RawConfig) -> Result<TenantConfig, (String, String)> {
    let field = |f: String| move |m: String| (f, m);
    check_snowflake(&raw.discord_server_id).map_err(field("config.discordServerId".into()))?;
    let mut personas = Vec::with_capacity(raw.default_personas.len());
    for (i, p) in raw.default_personas.iter().enumerate() {
        personas.push(
            Persona::parse(p)
                .map_err(|e| (format!("config.defaultPersonas[{i}]"), e.to_string()))?,
        );
    }
    if personas.is_empty() {
        return Err((
            "config.defaultPersonas".into(),
            "must list at least one persona".into(),
        ));
    }
    let mut globs = GlobSetBuilder::new();
    for (i, g) in raw.github.document_paths.iter().enumerate() {
        let glob = Glob::new(g)
            .map_err(|e| (format!("config.github.documentPaths[{i}]"), e.to_string()))?;
        globs.add(glob);
    }
    let document_globs = globs
        .build()
        .map_err(|e| ("config.github.documentPaths".to_string(), e.to_string()))?;
    for (repo, ch) in &raw.github.channels {
        if repo.split('/').count() != 2 || repo.starts_with('/') || repo.ends_with('/') {
            return Err((
                format!("config.github.channels.{repo}"),
                "key must be a repository full name like \"org/repo\"".into(),
            ));
        }
        check_snowflake(ch).map_err(field(format!("config.github.channels.{repo}")))?;
    }
    for (team, ch) in &raw.linear.channels {
        check_snowflake(ch).map_err(field(format!("config.linear.channels.{team}")))?;
    }
    if let Some(ch) = &raw.discord.notification_channel_id {
        check_snowflake(ch).map_err(field("config.discord.notificationChannelId".into()))?;
    }
    for (cmd, roles) in &raw.discord.command_roles {
        for (i, r) in roles.iter().enumerate() {
            check_snowflake(r).map_err(field(format!("config.discord.commandRoles.{cmd}[{i}]")))?;
        }
    }
    Ok(TenantConfig {
        discord_server_id: raw.discord_server_id,
        google_workspace_id: raw.google_workspace_id,
        default_personas: personas,
        folder_ids: raw.folder_ids,
        github: GithubConfig {
            document_paths: raw.github.document_paths,
            document_globs,
            channels: raw.github.channels,
        },
        linear: raw.linear,
        discord: raw.discord,
        products: raw.products,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_roles_empty_means_everyone() {
        let d: TenantDiscordConfig = serde_json::from_value(serde_json::json!({
            "commandRoles": {"transform": ["1", "2"], "usage": []}
        }))
        .unwrap();
        assert!(d.command_allowed("usage", &[]));
        assert!(d.command_allowed("decisions", &[]));
        assert!(!d.command_allowed("transform", &["3".into()]));
        assert!(d.command_allowed("transform", &["3".into(), "2".into()]));
    }

    #[test]
    fn snowflakes_are_digits() {
        assert!(check_snowflake("123456789").is_ok());
        assert!(check_snowflake("").is_err());
        assert!(check_snowflake("12a").is_err());
    }
}
