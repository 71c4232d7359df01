//! Transforms: one document becomes one version per persona (leadership, product, marketing,
//! devrel), written by Claude through the tiered content-addressed cache, with the document
//! shared as a prompt-cached prefix, long documents summarized section by section first, usage
//! recorded per call, and a dry run that estimates without calling Claude.

pub mod dry_run;
pub mod engine;
pub mod progress;
pub mod prompts;
pub mod summarize;
pub mod wiring;

pub use dry_run::{dry_run, DryRunPersona, DryRunReport};
pub use engine::{PersonaOutcome, ProgressSink, RunContext, TransformEngine, TransformRun};
pub use onomancer_shared::transform_job::{DocumentSource, Origin, TransformJob};
pub use prompts::{PromptStore, TransformSettings};

#[cfg(test)]
pub(crate) mod tests;
