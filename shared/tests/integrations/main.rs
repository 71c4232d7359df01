//! Integration tests of `onomancer_shared::integrations` against the testkit's Discord and Google
//! fakes, a local file server, and the machine's real Redis (idempotency markers).

mod discord;
mod discord_limits;
mod fetch;
mod fetch_limits;
mod google;
