//! From what ran to the verdict: the one place that says when a fix counts as proven. Pure.
//!
//! - the failing step fails without the patch and passes with it (and the test command, if any, passes):
//!   `reproduced_and_fixed`;
//! - it passes without the patch too, or no step could be found (then the test command, configured or
//!   detected, is all that ran): `not_reproduced` — the fix is unproven, `passed` says whether what ran with
//!   the patch passed;
//! - with the patch the step or the test command fails: `still_failing` (also when the step passed without
//!   the patch and fails with it: the patch breaks it);
//! - any run past the time budget: `timeout`; the step cannot run in the sandbox: `refused`; the patch does
//!   not apply: `patch_failed`.

use sre_domain::ValidationResult;
use sre_proto::CommandRun;

/// What the validation found out.
#[derive(Clone, Copy, Debug)]
pub enum Evidence<'a> {
    PatchFailed,
    Refused {
        reason: &'a str,
    },
    /// No step to re-run; `test` is the test command with the patch, when there was one.
    NoStep {
        reason: &'a str,
        test: Option<&'a CommandRun>,
    },
    /// The step without the patch, with it (not run when `before` timed out), and the test command with the
    /// patch (run only when `after` passed and one was configured).
    Step {
        before: &'a CommandRun,
        after: Option<&'a CommandRun>,
        test: Option<&'a CommandRun>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub result: ValidationResult,
    pub reproduced: bool,
    pub passed: bool,
    pub reason: String,
}

fn exit(run: &CommandRun) -> String {
    match run.exit_code {
        127 => "exit 127: command not found in the sandbox".to_owned(),
        code if code > 128 && code < 160 => format!("exit {code}: killed by signal {}", code - 128),
        code => format!("exit {code}"),
    }
}

fn timed_out(what: &str, run: &CommandRun) -> Decision {
    Decision {
        result: ValidationResult::Timeout,
        reproduced: false,
        passed: false,
        reason: format!("{what} timed out after {:.1} s", run.duration_ms as f64 / 1000.0),
    }
}

