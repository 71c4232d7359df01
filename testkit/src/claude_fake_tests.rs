//! Tests of the Claude fake itself.
