//! The Discord poster against the Discord fake: splitting, edit-original + follow-ups, one message
//! per part however often a job runs, nonces, and error mapping.

use std::time::Duration;

use onomancer_shared::integrations::discord::{
    nonce_for, DiscordConfig, DiscordError, DiscordPoster, PostMarkers, PostTarget,
};
use onomancer_shared::{JobError, JobId, TenantId};
use onomancer_testkit::discord_fake::{DiscordFake, FakeLimits, INTERACTION_CHANNEL_ID};
use onomancer_testkit::TestRedis;
use secrecy::SecretString;

const APP_ID: u64 = 1_234_567_890_123_456_789;
const CHANNEL: u64 = 1_111_111_111_111_111_111;

fn poster(fake: &DiscordFake, redis: &TestRedis) -> DiscordPoster {
    let mut config = DiscordConfig::new(SecretString::from("test-bot-token"), APP_ID);
    config.api_base = Some(fake.api_base());
    DiscordPoster::new(config, redis.conn.clone(), redis.keys.clone()).expect("poster")
}

fn interaction(token: &str) -> PostTarget {
    PostTarget::Interaction {
        token: SecretString::from(token.to_owned()),
    }
}

/// About 4,500 characters in paragraphs: three Discord messages.
fn long_output() -> String {
    (0..30)
        .map(|i| {
            format!(
                "Paragraph {i}: {}",
                "the launch plan is on track. ".repeat(5).trim_end()
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[tokio::test]
async fn long_output_edits_the_original_then_sends_follow_ups() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let (tenant, job) = (TenantId::new("thj"), JobId::generate());
    let text = long_output();

    let out = poster
        .post_job_output(&tenant, &job, &interaction("tok-1"), &text)
        .await
        .unwrap();

    assert_eq!(out.newly_posted, 3);
    let messages = fake.interaction_messages("tok-1");
    assert_eq!(messages.len(), 3);
    assert!(messages[0].original, "part 0 is the deferred reply");
    assert!(!messages[1].original && !messages[2].original);
    assert!(messages.iter().all(|m| m.content.chars().count() <= 2000));
    assert_eq!(
        out.message_ids,
        messages.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    let joined: String = messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(joined, text, "nothing lost or reordered");

    let requests = fake.requests();
    assert_eq!(requests[0].method, "PATCH");
    assert_eq!(
        requests[0].path,
        format!("/api/v10/webhooks/{APP_ID}/tok-1/messages/@original")
    );
    for r in &requests[1..] {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", &*format!("/api/v10/webhooks/{APP_ID}/tok-1"))
        );
    }
    assert!(requests
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bot test-bot-token")));
    // Model output never pings anyone.
    assert_eq!(
        requests[0].body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn posting_a_jobs_output_twice_shows_each_part_once() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let (tenant, job) = (TenantId::new("thj"), JobId::generate());
    let text = long_output();

    let first = poster
        .post_job_output(&tenant, &job, &interaction("tok-2"), &text)
        .await
        .unwrap();
    let second = poster
        .post_job_output(&tenant, &job, &interaction("tok-2"), &text)
        .await
        .unwrap();

    assert_eq!((second.newly_posted, second.already_posted), (0, 3));
    assert_eq!(second.message_ids, first.message_ids);
    assert_eq!(fake.messages().len(), 3);
    assert_eq!(fake.requests().len(), 3, "the re-run made no Discord call");
    let marker = PostMarkers::new(redis.conn.clone(), redis.keys.clone()).key(&tenant, &job, 1);
    assert!(marker.ends_with(&format!("thj:posted:{job}:1")), "{marker}");
}

#[tokio::test]
async fn channel_posts_are_deduplicated_by_nonce_even_when_the_marker_was_lost() {
    // Six posts to one channel at once would meet its 5-per-5-s bucket; a real re-run comes
    // after the claim-idle time. This test is about nonces only.
    let fake = DiscordFake::start_with(FakeLimits::unlimited()).await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let (tenant, job) = (TenantId::new("thj"), JobId::generate());
    let target = PostTarget::Channel {
        channel_id: CHANNEL,
    };

    let first = poster
        .post_job_output(&tenant, &job, &target, &long_output())
        .await
        .unwrap();
    // A worker killed after Discord answered but before the markers were written.
    redis.cleanup().await;
    let second = poster
        .post_job_output(&tenant, &job, &target, &long_output())
        .await
        .unwrap();

    assert_eq!(
        second.newly_posted, 3,
        "the markers were gone, so Discord was asked again"
    );
    assert_eq!(
        second.message_ids, first.message_ids,
        "and returned the same messages"
    );
    let messages = fake.channel_messages(CHANNEL);
    assert_eq!(messages.len(), 3);
    let request = &fake.requests()[0];
    assert_eq!(
        request.path,
        format!("/api/v10/channels/{CHANNEL}/messages")
    );
    assert_eq!(request.body["nonce"], nonce_for(&tenant, &job, 0));
    assert_eq!(request.body["enforce_nonce"], true);
    assert_eq!(messages[0].channel_id, CHANNEL);
    assert_ne!(CHANNEL, INTERACTION_CHANNEL_ID);
}

#[tokio::test]
async fn rate_limit_defers_for_discords_wait_and_the_retry_posts_once() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let (tenant, job) = (TenantId::new("thj"), JobId::generate());
    fake.script_rate_limit(2.5, false);

    let err = poster
        .post_job_output(&tenant, &job, &interaction("tok-3"), "short answer")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscordError::RateLimited { global: false, .. }),
        "{err}"
    );
    assert_eq!(
        JobError::from(err),
        JobError::Deferred {
            reason: "Discord rate limit (user): retry after 2.5s".into(),
            wait: Duration::from_millis(2500),
            upstream: true,
        },
        "a 429 spends no attempt"
    );
    assert_eq!(fake.rate_limited().scripted, 1);

    // The lease was released: the retry posts at once, and only once.
    poster
        .post_job_output(&tenant, &job, &interaction("tok-3"), "short answer")
        .await
        .unwrap();
    assert_eq!(fake.interaction_messages("tok-3").len(), 1);
}

#[tokio::test]
async fn expired_interaction_token_is_terminal_with_a_clear_message() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    fake.expire_interaction("tok-old");

    let err = poster
        .post_job_output(
            &TenantId::new("thj"),
            &JobId::generate(),
            &interaction("tok-old"),
            "late",
        )
        .await
        .unwrap_err();
    let JobError::Terminal { message } = JobError::from(err) else {
        panic!("an expired token must not be retried");
    };
    assert_eq!(message, "Discord answered 401 (Invalid Webhook Token, code 50027): the interaction token has expired (they last 15 minutes) or the bot token is invalid");
    assert!(
        !message.contains("tok-old"),
        "tokens never appear in errors"
    );
}

#[tokio::test]
async fn server_errors_are_retryable_and_other_4xx_terminal() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let target = PostTarget::Channel {
        channel_id: CHANNEL,
    };
    let tenant = TenantId::new("thj");

    fake.script_error(502, 0, "Bad Gateway");
    let err = poster
        .post_job_output(&tenant, &JobId::generate(), &target, "x")
        .await
        .unwrap_err();
    assert!(matches!(
        JobError::from(err),
        JobError::Retryable {
            retry_after: None,
            ..
        }
    ));

    fake.script_error(403, 50013, "Missing Permissions");
    let err = poster
        .post_job_output(&tenant, &JobId::generate(), &target, "x")
        .await
        .unwrap_err();
    assert_eq!(
        JobError::from(err),
        JobError::terminal("Discord answered 403 (Missing Permissions, code 50013): the bot lacks permission to post there (check its role in the server and the channel)")
    );
}

