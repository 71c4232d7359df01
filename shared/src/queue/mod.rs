//! The Redis Streams job queue.
