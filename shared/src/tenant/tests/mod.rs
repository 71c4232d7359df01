//! Loading tests: config folders written to temp dirs, environments passed as maps.

mod duplicate_keys;
mod errors;
mod loading;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

fn defaults_json() -> Value {
    json!({
        "defaultTenant": "thj",
        "tier": "starter",
        "defaultPersonas": ["leadership", "product"],
        "requestsPerMinute": 30,
        "allowPlaintextSecrets": false,
        "models": {"transform": "sonnet", "validation": "haiku", "summarize": "haiku"},
        "prices": {
            "sonnet": {"input": 3.0, "output": 15.0, "cacheWrite5mMultiplier": 1.25, "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1},
            "haiku": {"input": 1.0, "output": 5.0, "cacheWrite5mMultiplier": 1.25, "cacheWrite1hMultiplier": 2.0, "cacheReadMultiplier": 0.1}
        },
        "cache": {
            "l1": {"maxSize": 100, "ttlMs": 300000},
            "l2": {"ttlSeconds": {"transformation": 3600, "linearIssue": 300, "githubPR": 600, "folderIds": 3600, "userRoles": 3600}},
            "staleWhileRevalidate": {"maxStaleMs": 300000, "backgroundRefreshEnabled": true}
        },
        "rateLimits": {"claude": {"requests": 50, "perSeconds": 60}, "discord": {"requests": 50, "perSeconds": 1}},
        "queue": {"maxAttempts": 5, "backoffBaseMs": 1000, "backoffMaxMs": 600000, "claimIdleMs": 30000,
                  "maxDeliveries": 10, "idempotencyWindowSeconds": 86400, "statusTtlSeconds": 604800, "streamMaxLenHint": 100000},
        "digest": {"cron": "0 0 9 * * Mon", "timezone": "UTC"}
    })
}

fn quotas_json() -> Value {
    json!({"tiers": {
        "starter": {"usersMax": 5, "transformationsPerDay": 10, "transformationsPerMonth": 100, "storageGB": 5, "requestsPerMinute": 60, "pricePerMonthUsd": 49},
        "team": {"usersMax": 20, "transformationsPerDay": 50, "transformationsPerMonth": 500, "storageGB": 20, "requestsPerMinute": 120, "pricePerMonthUsd": 149},
        "enterprise": {"usersMax": null, "transformationsPerDay": null, "transformationsPerMonth": null, "storageGB": null, "requestsPerMinute": 1200, "pricePerMonthUsd": null}
    }})
}

fn thj_json() -> Value {
    json!({"tenantId": "thj", "name": "The Honey Jar", "config": {"discordServerId": "123456789"}})
}

/// A temp config folder with defaults, quotas and `thj`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(f.dir.path().join("tenants")).unwrap();
        f.write("defaults.json", &defaults_json());
        f.write("quotas.json", &quotas_json());
        f.write("tenants/thj.json", &thj_json());
        f
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, v: &Value) {
        std::fs::write(self.path(rel), serde_json::to_string_pretty(v).unwrap()).unwrap();
    }
    fn tenant(&self, id: &str, v: Value) {
        self.write(&format!("tenants/{id}.json"), &v);
    }
    fn load(&self, env: &[(&str, &str)]) -> Result<TenantRegistry, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TenantRegistry::load_with_env(self.dir.path(), move |k| env.get(k).cloned())
    }
    fn err(&self, env: &[(&str, &str)]) -> String {
        self.load(env).unwrap_err().to_string()
    }
}

fn acme(extra: Value) -> Value {
    let mut v = json!({"tenantId": "acme", "name": "Acme", "config": {"discordServerId": "42"}});
    layers::deep_merge(&mut v, extra);
    v
}
