//! Transform tests against real Redis and SQLite, with Claude and Discord faked at the HTTP
//! level (`onomancer_testkit`).

mod engine_tests;
mod handler_tests;
mod paid_tests;
mod queue_tests;
pub(crate) mod support;
