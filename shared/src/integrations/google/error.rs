//! Google's error answers, classified into what a job should do: retry later (quota, 5xx),
//! stop with an explanation (no Shared Drive access, document not found), or stop (bad request).

use std::time::Duration;

use serde::Deserialize;

use crate::job::JobError;

/// Why a Google call failed. Messages never contain tokens or keys.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// The key file or PEM is unusable.
    #[error("Google service account key: {0}")]
    Credentials(String),
    /// The token endpoint refused the grant (`invalid_grant`: wrong key, clock skew, disabled account).
    #[error("Google refused the service account's token grant ({error}: {description})")]
    TokenRefused {
        /// OAuth error code.
        error: String,
        /// Google's explanation.
        description: String,
    },
    /// 429, or 403 with `userRateLimitExceeded` / `rateLimitExceeded`: the job is deferred (no
    /// attempt spent) for `retry_after`, else [`QUOTA_WAIT`], spread by the queue.
    #[error("Google quota exceeded ({reason}); retry with backoff")]
    RateLimited {
        /// Google's `reason`.
        reason: String,
        /// `Retry-After`, when Google sent one.
        retry_after: Option<Duration>,
    },
    /// Not sent: this service account's calls are paused for every worker (a quota answer).
    #[error("Google calls of this service account are paused for every worker for {:.1}s more ({reason})", wait.as_secs_f64())]
    Paused {
        /// Time left.
        wait: Duration,
        /// What Google said.
        reason: String,
    },
    /// The service account has no storage or no access to the tenant's Shared Drive folder.
    #[error("service accounts own no Drive storage: share a Shared Drive with {email} and set folderIds.root to a folder in it (Google said: {detail})")]
    NoSharedDrive {
        /// The service account to share with.
        email: String,
        /// Google's message.
        detail: String,
    },
    /// A file or document that does not exist or is not shared with the service account.
    #[error("Google Drive: {detail} (is it shared with {email}?)")]
    NotFound {
        /// The service account that looked.
        email: String,
        /// Google's message.
        detail: String,
    },
    /// Content over Google's 10 MB export limit (or ours when reading).
    #[error("the document is larger than the {limit_bytes}-byte export limit")]
    TooLarge {
        /// The limit.
        limit_bytes: usize,
    },
    /// Another client error.
    #[error("Google API answered {status} ({reason}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Google's `reason`.
        reason: String,
        /// Google's message.
        message: String,
    },
    /// 5xx from Google.
    #[error("Google server error {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// Connection failure or timeout.
    #[error("Google unreachable: {0}")]
    Transport(String),
    /// A 2xx whose body is not what the API documents.
    #[error("unexpected Google response: {0}")]
    BadResponse(String),
}

/// How long a quota answer without `Retry-After` defers the job and pauses the service account
/// (Google's quotas are per minute; the queue adds up to as much again as jitter).
pub const QUOTA_WAIT: Duration = Duration::from_secs(5);

impl From<GoogleError> for JobError {
    fn from(e: GoogleError) -> Self {
        let message = e.to_string();
        match e {
            GoogleError::RateLimited { retry_after, .. } => {
                JobError::upstream_deferred(retry_after.unwrap_or(QUOTA_WAIT), message)
            }
            GoogleError::Paused { wait, .. } => JobError::deferred(wait, message),
            GoogleError::Server { .. } | GoogleError::Transport(_) => JobError::retryable(message),
            GoogleError::Credentials(_)
            | GoogleError::TokenRefused { .. }
            | GoogleError::NoSharedDrive { .. }
            | GoogleError::NotFound { .. }
            | GoogleError::TooLarge { .. }
            | GoogleError::Api { .. }
            | GoogleError::BadResponse(_) => JobError::terminal(message),
        }
    }
}

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    error: ErrorBody,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize, Default)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

/// Classifies an error response.
pub(super) async fn from_response(response: reqwest::Response, email: &str) -> GoogleError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    classify(status, retry_after, &body, email)
}

/// Classifies status + body (separate for tests).
pub(super) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    email: &str,
) -> GoogleError {
    let parsed: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let err = parsed.error;
    let reason = err
        .errors
        .first()
        .map(|e| e.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or(err.status);
    let message = err.message;
    let no_drive = reason == "storageQuotaExceeded"
        || reason == "teamDriveMembershipRequired"
        || message.contains("does not have sufficient permissions")
        || message.contains("Service Accounts do not have storage quota");
    match status {
        429 => GoogleError::RateLimited {
            reason: if reason.is_empty() {
                "RESOURCE_EXHAUSTED".into()
            } else {
                reason
            },
            retry_after,
        },
        403 if matches!(
            reason.as_str(),
            "userRateLimitExceeded" | "rateLimitExceeded"
        ) =>
        {
            GoogleError::RateLimited {
                reason,
                retry_after,
            }
        }
        403 if reason == "exportSizeLimitExceeded" => GoogleError::TooLarge {
            limit_bytes: super::EXPORT_LIMIT_BYTES,
        },
        403 | 404 if no_drive => GoogleError::NoSharedDrive {
            email: email.to_owned(),
            detail: message,
        },
        404 => GoogleError::NotFound {
            email: email.to_owned(),
            detail: message,
        },
        500..=599 => GoogleError::Server { status },
        _ => GoogleError::Api {
            status,
            reason,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "usageLimits", "reason": reason, "message": message}]}}),
        )
        .unwrap()
    }

    #[test]
    fn quota_errors_defer_the_job() {
        let e = classify(
            403,
            None,
            &body(403, "userRateLimitExceeded", "User rate limit exceeded."),
            "sa@x",
        );
        assert!(matches!(JobError::from(e), JobError::Deferred { wait, .. } if wait == QUOTA_WAIT));
        let e = classify(
            403,
            None,
            &body(403, "rateLimitExceeded", "Rate limit exceeded."),
            "sa@x",
        );
        assert!(matches!(JobError::from(e), JobError::Deferred { .. }));
        let e = classify(429, Some(Duration::from_secs(7)), b"{}", "sa@x");
        assert!(
            matches!(JobError::from(e), JobError::Deferred { wait, .. } if wait == Duration::from_secs(7))
        );
        // A plain 403 is not a quota.
        let e = classify(403, None, &body(403, "forbidden", "no"), "sa@x");
        assert!(matches!(JobError::from(e), JobError::Terminal { .. }));
    }

    #[test]
    fn missing_shared_drive_is_explained() {
        let e = classify(
            403,
            None,
            &body(
                403,
                "storageQuotaExceeded",
                "The user's Drive storage quota has been exceeded.",
            ),
            "bot@proj.iam.gserviceaccount.com",
        );
        let JobError::Terminal { message } = JobError::from(e) else {
            panic!("terminal")
        };
        assert!(message.starts_with("service accounts own no Drive storage: share a Shared Drive with bot@proj.iam.gserviceaccount.com and set folderIds.root to a folder in it"), "{message}");
    }
}
