//! The poster's configuration, nonces, and its errors as job errors.

use super::*;
use crate::job::JobError;

#[test]
fn proxy_origin_strips_the_api_path() {
    assert_eq!(
        proxy_origin("http://127.0.0.1:9/api/v10"),
        "http://127.0.0.1:9"
    );
    assert_eq!(
        proxy_origin("http://127.0.0.1:9/api/v10/"),
        "http://127.0.0.1:9"
    );
    assert_eq!(proxy_origin("http://127.0.0.1:9"), "http://127.0.0.1:9");
    assert_eq!(proxy_origin(DEFAULT_API_BASE), "https://discord.com");
}

#[test]
fn a_reclaimed_post_repeats_well_inside_discords_nonce_window() {
    // Worst case with the defaults: the entry is reclaimed after the claim-idle time, the
    // part's lease may still run for a whole lease, and the deferral adds its jitter.
    let config = DiscordConfig::new(SecretString::from("t"), 1);
    let queue = crate::queue::QueueConfig::default();
    let worst =
        queue.claim_idle + config.post_lease() + crate::queue::spread(config.post_lease(), 1.0);
    assert_eq!(config.post_lease(), PENDING_LEASE);
    assert!(
        worst <= Duration::from_secs(120),
        "{worst:?} against Discord's few minutes"
    );
}

#[test]
fn nonces_fit_discord_and_differ_per_part() {
    let t = TenantId::new("thj");
    let j = JobId::generate();
    let a = nonce_for(&t, &j, 0);
    assert_eq!(a.len(), 25);
    assert_ne!(a, nonce_for(&t, &j, 1));
    assert_eq!(a, nonce_for(&t, &j, 0));
}

#[test]
fn errors_map_to_job_errors() {
    let e: JobError = DiscordError::RateLimited {
        retry_after: Duration::from_millis(1500),
        global: false,
        scope: Some("user".into()),
    }
    .into();
    assert_eq!(
        e,
        JobError::Deferred {
            reason: "Discord rate limit (user): retry after 1.5s".into(),
            wait: Duration::from_millis(1500),
            upstream: true,
        }
    );
    let e: JobError = DiscordError::Throttled {
        wait: Duration::from_millis(700),
        why: "channel".into(),
    }
    .into();
    assert!(matches!(e, JobError::Deferred { wait, .. } if wait == Duration::from_millis(700)));
    let e: JobError = DiscordError::Busy {
        part: 1,
        wait: Duration::from_secs(3),
    }
    .into();
    assert!(
        matches!(e, JobError::Deferred { .. }),
        "a mid-post run is not a failure"
    );
    let e: JobError = DiscordError::Server {
        status: 502,
        retry_after: None,
    }
    .into();
    assert!(matches!(e, JobError::Retryable { .. }));
    let e: JobError = DiscordError::Refused {
        status: 401,
        detail: "x".into(),
        hint: "y",
    }
    .into();
    assert!(matches!(e, JobError::Terminal { .. }));
}

#[test]
fn the_call_timeout_and_the_limits_come_from_the_settings() {
    let settings = Settings::from_lookup(|k| match k {
        "DISCORD_BOT_TOKEN" => Some("t".into()),
        "DISCORD_APPLICATION_ID" => Some("42".into()),
        "DISCORD_TIMEOUT_SECONDS" => Some("2".into()),
        "ONOMANCER_CONFIG_DIR" => Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../config").into()),
        _ => None,
    })
    .unwrap();
    let defaults = crate::tenant::Defaults::load(&settings.config_dir).unwrap();
    let config = DiscordConfig::from_settings(&settings, &defaults.rate_limits).unwrap();
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!(config.post_lease(), Duration::from_secs(3));
    assert_eq!(
        config.limits,
        DiscordLimits::default(),
        "the shipped defaults.json"
    );
}
