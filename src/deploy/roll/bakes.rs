//! `--wait-until auto`: the deployments ECS bakes after their traffic shift are
//! followed in two halves: until the traffic shift, then (the health checks having run
//! during the bake) until complete, so that an alarm or a circuit breaker that makes
//! ECS roll back during the bake still ends the run.

use std::time::SystemTime;

use super::super::run::{cut_short, Ready, Run};
use super::super::stages::Step;
use super::{failed, RollFailure, RollLog};
use crate::aws::ecs::native::WaitUntil;
use crate::aws::ecs::Settled;

/// The (service, tag) of each target whose deployment was left running at its traffic
/// shift: not failed, not waiting at a pause.
pub(super) fn still_baking(
    rollouts: &[Settled],
    targets: &[(String, String)],
) -> Vec<(String, String)> {
    rollouts
        .iter()
        .filter(|r| r.error.is_none())
        .filter(|r| {
            r.deployment.as_ref().is_some_and(|d| {
                matches!(d.status.as_str(), "IN_PROGRESS" | "PENDING") && d.pauses.is_empty()
            })
        })
        .filter_map(|r| targets.iter().find(|(s, _)| s == &r.service).cloned())
        .collect()
}

impl Run<'_> {
    /// `--wait-until auto`, once the health checks passed during the bakes: each
    /// deployment left at its traffic shift is followed again until complete, so that
    /// an alarm or circuit breaker ECS rolls back on still ends the run.
    pub(super) async fn follow_the_bakes(
        &self,
        ready: &Ready,
        baking: Vec<(String, String)>,
        since: SystemTime,
        mut rollouts: Vec<Settled>,
        log: &mut impl RollLog,
    ) -> Result<(), RollFailure> {
        self.progress.note(&format!(
            "health checks passed during the bake; following {} until complete (--wait-until auto)",
            baking
                .iter()
                .map(|(service, _)| service.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let complete = self.settle(ready, baking, since, WaitUntil::Complete);
        let followed = cut_short(self.progress, complete)
            .await
            .map_err(|err| RollFailure::Stopped(Step::Verify, err))?;
        let unsettled = failed(followed.iter().map(|r| (&r.service, &r.error)));
        for settled in followed {
            match rollouts.iter_mut().find(|r| r.service == settled.service) {
                Some(slot) => *slot = settled,
                None => rollouts.push(settled),
            }
        }
        log.settled(rollouts);
        if !unsettled.is_empty() {
            return Err(RollFailure::Unsettled(unsettled));
        }
        Ok(())
    }
}
