//! The `onomancer` command.

fn main() {}
