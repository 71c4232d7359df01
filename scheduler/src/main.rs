//! The `onomancer-scheduler` binary.

fn main() {}
