//! The guarded HTTP GET: per hop, check scheme and host, resolve and check every address, connect
//! only to those addresses (reqwest `resolve_to_addrs`, no proxy), follow redirects by hand with
//! the same checks, stream the body up to the cap, accept only text.

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use url::Url;

use super::guard::{forbidden_reason, resolve};
use secrecy::ExposeSecret;

use super::{FetchError, FetchedDocument, Fetcher, GitHubAuth, SourceKind};

/// Redirects followed at most (each one re-checked).
const MAX_REDIRECTS: usize = 3;
/// Bytes examined to tell text from binary when the type does not say.
const SNIFF_BYTES: usize = 8192;

/// Whether a content type is text (`Ok(true)`), unknown and to be sniffed (`Ok(false)`), or
/// binary (`Err`).
fn classify_content_type(content_type: Option<&str>) -> Result<bool, String> {
    let Some(ct) = content_type else {
        return Ok(false);
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/octet-stream" | "binary/octet-stream" => Ok(false),
        // The contents API's raw media type says nothing about the file: sniff it.
        e if e.starts_with("application/vnd.github.raw") => Ok(false),
        e if e.starts_with("text/") => Ok(true),
        "application/json"
        | "application/xml"
        | "application/yaml"
        | "application/x-yaml"
        | "application/toml"
        | "application/markdown"
        | "application/x-markdown" => Ok(true),
        e => Err(format!(
            "content type {e} is not a text document (use Markdown, plain text, or a Google Doc)"
        )),
    }
}

/// When an error answer is a rate limit, how long to wait: a 429, a 503 with `Retry-After`, or a
/// 403 that GitHub marks as a rate limit (`Retry-After`, or `x-ratelimit-remaining: 0`). The
/// wait is `Retry-After`, else until `x-ratelimit-reset` (epoch seconds) but at least a minute,
/// as GitHub asks, else a minute.
pub(super) fn rate_limit_wait(
    status: u16,
    headers: &reqwest::header::HeaderMap,
) -> Option<std::time::Duration> {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let num = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let retry_after = num("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    let exhausted = num("x-ratelimit-remaining") == Some(0.0);
    let limited = match status {
        429 => true,
        503 => retry_after.is_some(),
        403 => retry_after.is_some() || exhausted,
        _ => false,
    };
    if !limited {
        return None;
    }
    const MINUTE: Duration = Duration::from_secs(60);
    Some(retry_after.unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        num("x-ratelimit-reset")
            .map(|reset| Duration::from_secs_f64((reset - now).clamp(0.0, 86_400.0)).max(MINUTE))
            .unwrap_or(MINUTE)
    }))
}

impl Fetcher {
    /// GETs `target` for a `kind` source under the policy's time budget.
    pub(super) async fn get(
        &self,
        kind: SourceKind,
        target: Url,
        origin: String,
        auth: Option<&GitHubAuth>,
    ) -> Result<FetchedDocument, FetchError> {
        let budget = self.policy.timeout;
        tokio::time::timeout(budget, self.get_within_budget(kind, target, origin, auth))
            .await
            .map_err(|_| FetchError::Timeout(budget))?
    }

    async fn get_within_budget(
        &self,
        kind: SourceKind,
        mut target: Url,
        origin: String,
        auth: Option<&GitHubAuth>,
    ) -> Result<FetchedDocument, FetchError> {
        for hop in 0..=MAX_REDIRECTS {
            if let Err(FetchError::Refused(why)) = self.check_link(kind, &target) {
                return Err(FetchError::Refused(if hop == 0 {
                    why
                } else {
                    why.replacen("refused: ", "refused: redirect to ", 1)
                }));
            }
            let host = target.host_str().unwrap_or("").to_owned();
            let port = target.port_or_known_default().unwrap_or(443);
            let addrs = resolve(&host, port)
                .await
                .map_err(|e| FetchError::Network(format!("cannot resolve {host}: {e}")))?;
            if !self.policy.allow_private {
                if let Some((ip, reason)) = addrs
                    .iter()
                    .find_map(|a| forbidden_reason(a.ip()).map(|r| (a.ip(), r)))
                {
                    return Err(FetchError::Refused(format!("refused: {ip} is {reason}")));
                }
            }
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .use_rustls_tls()
                // As before reqwest could speak HTTP/2 (enabled for Claude's client).
                .http1_only()
                .user_agent("onomancer-fetch/1");
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if bare.parse::<std::net::IpAddr>().is_err() {
                // Pin: the connection goes to the addresses checked above, whatever DNS says later.
                builder = builder.resolve_to_addrs(bare, &addrs);
            }
            let client = builder
                .build()
                .map_err(|e| FetchError::Network(e.to_string()))?;
            let mut request = client.get(target.clone());
            request = match auth {
                // The token goes to the first hop only (the contents API), never after a redirect.
                Some(auth) if hop == 0 => request
                    .header(ACCEPT, "application/vnd.github.raw+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .bearer_auth(auth.token.expose_secret()),
                _ => request.header(ACCEPT, "text/markdown, text/plain;q=0.9, */*;q=0.1"),
            };
            let response = request
                .send()
                .await
                .map_err(|e| FetchError::Network(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| target.join(loc).ok())
                    .ok_or_else(|| FetchError::Status {
                        status: status.as_u16(),
                        origin: host.clone(),
                    })?;
                target = next;
                continue;
            }
            if !status.is_success() {
                if let Some(wait) = rate_limit_wait(status.as_u16(), response.headers()) {
                    return Err(FetchError::RateLimited {
                        status: status.as_u16(),
                        origin: host,
                        wait,
                    });
                }
                return Err(FetchError::Status {
                    status: status.as_u16(),
                    origin: host,
                });
            }
            return self.read_text(response, origin).await;
        }
        Err(FetchError::Refused(format!(
            "refused: more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn read_text(
        &self,
        mut response: reqwest::Response,
        origin: String,
    ) -> Result<FetchedDocument, FetchError> {
        let max = self.policy.max_bytes;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let known_text =
            classify_content_type(content_type.as_deref()).map_err(FetchError::NotText)?;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > max) {
            return Err(FetchError::TooLarge { limit: max });
        }
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(max));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Network(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > max {
                return Err(FetchError::TooLarge { limit: max });
            }
            bytes.extend_from_slice(&chunk);
        }
        if !known_text && bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) {
            return Err(FetchError::NotText(
                "the file is binary, not a text document (use Markdown, plain text, or a Google Doc)"
                    .into(),
            ));
        }
        let size = bytes.len();
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let (text, note) = match std::str::from_utf8(body) {
            Ok(s) => (s.to_owned(), None),
            Err(_) => (
                String::from_utf8_lossy(body).into_owned(),
                Some(
                    "the document is not valid UTF-8: unreadable bytes were replaced with \u{FFFD}"
                        .to_owned(),
                ),
            ),
        };
        Ok(FetchedDocument {
            text,
            origin,
            content_type,
            bytes: size,
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::classify_content_type;

    #[test]
    fn content_types() {
        assert_eq!(
            classify_content_type(Some("text/markdown; charset=utf-8")),
            Ok(true)
        );
        assert_eq!(classify_content_type(Some("application/json")), Ok(true));
        assert_eq!(
            classify_content_type(Some("application/octet-stream")),
            Ok(false)
        );
        assert_eq!(classify_content_type(None), Ok(false));
        assert_eq!(
            classify_content_type(Some("image/png")),
            Err("content type image/png is not a text document (use Markdown, plain text, or a Google Doc)".into())
        );
    }
}
