//! The gateway's integration tests: the real `Application` on port 0 against the machine's
//! Redis, each test in its own key namespace with its own temp config.

mod cli;
mod discord;
mod github;
mod helpers;
mod linear;
mod ops;
mod register;
mod rest;
mod unavailable;
mod ws_gateway;
