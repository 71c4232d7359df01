//! The `onomancer-gateway` binary.

fn main() {}
