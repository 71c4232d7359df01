//! Prompt templates read at run time from `{config_dir}/prompts/`: `system.md` (shared
//! instructions), one `{persona}.md` per persona, `summarize.md`, and `transform.json`
//! (output budgets). Files are re-read when their modification time or size changes, so a prompt
//! can be edited without a rebuild or restart; each template carries a fingerprint so cached
//! outputs of an older prompt become misses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

use onomancer_shared::Persona;

/// Budgets of a transform (`prompts/transform.json`; every field optional).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TransformSettings {
    /// `max_tokens` of one persona call.
    pub max_tokens: u32,
    /// Output tokens one persona typically uses (for dry-run estimates).
    pub expected_output_tokens: u64,
    /// Documents estimated above this many tokens are summarized section by section first.
    pub input_budget_tokens: u64,
    /// Largest section (in characters) sent to one summary call.
    pub section_max_chars: usize,
    /// `max_tokens` of one section summary.
    pub summary_max_tokens: u32,
    /// Section summaries run at once.
    pub summary_concurrency: usize,
}

impl Default for TransformSettings {
    fn default() -> Self {
        Self {
            max_tokens: 4096,
            expected_output_tokens: 2000,
            input_budget_tokens: 60_000,
            section_max_chars: 12_000,
            summary_max_tokens: 1500,
            summary_concurrency: 4,
        }
    }
}

/// Why a prompt could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No template file for the persona.
    #[error("no prompt template for persona {persona:?} (expected {path})")]
    UnknownPersona {
        /// The persona asked for.
        persona: String,
        /// Where its template should be.
        path: String,
    },
    /// The file exists but cannot be read.
    #[error("cannot read prompt file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `transform.json` is not valid.
    #[error("prompt settings {path} are invalid: {message}")]
    Settings {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Clone)]
struct Loaded {
    stamp: (Option<SystemTime>, u64),
    text: Arc<str>,
}

/// Reads prompt files and re-reads them when they change. Cheap to clone.
#[derive(Clone)]
pub struct PromptStore {
    dir: PathBuf,
    files: Arc<Mutex<HashMap<PathBuf, Loaded>>>,
}

impl PromptStore {
    /// Templates under `dir` (normally `{ONOMANCER_CONFIG_DIR}/prompts`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: Arc::default(),
        }
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self, name: &str) -> Result<Option<Arc<str>>, PromptError> {
        let path = self.dir.join(name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PromptError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let stamp = (meta.modified().ok(), meta.len());
        if let Some(l) = self.files.lock().expect("prompt cache lock").get(&path) {
            if l.stamp == stamp {
                return Ok(Some(l.text.clone()));
            }
        }
        let text: Arc<str> = std::fs::read_to_string(&path)
            .map_err(|source| PromptError::Io {
                path: path.display().to_string(),
                source,
            })?
            .into();
        self.files.lock().expect("prompt cache lock").insert(
            path,
            Loaded {
                stamp,
                text: text.clone(),
            },
        );
        Ok(Some(text))
    }

    fn required(&self, name: &str) -> Result<Arc<str>, PromptError> {
        self.read(name)?.ok_or_else(|| PromptError::Io {
            path: self.dir.join(name).display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        })
    }

    /// The shared instructions (`system.md`).
    pub fn system(&self) -> Result<Arc<str>, PromptError> {
        self.required("system.md")
    }

    /// The persona's instructions (`{persona}.md`).
    pub fn persona(&self, persona: &Persona) -> Result<Arc<str>, PromptError> {
        let name = format!("{persona}.md");
        self.read(&name)?
            .ok_or_else(|| PromptError::UnknownPersona {
                persona: persona.to_string(),
                path: self.dir.join(&name).display().to_string(),
            })
    }

    /// The section summary instructions (`summarize.md`).
    pub fn summarize(&self) -> Result<Arc<str>, PromptError> {
        self.required("summarize.md")
    }

    /// `transform.json`, or the defaults when the file is absent.
    pub fn settings(&self) -> Result<TransformSettings, PromptError> {
        match self.read("transform.json")? {
            None => Ok(TransformSettings::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| PromptError::Settings {
                path: self.dir.join("transform.json").display().to_string(),
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prompts_load() {
        let store = PromptStore::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/prompts"));
        for p in ["leadership", "product", "marketing", "devrel"] {
            let text = store.persona(&Persona::new(p)).unwrap();
            assert!(text.starts_with(&format!("Persona: {p}")), "{p}");
        }
        assert!(store.system().unwrap().contains("<document>"));
        assert!(!store.summarize().unwrap().is_empty());
        assert_eq!(store.settings().unwrap(), TransformSettings::default());
        let err = store.persona(&Persona::new("pirate")).unwrap_err();
        assert!(err.to_string().contains("pirate.md"), "{err}");
    }

    #[test]
    fn edited_files_are_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = PromptStore::new(dir.path());
        let path = dir.path().join("devrel.md");
        std::fs::write(&path, "v1").unwrap();
        assert_eq!(&*store.persona(&Persona::new("devrel")).unwrap(), "v1");
        // A different size is detected even when the mtime granularity hides the change.
        std::fs::write(&path, "version two").unwrap();
        assert_eq!(
            &*store.persona(&Persona::new("devrel")).unwrap(),
            "version two"
        );
    }
}
