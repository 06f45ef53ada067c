//! Where a run is, and where it stops. The steps under the lock enter [`Stages`] as
//! they begin: the stage a failure happened in is read from it, for the webhook's
//! message, instead of being passed from step to step. [`Stop`] is the one value that
//! ends a run early: a dry run after the plan, `deploy diff` after the review.

use std::cell::Cell;

use crate::ui::output::OutputFormat;

/// The step a run is in, for the failure message and the JSON document's `error.step`:
/// steps 3-10 of "What a run does" (docs/internals.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Step {
    /// The checks before anything is touched (step 3).
    #[default]
    Preflight,
    /// The review of the roll's terraform plan, and the confirmation (step 4).
    Review,
    /// Taking (or waiting for) the deploy lock (step 5).
    Lock,
    /// Planning the roll again after waiting for the lock.
    Replan,
    BuildAndPush,
    Spas,
    Roll,
    Verify,
    Health,
    /// Releasing the lock at the end.
    Unlock,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Review => "review and confirm",
            Step::Lock => "lock",
            Step::Replan => "plan (after waiting for the lock)",
            Step::BuildAndPush => "build and push",
            Step::Spas => "SPAs",
            Step::Roll => "roll (terraform apply)",
            Step::Verify => "verify (ECS)",
            Step::Health => "health checks",
            Step::Unlock => "releasing the deploy lock",
        }
    }
}

/// The stage the run is in: each step under the lock enters it as it begins; the
/// observers read it when the run ends.
#[derive(Debug, Default)]
pub(super) struct Stages {
    current: Cell<Step>,
}

impl Stages {
    pub fn enter(&self, step: Step) {
        self.current.set(step);
    }

    pub fn current(&self) -> Step {
        self.current.get()
    }
}

/// Where a run stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// `--dry-run`: the plan on stdout, nothing else (no confirmation, no preflight).
    AfterPlan,
    /// `deploy diff`: the terraform half of preflight, and the review on stdout.
    AfterReview,
    /// A run to its end.
    Never,
}

impl Stop {
    pub fn of(dry_run: bool, diff_only: bool) -> Self {
        match (dry_run, diff_only) {
            (true, _) => Stop::AfterPlan,
            (false, true) => Stop::AfterReview,
            (false, false) => Stop::Never,
        }
    }

    /// Whether the run's summary is printed: what was done, once the run began (with
    /// `--output json` always); never after `deploy diff`, whose review is its output.
    pub fn summarises(self, began: bool, output: OutputFormat) -> bool {
        self == Stop::Never && (began || output == OutputFormat::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_stops_after_the_plan_after_the_review_or_never() {
        let table = [
            (false, false, Stop::Never),
            (true, false, Stop::AfterPlan),
            (false, true, Stop::AfterReview),
            (true, true, Stop::AfterPlan),
        ];
        for (dry_run, diff_only, stop) in table {
            assert_eq!(Stop::of(dry_run, diff_only), stop, "{dry_run} {diff_only}");
        }
    }

    #[test]
    fn the_summary_follows_a_run_that_began_or_asked_for_json() {
        use OutputFormat::{Json, Text};
        let table = [
            (Stop::Never, false, Text, false),
            (Stop::Never, true, Text, true),
            (Stop::Never, false, Json, true),
            (Stop::AfterReview, false, Json, false),
            (Stop::AfterReview, true, Text, false),
        ];
        for (stop, began, output, printed) in table {
            assert_eq!(
                stop.summarises(began, output),
                printed,
                "{stop:?} {began} {output:?}"
            );
        }
    }

    #[test]
    fn the_stage_is_the_last_one_entered() {
        let stages = Stages::default();
        assert_eq!(stages.current(), Step::Preflight);
        for step in [
            Step::Review,
            Step::Lock,
            Step::Replan,
            Step::BuildAndPush,
            Step::Spas,
            Step::Roll,
            Step::Health,
        ] {
            stages.enter(step);
            assert_eq!(stages.current(), step);
        }
        assert_eq!(Step::Health.name(), "health checks");
        assert_eq!(Step::Unlock.name(), "releasing the deploy lock");
    }
}
