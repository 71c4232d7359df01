//! JSON layering: a deep merge of `serde_json::Value` layers and the environment overrides
//! `ONOMANCER_TENANT_<ID>_<FIELD_PATH>`.
//!
//! Naming: `<ID>` is the tenant id upper-cased with `-` as `_`; `<FIELD_PATH>` is the JSON path
//! of the field, each segment in SCREAMING_SNAKE_CASE (`transformationsPerDay` ->
//! `TRANSFORMATIONS_PER_DAY`, `storageGB` -> `STORAGE_GB`, map keys like `org/repo` -> `ORG_REPO`),
//! joined with `_`. Examples: `ONOMANCER_TENANT_THJ_QUOTAS_TRANSFORMATIONS_PER_DAY=5`,
//! `ONOMANCER_TENANT_THJ_CONFIG_DISCORD_SERVER_ID=42`,
//! `ONOMANCER_TENANT_THJ_RATE_LIMITS_CLAUDE_REQUESTS=100`,
//! `ONOMANCER_TENANT_THJ_CONFIG_FOLDER_IDS='{"marketing":"4jkl"}'` (JSON: an object is deep-merged
//! onto the field, like every layer, so it adds or changes entries; an array replaces the list).
//!
//! Overridable paths are the known fields of a tenant plus every key present in the lower layers
//! (so existing map entries such as `config.folderIds.root` can be overridden one by one; a new map
//! entry is added by setting the map's variable to a JSON object). `tenantId` cannot be
//! overridden. Parents apply before children.
//!
//! Values: when the field currently holds a string, the value is taken verbatim; otherwise a value
//! that parses as JSON (number, `true`/`false`/`null`, `[..]`, `{..}`, `".."`) is used as JSON and
//! anything else as a string. An empty value counts as unset. A credential field
//! (`CREDENTIALS_GITHUB_WEBHOOK_SECRET`, ...) set this way is read from that variable, exactly as
//! `{"env": "<that variable>"}` would be.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Prefix of every tenant override variable.
pub const ENV_PREFIX: &str = "ONOMANCER_TENANT_";

/// Credential fields: overriding one turns it into an `{"env": VAR}` reference.
pub(crate) const CREDENTIAL_FIELDS: [&str; 3] = [
    "githubWebhookSecret",
    "linearWebhookSecret",
    "googleServiceAccount",
];

/// Fields of a tenant file that may be absent from every layer but can still be set by env.
const KNOWN_PATHS: &[&[&str]] = &[
    &["name"],
    &["tier"],
    &["config"],
    &["config", "discordServerId"],
    &["config", "googleWorkspaceId"],
    &["config", "defaultPersonas"],
    &["config", "folderIds"],
    &["config", "products"],
    &["config", "github"],
    &["config", "github", "documentPaths"],
    &["config", "github", "channels"],
    &["config", "linear"],
    &["config", "linear", "channels"],
    &["config", "discord"],
    &["config", "discord", "notificationChannelId"],
    &["config", "discord", "commandRoles"],
    &["quotas"],
    &["quotas", "transformationsPerDay"],
    &["quotas", "transformationsPerMonth"],
    &["quotas", "storageGB"],
    &["quotas", "usersMax"],
    &["quotas", "requestsPerMinute"],
    &["rateLimits"],
    &["credentials"],
    &["credentials", "githubWebhookSecret"],
    &["credentials", "linearWebhookSecret"],
    &["credentials", "googleServiceAccount"],
    &["credentials", "apiKeys"],
];

/// Merges `top` into `base`: objects merge key by key, anything else (including `null`) replaces.
pub(crate) fn deep_merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// `transformationsPerDay` -> `TRANSFORMATIONS_PER_DAY`, `storageGB` -> `STORAGE_GB`,
/// `githubPR` -> `GITHUB_PR`, `org/repo` -> `ORG_REPO`.
pub fn screaming_snake(segment: &str) -> String {
    let chars: Vec<char> = segment.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out.trim_end_matches('_').to_owned()
}

/// The variable that overrides `path` of `tenant`.
pub fn override_var(tenant: &str, path: &[&str]) -> String {
    let mut name = format!("{ENV_PREFIX}{}", screaming_snake(tenant));
    for seg in path {
        name.push('_');
        name.push_str(&screaming_snake(seg));
    }
    name
}

/// One applied override, to name the variable when the resulting field is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Dotted field path.
    pub field: String,
    /// The variable that set it.
    pub var: String,
}

