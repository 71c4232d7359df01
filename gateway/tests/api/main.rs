//! The gateway's integration tests: the real `Application` on port 0 against the machine's
//! Redis, each test in its own key namespace with its own temp config.

mod cli;
mod discord;
mod github;
mod helpers;
mod json_errors;
mod linear;
mod ops;
mod raw_http;
mod refused_bodies;
mod register;
mod rest;
mod slow_clients;
mod unavailable;
mod ws_gateway;
