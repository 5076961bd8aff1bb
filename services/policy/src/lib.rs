//! The policy service: decides whether a fix plan or a patch may go ahead, computes a danger score from the
//! actual diff, and labels the result `safe` or `needs-review`.
//!
//! Layout: `rules.rs` (the checks and the score, pure), `metrics.rs` (violations and score families),
//! `service.rs` (the `sre.v1.Policy` gRPC edge).

pub mod metrics;
pub mod rules;
pub mod service;

pub use service::{PolicyService, build};
