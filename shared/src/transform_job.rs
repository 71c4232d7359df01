//! The `transform` job payload: written by the gateway (webhooks, Discord, REST), the CLI and the
//! Discord command handler, read by the transform worker. Msgpack with named fields; fields are
//! only added, never renamed, and unknown fields are ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::job::{Envelope, JobError, JobKind, JobPayload, Lane};
use crate::text::SharedText;

/// Where the document comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    /// Pasted text.
    Text {
        /// The document.
        text: String,
    },
    /// A link: Google Doc, GitHub file page, Discord attachment.
    Url {
        /// The link.
        url: String,
    },
    /// Files of a GitHub repository at a commit (documents touched by a push).
    GithubFiles {
        /// `org/repo`.
        repo: String,
        /// The pushed ref.
        git_ref: String,
        /// The commit to read at.
        sha: String,
        /// Document paths.
        paths: Vec<String>,
    },
    /// A Discord attachment.
    DiscordAttachment {
        /// CDN link.
        url: String,
        /// File name.
        filename: String,
        /// MIME type, when known.
        content_type: Option<String>,
    },
}

/// Who asked, so results go back the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Origin {
    /// `POST /v1/transforms` or the CLI: results only in the job status.
    Api,
    /// A GitHub push: results go to the repository's channel.
    GithubPush {
        /// `X-GitHub-Delivery`.
        delivery: String,
    },
    /// A Discord `/transform`: results edit the deferred reply, then follow-ups.
    Discord {
        /// Application id.
        application_id: String,
        /// Interaction token (15 minutes; never logged).
        token: String,
        /// Channel of the command.
        channel_id: Option<String>,
    },
}

/// `transform`: one document, one version per persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformJob {
    /// Payload version.
    pub v: u8,
    /// The document.
    pub source: DocumentSource,
    /// Personas; empty means the tenant's `defaultPersonas`.
    #[serde(default)]
    pub personas: Vec<String>,
    /// Product key (Drive folder `/tenants/{tenant}/Products/{product}/`).
    #[serde(default)]
    pub product: Option<String>,
    /// Who asked.
    pub origin: Origin,
    /// The requesting user (Discord user id or API key name), for usage records.
    #[serde(default)]
    pub user: Option<String>,
    /// Title for posts and documents (file name, link); derived from the source when absent.
    #[serde(default)]
    pub title: Option<String>,
}

impl JobPayload for TransformJob {
    const KIND: JobKind = JobKind::Transform;
    const LANE: Lane = Lane::Default;
}

/// Just the pasted text of a payload, borrowed from its bytes.
#[derive(Deserialize)]
struct PastedProbe<'a> {
    #[serde(borrow)]
    source: SourceProbe<'a>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SourceProbe<'a> {
    Text {
        #[serde(borrow)]
        text: Cow<'a, str>,
    },
    #[serde(other)]
    Other,
}

impl TransformJob {
    /// Decodes a `transform` job's payload for a run (refusing, terminally, a job of another
    /// kind or an invalid payload). A pasted document comes back apart, as a view into the
    /// job's payload (no copy: the worker keeps the payload for the job's whole run anyway, and
    /// the document is sent from there in every persona's request); its `text` in the job is
    /// left empty.
    pub fn decode_shared(job: &Envelope) -> Result<(TransformJob, Option<SharedText>), JobError> {
        job.expect_kind(&Self::KIND)?;
        Self::decode_payload(&job.payload)
            .map_err(|e| JobError::terminal(format!("payload of {} is not valid: {e}", job.kind)))
    }

    fn decode_payload(
        payload: &bytes::Bytes,
    ) -> Result<(TransformJob, Option<SharedText>), rmp_serde::decode::Error> {
        let mut job: TransformJob = rmp_serde::from_slice(payload)?;
        let DocumentSource::Text { text } = &mut job.source else {
            return Ok((job, None));
        };
        // The decode above copied the text; that copy is dropped here and the document read
        // again in place (a second pass that skips every other field).
        let copied = std::mem::take(text);
        let probe: PastedProbe<'_> = rmp_serde::from_slice(payload)?;
        let shared = match probe.source {
            SourceProbe::Text {
                text: Cow::Borrowed(t),
            } => SharedText::from_utf8(payload.slice_ref(t.as_bytes()))
                .expect("a borrowed str is UTF-8"),
            _ => SharedText::from(copied),
        };
        Ok((job, Some(shared)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, NewJob, TenantId};

    fn job(source: DocumentSource) -> TransformJob {
        TransformJob {
            v: 1,
            source,
            personas: vec!["product".into()],
            product: None,
            origin: Origin::Api,
            user: Some("u".into()),
            title: Some("t".into()),
        }
    }

    fn envelope(job: &TransformJob) -> Envelope {
        NewJob::new(TenantId::new("thj"), job).into_envelope(JobId::generate(), 0)
    }

    #[test]
    fn a_pasted_document_is_read_in_place() {
        let text = "# PRD\n\nThe «checkout» must answer fast.\n".repeat(50);
        let env = envelope(&job(DocumentSource::Text { text: text.clone() }));
        let (decoded, pasted) = TransformJob::decode_shared(&env).unwrap();
        let pasted = pasted.unwrap();
        assert_eq!(pasted, *text.as_str());
        let range = env.payload.as_ptr_range();
        assert!(
            range.contains(&pasted.parts()[0].as_ptr()),
            "a view into the payload"
        );
        assert_eq!(
            decoded,
            job(DocumentSource::Text {
                text: String::new()
            })
        );

        let url = job(DocumentSource::Url {
            url: "https://example.com/doc".into(),
        });
        assert_eq!(
            TransformJob::decode_shared(&envelope(&url)).unwrap(),
            (url, None)
        );
        let mut garbage = envelope(&job(DocumentSource::Url { url: "x".into() }));
        garbage.payload = bytes::Bytes::from_static(b"\xc1");
        let err = TransformJob::decode_shared(&garbage).unwrap_err();
        assert!(matches!(err, JobError::Terminal { .. }), "{err:?}");
    }

    #[test]
    fn a_job_of_another_kind_is_not_read_as_a_transform() {
        let mut env = envelope(&job(DocumentSource::Url { url: "x".into() }));
        env.kind = JobKind::Digest;
        let err = TransformJob::decode_shared(&env).unwrap_err();
        assert_eq!(
            err,
            JobError::terminal(format!(
                "job {} is a digest job, not transform: its payload is not read as one",
                env.id
            ))
        );
    }
}
