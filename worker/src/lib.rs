//! The worker role.
