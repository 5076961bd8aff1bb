//! The planner: turns a CI failure into a fix plan (which rule applies, which files, why) and the plan into
//! a unified diff made by real edits in a throwaway worktree.
//!
//! Rule-based by default ([`rules`]). Layout: `rules.rs` (detection and edits, pure), `config.rs`,
//! `error.rs` (the one mapping into gRPC statuses), `service.rs` (the `sre.v1.Planner` gRPC edge), `main.rs`.

pub mod config;
pub mod error;
pub mod rules;
pub mod service;

pub use config::Config;
pub use service::{PlannerService, build};
