//! A document to read, parsed from what a user typed: pasted text, a Discord attachment link, a
//! GitHub file link, or a Google Doc link. Parsing is purely syntactic (a link is classified by
//! its shape); whether its host may be fetched is the [`super::FetchPolicy`]'s call, so a
//! look-alike link on another host is refused with a message naming the host. What a job says
//! about its document is the `transform` payload's [`crate::transform_job::DocumentSource`]; the
//! worker parses that source's links into a [`ParsedSource`] to read them.

use url::Url;

/// The kinds of linked sources (each has its own allowed hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// `https://cdn.discordapp.com/attachments/{channel}/{id}/{name}?ex=..&is=..&hm=..`
    DiscordAttachment,
    /// `https://github.com/{owner}/{repo}/blob/{ref}/{path}` (or its raw form).
    GitHubFile,
    /// `https://docs.google.com/document/d/{id}/...`
    GoogleDoc,
}

impl SourceKind {
    /// How messages name the kind ("not allowed for Discord attachments").
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::DiscordAttachment => "Discord attachments",
            SourceKind::GitHubFile => "GitHub files",
            SourceKind::GoogleDoc => "Google Docs",
        }
    }
}

/// A document to read, classified by the shape of what the user gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedSource {
    /// Text given inline.
    Pasted(String),
    /// A file attached to a Discord message.
    DiscordAttachment {
        /// The attachment link as given.
        url: Url,
    },
    /// A file in a GitHub repository at a ref.
    GitHubFile {
        /// The link as given (`github.com/.../blob/...` or `raw.githubusercontent.com/...`).
        url: Url,
        /// Repository owner.
        owner: String,
        /// Repository name.
        repo: String,
        /// Branch, tag or commit (the first segment after `blob/`; refs containing `/` are
        /// ambiguous in GitHub links and read as their first segment).
        git_ref: String,
        /// Path of the file in the repository (still percent-encoded as in the link).
        path: String,
    },
    /// A Google Doc.
    GoogleDoc {
        /// The link as given.
        url: Url,
        /// The document id.
        id: String,
    },
}

/// Why a user's input is not a document source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

const SUPPORTED: &str = "use a Discord attachment, a GitHub file link (github.com/{owner}/{repo}/blob/{ref}/{path}), a Google Doc link (docs.google.com/document/d/{id}), or paste the text";

fn segments(url: &Url) -> Vec<&str> {
    url.path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default()
}

fn is_safe_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['\\', '?', '#'])
}

