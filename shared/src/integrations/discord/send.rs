//! One Discord call: build with serenity, send, and classify the raw response (status, rate-limit
//! headers, JSON error body) into a message id or a [`DiscordError`].

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Serialize;
use serenity::http::Request;

use super::error::ErrorBody;
use super::guard::{channel_scope, PAUSE_SCOPE};
use super::{DiscordError, DiscordPoster, MessageRef};

impl DiscordPoster {
    /// Sends `req` with the JSON `body` and returns the created or edited message's id. For a
    /// post to `channel`, what Discord says about its limits is shared with every worker: a
    /// global 429 pauses all channel posts, a 429 of the channel or its last slot used
    /// (`X-RateLimit-Remaining: 0`) pauses that channel until its bucket resets.
    pub(super) async fn send(
        &self,
        req: Request<'_>,
        body: &impl Serialize,
        channel: Option<u64>,
    ) -> Result<u64, DiscordError> {
        let bytes = serde_json::to_vec(body).map_err(|e| DiscordError::Request(e.to_string()))?;
        let builder = req
            .body(Some(bytes))
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            // serenity's errors here name the URL at most as a parse error, never the token.
            .map_err(|e| DiscordError::Request(e.to_string()))?;
        // `without_url`: interaction tokens are in the path and must not reach logs.
        let response = builder
            .send()
            .await
            .map_err(|e| DiscordError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| DiscordError::Transport(e.without_url().to_string()))?;
        if status.is_success() {
            if let Some(channel) = channel {
                self.note_empty_bucket(channel, &headers).await;
            }
            let message: MessageRef = serde_json::from_slice(&body)
                .map_err(|e| DiscordError::BadResponse(e.to_string()))?;
            return Ok(message.id.get());
        }
        let err = classify(status.as_u16(), &headers, &body);
        if let DiscordError::RateLimited {
            retry_after,
            global,
            scope,
        } = &err
        {
            let pause = self.guard.pause();
            let why = format!("429, scope {}", scope.as_deref().unwrap_or("unknown"));
            if *global {
                pause.pause_or_log(PAUSE_SCOPE, *retry_after, &why).await;
            } else if let Some(channel) = channel {
                pause
                    .pause_or_log(&channel_scope(channel), *retry_after, &why)
                    .await;
            }
        }
        Err(err)
    }

    /// After a successful post: when Discord says the channel's bucket is empty, no worker posts
    /// there again before it resets (what keeps 429s rare when our window and Discord's are not
    /// aligned).
    async fn note_empty_bucket(&self, channel: u64, headers: &HeaderMap) {
        let empty = header_f64(headers, "x-ratelimit-remaining") == Some(0.0);
        let reset = header_f64(headers, "x-ratelimit-reset-after")
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0);
        if let (true, Some(reset)) = (empty, reset) {
            self.guard
                .pause()
                .pause_or_log(
                    &channel_scope(channel),
                    Duration::from_secs_f64(reset),
                    "bucket empty",
                )
                .await;
        }
    }
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Turns an error response into a [`DiscordError`].
pub(super) fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> DiscordError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail = match parsed.code {
        Some(code) if !parsed.message.is_empty() => format!("{}, code {code}", parsed.message),
        Some(code) => format!("code {code}"),
        None if !parsed.message.is_empty() => parsed.message.clone(),
        None => "no error body".to_owned(),
    };
    match status {
        429 => {
            let seconds = parsed
                .retry_after
                .or_else(|| header_f64(headers, "x-ratelimit-reset-after"))
                .or_else(|| header_f64(headers, "retry-after"))
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(1.0);
            let scope = headers
                .get("x-ratelimit-scope")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_ascii_lowercase());
            let global = parsed.global.unwrap_or(false)
                || headers
                    .get("x-ratelimit-global")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
                || scope.as_deref() == Some("global");
            DiscordError::RateLimited {
                retry_after: Duration::from_secs_f64(seconds),
                global,
                scope,
            }
        }
        401 => DiscordError::Refused {
            status,
            detail,
            hint: "the interaction token has expired (they last 15 minutes) or the bot token is invalid",
        },
        403 => DiscordError::Refused {
            status,
            detail,
            hint: "the bot lacks permission to post there (check its role in the server and the channel)",
        },
        404 => DiscordError::Refused {
            status,
            detail,
            hint: "the interaction expired (15 minutes) or the channel or message no longer exists",
        },
        500..=599 => DiscordError::Server {
            status,
            retry_after: header_f64(headers, "retry-after")
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
                .map(Duration::from_secs_f64),
        },
        _ => DiscordError::Rejected { status, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_wait_comes_from_the_body_first() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "9".parse().unwrap());
        let e = classify(
            429,
            &h,
            br#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#,
        );
        assert!(
            matches!(e, DiscordError::RateLimited { retry_after, global: false, .. } if retry_after == Duration::from_millis(250))
        );
        let e = classify(429, &h, b"<html>cloudflare</html>");
        assert!(
            matches!(e, DiscordError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(9))
        );
    }

    #[test]
    fn a_global_limit_is_recognised_by_body_header_or_scope() {
        let limited = |h: &[(&'static str, &str)], body: &[u8]| {
            let mut headers = HeaderMap::new();
            for (k, v) in h {
                headers.insert(*k, v.parse().unwrap());
            }
            match classify(429, &headers, body) {
                DiscordError::RateLimited { global, scope, .. } => (global, scope),
                other => panic!("{other:?}"),
            }
        };
        let body = br#"{"message":"You are being rate limited.","retry_after":0.4,"global":true}"#;
        assert_eq!(limited(&[], body), (true, None));
        assert_eq!(
            limited(&[("x-ratelimit-global", "true")], b"{}"),
            (true, None)
        );
        assert_eq!(
            limited(&[("x-ratelimit-scope", "global")], b"{}"),
            (true, Some("global".into()))
        );
        assert_eq!(
            limited(&[("x-ratelimit-scope", "shared")], b"{}"),
            (false, Some("shared".into()))
        );
    }

    #[test]
    fn an_unavailable_discord_that_names_a_wait_is_a_deferral() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        let e = classify(503, &h, b"upstream connect error");
        assert!(matches!(
            crate::job::JobError::from(e),
            crate::job::JobError::Deferred { wait, .. } if wait == Duration::from_secs(3)
        ));
        let e = classify(502, &HeaderMap::new(), b"");
        assert!(matches!(
            crate::job::JobError::from(e),
            crate::job::JobError::Retryable { .. }
        ));
    }

    #[test]
    fn expired_tokens_are_explained() {
        let e = classify(
            401,
            &HeaderMap::new(),
            br#"{"message":"Invalid Webhook Token","code":50027}"#,
        );
        assert_eq!(
            e.to_string(),
            "Discord answered 401 (Invalid Webhook Token, code 50027): the interaction token has expired (they last 15 minutes) or the bot token is invalid"
        );
    }
}
