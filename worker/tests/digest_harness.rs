//! Compiles and tests the digest handler (`src/handlers/digest.rs`) against the worker library
//! until `pub mod digest;` is wired into `src/handlers/mod.rs`; the module tree mirrors the
//! library's so the same paths resolve. Delete this file when that line is added (the tests then
//! run as the library's own).

#[path = "../src/handlers/digest.rs"]
pub mod digest;

mod handlers {
    pub use onomancer_worker::handlers::notify;
}

mod transform {
    pub use onomancer_worker::transform::*;
}
