//! The policy service: decides whether a fix plan or a patch may go ahead, computes a danger score from the
//! actual diff, and labels the result `safe` or `needs-review`.
//!
//! Layout: `rules.rs` (the checks and the score, pure), `events.rs` (violations and score: logged and
//! counted together), `config.rs`, `error.rs` (the one mapping into gRPC statuses), `service.rs` (the
//! `sre.v1.Policy` gRPC edge), `main.rs`.

pub mod config;
pub mod error;
pub mod events;
pub mod rules;
pub mod service;

pub use config::Config;
pub use service::{PolicyService, build};
