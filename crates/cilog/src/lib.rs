//! Failure context and diagnosis from failed CI job logs.
//!
//! - [`normalize`]: bytes to readable lines (GitHub Actions timestamps, ANSI escapes, Travis markers and
//!   progress-bar carriage returns removed), streaming and bounded;
//! - [`FailureContext::from_log`]: the failing step, its command and exit code, and the few log lines that
//!   explain the failure (the first error's block, the step's end, further error blocks within a budget),
//!   with their `file:line` references;
//! - [`bound_log`] / [`LogBounder`]: a huge log cut to a size to store, keeping its head, its error lines and
//!   its tail;
//! - [`classify`]: the [`Diagnosis`] (category, language, tool, one-line summary, autofixable) from the
//!   context's content, never from step or job names.
//!
//! Pure: no I/O. How it works and how well (the LogChunks benchmark) is in docs/diagnosis.md.

pub mod bound;
pub mod classify;
pub mod extract;
pub mod filerefs;
pub mod markers;
pub mod normalize;

pub use bound::{LogBounder, MAX_STORED_LOG_BYTES, bound_log};
pub use classify::{Diagnosis, classify};
pub use extract::{FailureContext, LogFormat, Options, Window};
pub use filerefs::FileRef;