/// Applies the environment overrides of `tenant` to `merged`. Returns the overrides applied and
/// inserts every variable name consulted into `consulted`.
pub(crate) fn apply_env_overrides(
    tenant: &str,
    merged: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    consulted: &mut BTreeSet<String>,
) -> Vec<Applied> {
    let mut paths: BTreeSet<Vec<String>> = KNOWN_PATHS
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    collect_paths(merged, &mut Vec::new(), &mut paths);
    paths.remove(&vec!["tenantId".to_string()]);
    let mut ordered: Vec<Vec<String>> = paths.into_iter().collect();
    ordered.sort_by_key(|p| p.len());

    let mut applied = Vec::new();
    for path in ordered {
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        let var = override_var(tenant, &segs);
        consulted.insert(var.clone());
        let Some(raw) = lookup(&var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let is_credential =
            segs.len() == 2 && segs[0] == "credentials" && CREDENTIAL_FIELDS.contains(&segs[1]);
        let slot = slot_at(merged, &segs);
        let value = if is_credential {
            serde_json::json!({ "env": var })
        } else {
            parse_override(&raw, slot)
        };
        if value.is_object() && slot.is_object() {
            deep_merge(slot, value);
        } else {
            *slot = value;
        }
        applied.push(Applied {
            field: path.join("."),
            var,
        });
    }
    applied
}

/// Every object-key path in `v` (not into arrays, not into credential references).
fn collect_paths(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    let Value::Object(map) = v else { return };
    if prefix.len() == 2 && prefix[0] == "credentials" {
        return;
    }
    for (k, child) in map {
        prefix.push(k.clone());
        out.insert(prefix.clone());
        collect_paths(child, prefix, out);
        prefix.pop();
    }
}

/// The value at `path`, creating objects on the way (a non-object on the way is replaced).
fn slot_at<'a>(root: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut cur = root;
    for seg in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur
            .as_object_mut()
            .expect("made an object above")
            .entry(seg.to_string())
            .or_insert(Value::Null);
    }
    cur
}

/// Reads an override value (see the module doc).
fn parse_override(raw: &str, existing: &Value) -> Value {
    if existing.is_string() {
        return Value::String(raw.to_owned());
    }
    let t = raw.trim();
    let looks_json = t.starts_with(['[', '{', '"'])
        || matches!(t, "true" | "false" | "null")
        || t.parse::<f64>().is_ok();
    if looks_json {
        if let Ok(v) = serde_json::from_str(t) {
            return v;
        }
    }
    Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn names_follow_the_documented_rule() {
        assert_eq!(
            screaming_snake("transformationsPerDay"),
            "TRANSFORMATIONS_PER_DAY"
        );
        assert_eq!(screaming_snake("storageGB"), "STORAGE_GB");
        assert_eq!(screaming_snake("githubPR"), "GITHUB_PR");
        assert_eq!(screaming_snake("discordServerId"), "DISCORD_SERVER_ID");
        assert_eq!(screaming_snake("org/repo-name"), "ORG_REPO_NAME");
        assert_eq!(screaming_snake("acme-corp"), "ACME_CORP");
        assert_eq!(
            override_var("thj", &["quotas", "transformationsPerDay"]),
            "ONOMANCER_TENANT_THJ_QUOTAS_TRANSFORMATIONS_PER_DAY"
        );
        assert_eq!(
            override_var("acme-corp", &["config", "discordServerId"]),
            "ONOMANCER_TENANT_ACME_CORP_CONFIG_DISCORD_SERVER_ID"
        );
    }

    #[test]
    fn merge_replaces_leaves_and_merges_objects() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "n": 5});
        deep_merge(
            &mut base,
            json!({"a": {"y": 3, "z": 4}, "l": [9], "n": null}),
        );
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": 3, "z": 4}, "l": [9], "n": null})
        );
    }

    #[test]
    fn overrides_respect_types_and_order() {
        let env: HashMap<&str, &str> = [
            ("ONOMANCER_TENANT_T_QUOTAS_USERS_MAX", "7"),
            ("ONOMANCER_TENANT_T_CONFIG_DISCORD_SERVER_ID", "42"),
            (
                "ONOMANCER_TENANT_T_CONFIG_FOLDER_IDS",
                r#"{"root":"r","x":"y"}"#,
            ),
            ("ONOMANCER_TENANT_T_CONFIG_FOLDER_IDS_ROOT", "r2"),
            ("ONOMANCER_TENANT_T_CONFIG_GOOGLE_WORKSPACE_ID", "C0abc"),
            ("ONOMANCER_TENANT_T_CREDENTIALS_GITHUB_WEBHOOK_SECRET", "s"),
            ("ONOMANCER_TENANT_T_TENANT_ID", "evil"),
            ("ONOMANCER_TENANT_T_NAME", ""),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let mut v = json!({
            "tenantId": "t", "name": "T",
            "config": {"discordServerId": "1", "folderIds": {"root": "a"}},
            "quotas": {"usersMax": null}
        });
        let mut consulted = BTreeSet::new();
        let applied = apply_env_overrides("t", &mut v, &lookup, &mut consulted);
        assert_eq!(v["quotas"]["usersMax"], json!(7));
        assert_eq!(v["config"]["discordServerId"], json!("42"));
        assert_eq!(v["config"]["folderIds"], json!({"root": "r2", "x": "y"}));
        assert_eq!(v["config"]["googleWorkspaceId"], json!("C0abc"));
        assert_eq!(v["tenantId"], json!("t"));
        assert_eq!(v["name"], json!("T"));
        assert_eq!(
            v["credentials"]["githubWebhookSecret"],
            json!({"env": "ONOMANCER_TENANT_T_CREDENTIALS_GITHUB_WEBHOOK_SECRET"})
        );
        assert!(consulted.contains("ONOMANCER_TENANT_T_QUOTAS_STORAGE_GB"));
        assert!(!consulted.contains("ONOMANCER_TENANT_T_TENANT_ID"));
        assert_eq!(applied.len(), 6, "{applied:?}");
    }
}