impl ParsedSource {
    /// Classifies user input: a single `http(s)://` link must be one of the supported link
    /// shapes; anything else that is not blank is pasted text.
    pub fn parse(input: &str) -> Result<Self, SourceError> {
        let trimmed = input.trim();
        // Discord users wrap links in <...> to suppress previews.
        let trimmed = match trimmed.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            Some(inner) if !inner.contains(char::is_whitespace) => inner,
            _ => trimmed,
        };
        if trimmed.is_empty() {
            return Err(SourceError(format!("the document is empty: {SUPPORTED}")));
        }
        let looks_like_link = !trimmed.contains(char::is_whitespace)
            && trimmed.split_once("://").is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            });
        if !looks_like_link {
            return Ok(ParsedSource::Pasted(input.to_owned()));
        }
        let url = Url::parse(trimmed).map_err(|e| {
            SourceError(format!(
                "{trimmed:?} is not a valid link ({e}): {SUPPORTED}"
            ))
        })?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(SourceError(format!(
                "refused: {} links are not supported: {SUPPORTED}",
                url.scheme()
            )));
        }
        if url.username() != "" || url.password().is_some() {
            return Err(SourceError(
                "refused: links with credentials are not accepted".into(),
            ));
        }
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let segs = segments(&url);
        match segs.as_slice() {
            ["attachments", channel, id, name, ..]
                if channel.bytes().all(|b| b.is_ascii_digit())
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && !name.is_empty() =>
            {
                Ok(ParsedSource::DiscordAttachment { url })
            }
            [owner, repo, "blob", git_ref, path @ ..] if !path.is_empty() => {
                Self::github(url.clone(), owner, repo, git_ref, path)
            }
            [owner, repo, git_ref, path @ ..]
                if host == "raw.githubusercontent.com" && !path.is_empty() =>
            {
                Self::github(url.clone(), owner, repo, git_ref, path)
            }
            ["document", "d", id, ..] => {
                if id.len() < 10
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(SourceError(format!("{id:?} is not a Google Doc id")));
                }
                Ok(ParsedSource::GoogleDoc {
                    id: (*id).to_owned(),
                    url,
                })
            }
            _ => Err(SourceError(format!(
                "{} is not a supported document link: {SUPPORTED}",
                url.as_str()
            ))),
        }
    }

    fn github(
        url: Url,
        owner: &str,
        repo: &str,
        git_ref: &str,
        path: &[&str],
    ) -> Result<Self, SourceError> {
        if ![owner, repo, git_ref].iter().all(|s| is_safe_segment(s))
            || !path.iter().all(|s| is_safe_segment(s))
        {
            return Err(SourceError(format!(
                "{} is not a valid GitHub file link",
                url.as_str()
            )));
        }
        Ok(ParsedSource::GitHubFile {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            git_ref: git_ref.to_owned(),
            path: path.join("/"),
            url,
        })
    }

    /// The kind of a linked source (`None` for pasted text).
    pub fn kind(&self) -> Option<SourceKind> {
        match self {
            ParsedSource::Pasted(_) => None,
            ParsedSource::DiscordAttachment { .. } => Some(SourceKind::DiscordAttachment),
            ParsedSource::GitHubFile { .. } => Some(SourceKind::GitHubFile),
            ParsedSource::GoogleDoc { .. } => Some(SourceKind::GoogleDoc),
        }
    }

    /// The link as the user gave it.
    pub fn url(&self) -> Option<&Url> {
        match self {
            ParsedSource::Pasted(_) => None,
            ParsedSource::DiscordAttachment { url }
            | ParsedSource::GitHubFile { url, .. }
            | ParsedSource::GoogleDoc { url, .. } => Some(url),
        }
    }

    /// For a GitHub file, its contents API URL:
    /// `https://api.github.com/repos/{owner}/{repo}/contents/{path}?ref={ref}`.
    pub fn github_contents_url(&self) -> Option<Url> {
        match self {
            ParsedSource::GitHubFile {
                owner,
                repo,
                git_ref,
                path,
                ..
            } => {
                let mut url = Url::parse(&format!(
                    "https://api.github.com/repos/{owner}/{repo}/contents/{path}"
                ))
                .ok()?;
                url.query_pairs_mut().append_pair("ref", git_ref);
                Some(url)
            }
            _ => None,
        }
    }

    /// For a GitHub file, its raw content URL:
    /// `https://raw.githubusercontent.com/{owner}/{repo}/{ref}/{path}`.
    pub fn github_raw_url(&self) -> Option<Url> {
        match self {
            ParsedSource::GitHubFile {
                owner,
                repo,
                git_ref,
                path,
                ..
            } => Url::parse(&format!(
                "https://raw.githubusercontent.com/{owner}/{repo}/{git_ref}/{path}"
            ))
            .ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_blob_links_become_raw_links() {
        let s = ParsedSource::parse(
            "https://github.com/0xHoneyJar/onomancer/blob/main/docs/PRD%20v2.md",
        )
        .unwrap();
        assert_eq!(s.kind(), Some(SourceKind::GitHubFile));
        assert_eq!(
            s.github_raw_url().unwrap().as_str(),
            "https://raw.githubusercontent.com/0xHoneyJar/onomancer/main/docs/PRD%20v2.md"
        );
        assert_eq!(
            s.github_contents_url().unwrap().as_str(),
            "https://api.github.com/repos/0xHoneyJar/onomancer/contents/docs/PRD%20v2.md?ref=main"
        );
        let raw = ParsedSource::parse(
            "https://raw.githubusercontent.com/0xHoneyJar/onomancer/v1.2/README.md",
        )
        .unwrap();
        assert_eq!(
            raw.github_raw_url().unwrap().as_str(),
            "https://raw.githubusercontent.com/0xHoneyJar/onomancer/v1.2/README.md"
        );
    }

    #[test]
    fn discord_and_google_links_are_recognised() {
        let d = ParsedSource::parse(
            "https://cdn.discordapp.com/attachments/1100/1200/prd.md?ex=6700&is=66ff&hm=abcd",
        )
        .unwrap();
        assert_eq!(d.kind(), Some(SourceKind::DiscordAttachment));
        let g = ParsedSource::parse(
            "<https://docs.google.com/document/d/1AbCdEfGhIjKlMnOp_qrs-TUV/edit?tab=t.0>",
        )
        .unwrap();
        assert_eq!(
            g,
            ParsedSource::GoogleDoc {
                url: Url::parse(
                    "https://docs.google.com/document/d/1AbCdEfGhIjKlMnOp_qrs-TUV/edit?tab=t.0"
                )
                .unwrap(),
                id: "1AbCdEfGhIjKlMnOp_qrs-TUV".into()
            }
        );
    }

    #[test]
    fn text_is_pasted_and_other_links_are_refused() {
        assert_eq!(
            ParsedSource::parse("# PRD\nWe will ship.").unwrap(),
            ParsedSource::Pasted("# PRD\nWe will ship.".into())
        );
        let e = ParsedSource::parse("https://example.com/prd.md").unwrap_err();
        assert!(
            e.0.starts_with("https://example.com/prd.md is not a supported document link"),
            "{e}"
        );
        let e = ParsedSource::parse("file:///etc/passwd").unwrap_err();
        assert!(
            e.0.starts_with("refused: file links are not supported"),
            "{e}"
        );
        assert!(ParsedSource::parse("   ").is_err());
        let e = ParsedSource::parse("https://github.com/a/b/blob/main/../../x").unwrap_err();
        assert!(
            e.0.contains("not a supported") || e.0.contains("not a valid"),
            "{e}"
        );
    }
}