pub fn decide(evidence: Evidence<'_>) -> Decision {
    let d = |result, reproduced, passed, reason: String| Decision { result, reproduced, passed, reason };
    match evidence {
        Evidence::PatchFailed => {
            d(ValidationResult::PatchFailed, false, false, "the patch does not apply at head_sha".to_owned())
        }
        Evidence::Refused { reason } => {
            d(ValidationResult::Refused, false, false, format!("the failing step cannot run in the sandbox: {reason}"))
        }
        Evidence::NoStep { reason, test: None } => d(
            ValidationResult::NotReproduced,
            false,
            false,
            format!("no step to re-run ({reason}) and no test command: nothing proves the fix"),
        ),
        Evidence::NoStep { reason, test: Some(t) } if t.timed_out => {
            let mut dec = timed_out("the test command with the patch", t);
            dec.reason = format!("no step to re-run ({reason}); {}", dec.reason);
            dec
        }
        Evidence::NoStep { reason, test: Some(t) } if t.exit_code != 0 => d(
            ValidationResult::StillFailing,
            false,
            false,
            format!("no step to re-run ({reason}); the test command fails with the patch ({})", exit(t)),
        ),
        Evidence::NoStep { reason, test: Some(_) } => d(
            ValidationResult::NotReproduced,
            false,
            true,
            format!(
                "no step to re-run ({reason}); the test command passes with the patch, the failure was not reproduced"
            ),
        ),
        Evidence::Step { before, .. } if before.timed_out => timed_out("the failing step without the patch", before),
        Evidence::Step { before, after, test } => {
            let reproduced = before.exit_code != 0;
            let Some(after) = after else {
                return d(
                    ValidationResult::Timeout,
                    reproduced,
                    false,
                    "no time left to run the step with the patch".into(),
                );
            };
            if after.timed_out {
                let mut dec = timed_out("the failing step with the patch", after);
                dec.reproduced = reproduced;
                return dec;
            }
            if after.exit_code != 0 {
                let reason = if reproduced {
                    format!(
                        "the step fails without the patch ({}) and still fails with it ({})",
                        exit(before),
                        exit(after)
                    )
                } else {
                    format!("the step passes without the patch and fails with it ({})", exit(after))
                };
                return d(ValidationResult::StillFailing, reproduced, false, reason);
            }
            if let Some(t) = test {
                if t.timed_out {
                    let mut dec = timed_out("the test command with the patch", t);
                    dec.reproduced = reproduced;
                    return dec;
                }
                if t.exit_code != 0 {
                    return d(
                        ValidationResult::StillFailing,
                        reproduced,
                        false,
                        format!("the step passes with the patch but the test command fails ({})", exit(t)),
                    );
                }
            }
            let tests = if test.is_some() { ", and the test command passes" } else { "" };
            if reproduced {
                d(
                    ValidationResult::ReproducedAndFixed,
                    true,
                    true,
                    format!("the step fails without the patch ({}) and passes with it{tests}", exit(before)),
                )
            } else {
                d(
                    ValidationResult::NotReproduced,
                    false,
                    true,
                    format!("the step passes without the patch too{tests}: the failure was not reproduced"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(exit_code: i32, timed_out: bool) -> CommandRun {
        CommandRun { exit_code, timed_out, duration_ms: 1500, ..Default::default() }
    }

    #[test]
    fn only_fail_then_pass_proves_a_fix() {
        use ValidationResult::*;
        let (fail, pass, slow, missing) = (ran(1, false), ran(0, false), ran(137, true), ran(127, false));
        let step = |b, a, t| decide(Evidence::Step { before: b, after: a, test: t });
        let r = step(&fail, Some(&pass), None);
        assert_eq!((r.result, r.reproduced, r.passed), (ReproducedAndFixed, true, true));
        assert_eq!(r.reason, "the step fails without the patch (exit 1) and passes with it");
        assert_eq!(step(&fail, Some(&pass), Some(&pass)).result, ReproducedAndFixed);
        let r = step(&fail, Some(&pass), Some(&fail));
        assert_eq!((r.result, r.reproduced, r.passed), (StillFailing, true, false));
        let r = step(&pass, Some(&pass), None);
        assert_eq!((r.result, r.reproduced, r.passed), (NotReproduced, false, true));
        let r = step(&fail, Some(&fail), None);
        assert_eq!((r.result, r.reproduced, r.passed), (StillFailing, true, false));
        assert_eq!(step(&pass, Some(&fail), None).result, StillFailing);
        let r = step(&missing, Some(&missing), None);
        assert!(r.reason.contains("command not found in the sandbox"), "{}", r.reason);
        let r = step(&slow, None, None);
        assert_eq!(
            (r.result, r.reason.as_str()),
            (Timeout, "the failing step without the patch timed out after 1.5 s")
        );
        assert_eq!(step(&fail, Some(&slow), None).result, Timeout);
        assert_eq!(step(&fail, Some(&pass), Some(&slow)).result, Timeout);
        assert_eq!(step(&fail, None, None).result, Timeout);
    }

    #[test]
    fn without_a_step_nothing_is_reproduced() {
        use ValidationResult::*;
        let (fail, pass) = (ran(2, false), ran(0, false));
        let r = decide(Evidence::NoStep { reason: "no workflow", test: Some(&pass) });
        assert_eq!((r.result, r.reproduced, r.passed), (NotReproduced, false, true));
        let r = decide(Evidence::NoStep { reason: "no workflow", test: None });
        assert_eq!((r.result, r.passed), (NotReproduced, false));
        assert_eq!(decide(Evidence::NoStep { reason: "x", test: Some(&fail) }).result, StillFailing);
        assert_eq!(decide(Evidence::Refused { reason: "it needs secrets" }).result, Refused);
        assert_eq!(decide(Evidence::PatchFailed).result, PatchFailed);
    }
}