#[tokio::test]
async fn a_part_being_posted_by_another_run_is_deferred_until_its_lease_ends() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let (tenant, job) = (TenantId::new("thj"), JobId::generate());
    let markers = PostMarkers::new(redis.conn.clone(), redis.keys.clone());
    // The other run holds the lease (the default one, 30 s: the poster's 20 s timeout + 10 s).
    markers.claim(&tenant, &job, 0).await.unwrap();

    let err = poster
        .post_job_output(
            &tenant,
            &job,
            &PostTarget::Channel {
                channel_id: CHANNEL,
            },
            "x",
        )
        .await
        .unwrap_err();
    let JobError::Deferred { wait, .. } = JobError::from(err) else {
        panic!("busy is deferred for the lease's remaining time");
    };
    assert!(
        wait <= Duration::from_secs(30) && wait > Duration::from_secs(20),
        "{wait:?}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn serenitys_own_calls_reach_the_fake_and_decode_its_messages() {
    use serenity::builder::CreateInteractionResponseFollowup;

    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);

    // serenity's high-level method goes through the proxy and parses the fake's message object.
    let message = poster
        .http()
        .create_followup_message(
            "tok-5",
            &CreateInteractionResponseFollowup::new().content("from serenity"),
            vec![],
        )
        .await
        .expect("the fake's message JSON is a valid serenity Message");
    assert_eq!(message.content, "from serenity");
    assert_eq!(message.channel_id.get(), INTERACTION_CHANNEL_ID);
    assert_eq!(fake.interaction_messages("tok-5")[0].id, message.id.get());
}

#[tokio::test]
async fn mixed_prose_and_code_is_accepted_by_discord_part_by_part() {
    let fake = DiscordFake::start().await;
    let redis = TestRedis::new().await;
    let poster = poster(&fake, &redis);
    let code = format!(
        "```rust\n{}```",
        "let jar = honey.fill(); // keep going\n".repeat(80)
    );
    let text = format!(
        "# Devrel notes\n\n{}\n\n{code}\n\nThat is all, ünïcødé 🍯 included.",
        "Intro line.\n".repeat(150)
    );

    let out = poster
        .post_job_output(
            &TenantId::new("thj"),
            &JobId::generate(),
            &interaction("tok-4"),
            &text,
        )
        .await
        .unwrap();

    let messages = fake.interaction_messages("tok-4");
    assert_eq!(out.newly_posted, messages.len());
    assert!(messages.len() >= 3, "{}", messages.len());
    for m in &messages {
        assert!(m.content.chars().count() <= 2000);
        assert_eq!(
            m.content.matches("```").count() % 2,
            0,
            "fences balanced in every part"
        );
    }
    assert!(messages.last().unwrap().content.ends_with("🍯 included."));
}
