//! The `onomancer-worker` binary.

fn main() {}
