//! What a failed roll leads to: ECS asked to roll back the deployments that still bake,
//! then the automatic restore, the reconcile, or nothing (`restore` does them). The
//! choice is a pure decision over the failure's stage and what ECS did.

use anyhow::Result;

use super::ledger::Before;
use super::restore::natively_rolled_back;
use super::run::{Ready, Run};
use super::stages::Step;
use crate::error::Interrupted;
use crate::report::RunReport;

/// What a failed roll leads to, once ECS was asked to roll back what still bakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recovery {
    /// The failure stands: the apply failed (nothing of this run is known to run), the
    /// run was interrupted, or no restore was asked for.
    Nothing,
    /// `--rollback-on-failure`: what this run changed goes back to what ran before.
    Restore,
    /// ECS rolled services back by itself: terraform is told what runs.
    Reconcile,
}

impl Recovery {
    /// After a roll that failed in `step`: a restore when asked for and ECS rolled
    /// nothing back itself, a reconcile when ECS did; never after a failed apply or an
    /// interruption.
    pub fn after(step: Step, interrupted: bool, asked: bool, ecs_rolled_back: bool) -> Self {
        let verified = matches!(step, Step::Verify | Step::Health);
        match (verified && !interrupted, ecs_rolled_back) {
            (false, _) => Recovery::Nothing,
            (true, true) => Recovery::Reconcile,
            (true, false) if asked => Recovery::Restore,
            (true, false) => Recovery::Nothing,
        }
    }
}

/// Whether ECS is asked first to roll back the deployments that still bake: a failed
/// health check (not an interruption) while ECS may still be shifting traffic.
pub(super) fn asks_ecs_first(step: Step, interrupted: bool) -> bool {
    step == Step::Health && !interrupted
}

impl Run<'_> {
    /// After a failed roll: ECS asked to roll back what still bakes, then the restore
    /// or the reconcile the failure calls for ([`Recovery::after`]), timed into the
    /// report. Ends the run with `failure` and what was done.
    pub(super) async fn recover(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
        failure: anyhow::Error,
    ) -> Result<()> {
        let step = self.stages.current();
        let failure = match asks_ecs_first(step, failure.is::<Interrupted>()) {
            true => self.roll_back_natively(ready, report, failure).await,
            false => failure,
        };
        let ecs_rolled_back = !natively_rolled_back(report).is_empty();
        let recovery = Recovery::after(
            step,
            failure.is::<Interrupted>(),
            self.rollback_on_failure(),
            ecs_rolled_back,
        );
        let started = std::time::Instant::now();
        let (outcome, stage) = match recovery {
            Recovery::Nothing => return Err(failure),
            Recovery::Restore => (
                self.restore(ready, before, report, failure).await,
                "automatic rollback",
            ),
            Recovery::Reconcile => (
                self.reconcile(ready, before, report, failure).await,
                "reconcile",
            ),
        };
        report.stage(stage, started);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_verify_leads_to_a_restore_a_reconcile_or_nothing() {
        use Recovery::{Nothing, Reconcile, Restore};
        // step, interrupted, --rollback-on-failure, ECS rolled back itself
        let table = [
            // A failed apply: nothing of this run is known to run.
            (Step::Roll, false, true, false, Nothing),
            (Step::Roll, false, true, true, Nothing),
            (Step::Verify, false, true, false, Restore),
            (Step::Health, false, true, false, Restore),
            (Step::Verify, false, false, false, Nothing),
            // ECS rolled back: terraform is told, asked or not.
            (Step::Verify, false, false, true, Reconcile),
            (Step::Health, false, true, true, Reconcile),
            // An interruption stops everything.
            (Step::Verify, true, true, false, Nothing),
            (Step::Health, true, false, true, Nothing),
            // Failures before the roll never reach here, and would lead nowhere.
            (Step::BuildAndPush, false, true, false, Nothing),
            (Step::Spas, false, true, true, Nothing),
        ];
        for (step, interrupted, asked, ecs, expected) in table {
            assert_eq!(
                Recovery::after(step, interrupted, asked, ecs),
                expected,
                "{step:?} interrupted={interrupted} asked={asked} ecs={ecs}"
            );
        }
    }

    #[test]
    fn ecs_is_asked_first_after_a_failed_health_check_only() {
        let table = [
            (Step::Health, false, true),
            (Step::Health, true, false),
            (Step::Verify, false, false),
            (Step::Roll, false, false),
        ];
        for (step, interrupted, asked) in table {
            assert_eq!(
                asks_ecs_first(step, interrupted),
                asked,
                "{step:?} {interrupted}"
            );
        }
    }
}
