//! The planner: turns a CI failure into a fix plan (which fixer applies, which files, why) and the plan into
//! a unified diff made by real edits in a throwaway worktree.
//!
//! The fixer is chosen from the diagnosis of the job's log (crates/cilog: tool and category from the log's
//! content): the ecosystem's own tool (`ruff`, `black`, `cargo fmt`, `cargo clippy --fix`, `prettier`,
//! `eslint --fix`, `gofmt`) run in the sandbox (crates/sandbox) on the files the failure names; the
//! whitespace rule where the log reports trailing whitespace (or, without a log, a job named like lint); the
//! LLM planner (crates/llm), when configured, for what no fixer covers. Layout: `fixers.rs` (the choice,
//! commands, scope and pins, pure), `exec.rs` (running them in the sandbox), `rules.rs` (the whitespace rule,
//! pure), `config.rs`, `error.rs` (the one mapping into gRPC statuses), `service.rs` (the `sre.v1.Planner`
//! gRPC edge), `main.rs`.

pub mod config;
pub mod error;
pub mod exec;
pub mod fixers;
pub mod rules;
pub mod service;

pub use config::Config;
pub use service::{PlannerService, build};
