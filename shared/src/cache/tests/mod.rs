//! Tests of the tiered cache against the machine's real Redis, SQLite and PostgreSQL.

mod flight_tests;
mod gdocs_tests;
mod support;
mod swr_tests;
mod tier_tests;
