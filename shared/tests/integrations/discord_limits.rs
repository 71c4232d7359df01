//! The Discord poster against the Discord fake enforcing Discord's limits: the fleet-wide guard
//! keeps posts inside them without calling Discord, a 429 defers and pauses what it names (the
//! channel, or every worker's posts for a global 429), and a bucket Discord reports empty is not
//! posted to again before it resets. Two posters on one Redis namespace stand for two workers.

use std::time::Duration;

use onomancer_shared::integrations::discord::{
    DiscordConfig, DiscordError, DiscordLimits, DiscordPoster, PostTarget,
};
use onomancer_shared::queue::RateLimit;
use onomancer_shared::{JobError, JobId, TenantId};
use onomancer_testkit::discord_fake::{DiscordFake, FakeLimits};
use onomancer_testkit::TestRedis;
use secrecy::SecretString;

const APP_ID: u64 = 1_234_567_890_123_456_789;
const CHANNEL: u64 = 1_111_111_111_111_111_111;
const OTHER_CHANNEL: u64 = 1_111_111_111_111_111_112;

fn worker(fake: &DiscordFake, redis: &TestRedis, limits: DiscordLimits) -> DiscordPoster {
    let mut config = DiscordConfig::new(SecretString::from("test-bot-token"), APP_ID);
    config.api_base = Some(fake.api_base());
    config.limits = limits;
    DiscordPoster::new(config, redis.conn.clone(), redis.keys.clone()).expect("poster")
}

/// Limits the guard will not reach in these tests, so only Discord's answers act.
fn generous() -> DiscordLimits {
    let many = RateLimit::new(1000, Duration::from_secs(1));
    DiscordLimits {
        global: many,
        channel: many,
    }
}

async fn post(poster: &DiscordPoster, channel: u64) -> Result<Vec<u64>, DiscordError> {
    poster
        .post_job_output(
            &TenantId::new("thj"),
            &JobId::generate(),
            &PostTarget::Channel {
                channel_id: channel,
            },
            "✅ build passed",
        )
        .await
        .map(|p| p.message_ids)
}

fn deferral(err: DiscordError) -> (Duration, String) {
    match JobError::from(err) {
        JobError::Deferred { wait, reason, .. } => (wait, reason),
        other => panic!("expected a deferral, got {other:?}"),
    }
}

#[tokio::test]
async fn two_workers_share_a_channels_five_posts_and_the_sixth_waits_without_calling_discord() {
    // A Discord that never says its bucket is empty: the guard alone holds the sixth back.
    let fake = DiscordFake::start_with(FakeLimits::unlimited()).await;
    let redis = TestRedis::new().await;
    let (a, b) = (
        worker(&fake, &redis, DiscordLimits::default()),
        worker(&fake, &redis, DiscordLimits::default()),
    );

    for i in 0..5 {
        let w = if i % 2 == 0 { &a } else { &b };
        post(w, CHANNEL)
            .await
            .expect("within the channel's 5 per 5 s");
    }
    let (wait, reason) = deferral(post(&b, CHANNEL).await.unwrap_err());

    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    assert!(
        reason.starts_with("Discord held back for every worker (channel):"),
        "{reason}"
    );
    assert_eq!(fake.requests().len(), 5, "the sixth never reached Discord");
    assert_eq!(fake.rate_limited().total(), 0);
    // Another channel is not held back.
    post(&a, OTHER_CHANNEL).await.unwrap();
}

#[tokio::test]
async fn a_global_429_pauses_every_workers_posts_for_its_wait() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let (a, b) = (
        worker(&fake, &redis, generous()),
        worker(&fake, &redis, generous()),
    );
    fake.script_rate_limit(3.0, true);

    let err = post(&a, CHANNEL).await.unwrap_err();
    assert!(matches!(
        err,
        DiscordError::RateLimited { global: true, .. }
    ));
    let (wait, _) = deferral(err);
    assert_eq!(wait, Duration::from_secs(3));

    // The other worker, another channel: not sent, deferred for what is left of the pause.
    let (wait, reason) = deferral(post(&b, OTHER_CHANNEL).await.unwrap_err());
    assert!(
        wait > Duration::from_secs(2) && wait <= Duration::from_secs(3),
        "{wait:?}"
    );
    assert!(reason.contains("paused: 429, scope global"), "{reason}");
    assert_eq!(fake.requests().len(), 1, "one 429, then silence");
    assert_eq!(fake.rate_limited().total(), 1);
}

#[tokio::test]
async fn a_channels_429_pauses_that_channel_only() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let (a, b) = (
        worker(&fake, &redis, generous()),
        worker(&fake, &redis, generous()),
    );
    fake.script_rate_limit(2.0, false);

    let (wait, _) = deferral(post(&a, CHANNEL).await.unwrap_err());
    assert_eq!(wait, Duration::from_secs(2));
    let (wait, reason) = deferral(post(&b, CHANNEL).await.unwrap_err());
    assert!(wait <= Duration::from_secs(2), "{wait:?}");
    assert!(reason.contains("channel paused"), "{reason}");
    post(&b, OTHER_CHANNEL).await.expect("other channels post");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_bucket_discord_reports_empty_is_not_posted_to_before_it_resets() {
    // Discord's bucket is smaller than what this guard allows: its headers still stop the
    // third post before it is sent, and no 429 ever comes back.
    let fake = DiscordFake::start_with(FakeLimits {
        channel_posts: 2,
        channel_window: Duration::from_millis(400),
        ..FakeLimits::discord()
    })
    .await;
    let redis = TestRedis::new().await;
    let a = worker(&fake, &redis, generous());

    post(&a, CHANNEL).await.unwrap();
    post(&a, CHANNEL).await.unwrap();
    let (wait, reason) = deferral(post(&a, CHANNEL).await.unwrap_err());
    assert!(wait <= Duration::from_millis(400), "{wait:?}");
    assert!(reason.contains("bucket empty"), "{reason}");

    tokio::time::sleep(wait).await;
    post(&a, CHANNEL).await.expect("the bucket has reset");
    assert_eq!(fake.channel_messages(CHANNEL).len(), 3);
    assert_eq!(fake.rate_limited().total(), 0);
}

#[tokio::test]
async fn limits_come_from_defaults_json_with_discords_as_the_fallback() {
    assert_eq!(
        DiscordLimits::from_rate_limits(&Default::default()),
        DiscordLimits::default(),
        "none configured: Discord's documented limits"
    );
    let limits = serde_json::from_str(
        r#"{"discord": {"requests": 40, "perSeconds": 1},
            "discordChannel": {"requests": 4, "perSeconds": 6}}"#,
    )
    .unwrap();
    let l = DiscordLimits::from_rate_limits(&limits);
    assert_eq!((l.global.requests, l.global.per_seconds()), (40, 1));
    assert_eq!((l.channel.requests, l.channel.per_seconds()), (4, 6));
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let defaults = onomancer_shared::tenant::Defaults::load(&shipped).unwrap();
    assert_eq!(
        DiscordLimits::from_rate_limits(&defaults.rate_limits),
        DiscordLimits::default()
    );
}
