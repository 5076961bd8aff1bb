//! The planner: turns a CI failure into a fix plan (which rule applies, which files, why) and the plan into
//! a unified diff made by real edits in a throwaway worktree.
//!
//! Rule-based by default ([`rules`]). Layout: `rules.rs` (detection and edits, pure), `service.rs` (the
//! `sre.v1.Planner` gRPC edge), `main.rs` (process scaffold from sre-service-kit).

pub mod rules;
pub mod service;

pub use service::{PlannerService, build};
