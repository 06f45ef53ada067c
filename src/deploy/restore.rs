//! The automatic rollback (`--rollback-on-failure`, `verify.rollback_on_failure`): when
//! the rolled services do not settle, settle on another tag, or fail their health
//! checks, the services this run changed go back to the tags they ran before it (the
//! survey made under the lock), through the same reviewed, targeted terraform roll as
//! `deploy undo`; then they are verified. Once: a failed restore stops and says so.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};

use super::ledger::Before;
use super::review::guard;
use super::roll::{list, Roll, RollFailure};
use super::run::{cut_short, Ready, Run};
use crate::aws::ecs::native::WaitUntil;
use crate::error::Interrupted;
use crate::model::history::ServiceTags;
use crate::model::plan::TerraformStep;
use crate::report::{RestoreReport, RunReport};
use crate::terraform::Apply;

impl Run<'_> {
    /// Restores what this run changed after `failure` (verify or health), and ends the
    /// run with `failure` and what the restore did: always an error (exit 1), unless
    /// interrupted (130, 143, 129).
    pub(super) async fn restore(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
        failure: anyhow::Error,
    ) -> Result<()> {
        let (tags, left) = restore_set(self, before);
        let mut restore = RestoreReport {
            tags: tags.iter().map(|(s, t)| (s.clone(), t.clone())).collect(),
            left,
            ..RestoreReport::default()
        };
        if tags.is_empty() {
            restore.error = Some("nothing to restore".to_owned());
            let why = if restore.left.is_empty() {
                "every rolled service already ran its tag before this run".to_owned()
            } else {
                restore
                    .left
                    .iter()
                    .map(|(service, why)| format!("{service}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            report.restore = Some(restore);
            return Err(failure.context(format!(
                "automatic rollback: nothing could be restored ({why})"
            )));
        }
        self.progress.warn(&format!(
            "the roll failed its checks: rolling {} back to the tags they ran before this run (automatic rollback)",
            describe(&restore.tags)
        ));
        let outcome = self.restore_roll(ready, &tags, &mut restore).await;
        if let Err(err) = &outcome {
            restore.error = Some(format!("{err:#}"));
        }
        let summary = summary(&restore);
        report.restore = Some(restore);
        match outcome {
            Err(err) if err.is::<Interrupted>() => Err(err),
            _ => Err(anyhow!("{failure:#}\n\n{summary}")),
        }
    }

    /// After ECS rolled services back by itself (an alarm, the circuit breaker): ECS runs
    /// their old revision while terraform's state and `image_tags` still say the new
    /// tag, so the next apply would silently roll the bad image again. Re-applies the
    /// tags they ran before this run for exactly those services, through the same
    /// reviewed, targeted roll as the restore, and ends the run with `failure` and
    /// what was reconciled: always an error (exit 1), unless interrupted.
    pub(super) async fn reconcile(
        &self,
        ready: &Ready,
        before: &Before,
        report: &mut RunReport,
        failure: anyhow::Error,
    ) -> Result<()> {
        let (tags, left) = before.reconcile_set(natively_rolled_back(report));
        let mut reconcile = RestoreReport {
            tags: tags.iter().map(|(s, t)| (s.clone(), t.clone())).collect(),
            left,
            ..RestoreReport::default()
        };
        if tags.is_empty() {
            report.reconcile = Some(reconcile);
            return Err(failure);
        }
        self.progress.warn(&format!(
            "ECS rolled back {}: re-applying those tags with terraform so that its state and image_tags say what runs (reconcile)",
            describe(&reconcile.tags)
        ));
        let outcome = self.restore_roll(ready, &tags, &mut reconcile).await;
        if let Err(err) = &outcome {
            reconcile.error = Some(format!("{err:#}"));
        }
        let summary = if reconcile.settled() {
            format!(
                "Reconciled: terraform re-applied {} (what ECS rolled back to), so its state and the next apply agree with what runs. The run failed: fix the cause ECS gave above, then deploy again",
                describe(&reconcile.tags)
            )
        } else {
            format!(
                "Reconcile FAILED (not retried): re-applying {} {}: {}. {}; check `deploy status` and ECS first",
                describe(&reconcile.tags),
                if reconcile.applied {
                    "was applied but did not settle or answer its health check"
                } else {
                    "was not applied"
                },
                reconcile.error.as_deref().unwrap_or("unknown error"),
                if reconcile.applied {
                    "terraform's state says the old tag, but the old release does not answer as expected"
                } else {
                    "terraform's state still says the new tag for them: the next apply would roll it again"
                }
            )
        };
        report.reconcile = Some(reconcile);
        match outcome {
            Err(err) if err.is::<Interrupted>() => Err(err),
            _ => Err(anyhow!("{failure:#}\n\n{summary}")),
        }
    }

    /// Health checks failed while ECS still bakes the roll (`--wait-until
    /// traffic-shifted`): each failing service's deployment is asked to roll back
    /// (`StopServiceDeployment` with ROLLBACK: instant, the old tasks still run) instead
    /// of a terraform restore, and followed to its end; the reconcile then tells
    /// terraform. Returns `failure`, with what was asked. Services whose deployment is
    /// over (or that have none) are left to `--rollback-on-failure`'s terraform restore.
    pub(super) async fn roll_back_natively(
        &self,
        ready: &Ready,
        report: &mut RunReport,
        failure: anyhow::Error,
    ) -> anyhow::Error {
        match self.ask_ecs_to_roll_back(ready, report, failure).await {
            Ok(never) => match never {},
            Err(err) => err,
        }
    }

    async fn ask_ecs_to_roll_back(
        &self,
        ready: &Ready,
        report: &mut RunReport,
        failure: anyhow::Error,
    ) -> Result<std::convert::Infallible> {
        let unhealthy: std::collections::BTreeSet<&str> = report
            .health
            .iter()
            .filter(|c| c.error.is_some())
            .map(|c| c.service.as_str())
            .collect();
        let baking: Vec<(String, String)> = report
            .rollouts
            .iter()
            .filter(|r| unhealthy.contains(r.service.as_str()))
            .filter_map(|r| {
                let deployment = r.deployment.as_ref()?;
                (deployment.status == "IN_PROGRESS")
                    .then(|| (r.service.clone(), deployment.arn.clone()))
            })
            .collect();
        if baking.is_empty() {
            return Err(failure);
        }
        let ecs = self.ecs(ready)?;
        for (service, arn) in &baking {
            self.progress.warn(&format!(
                "{service} failed its health check while ECS still runs its deployment: asking ECS to roll it back (StopServiceDeployment ROLLBACK) instead of a terraform restore"
            ));
            ecs.stop_for_rollback(arn)
                .await
                .map_err(|err| err.context(format!("{failure:#}")))?;
        }
        let since = report
            .roll_started
            .unwrap_or_else(std::time::SystemTime::now);
        let targets: Vec<(String, String)> = baking
            .iter()
            .map(|(service, _)| (service.clone(), self.plan.tag_of(service).to_owned()))
            .collect();
        let complete = WaitUntil::Complete;
        let followed =
            cut_short(self.progress, self.settle(ready, targets, since, complete)).await?;
        for mut settled in followed {
            if let Some(rollback) = &mut settled.native_rollback {
                rollback.requested_by_deploy = Some("health check failed".to_owned());
            }
            if let Some(slot) = report
                .rollouts
                .iter_mut()
                .find(|r| r.service == settled.service)
            {
                *slot = settled;
            }
        }
        let names: Vec<&str> = baking.iter().map(|(s, _)| s.as_str()).collect();
        Err(failure.context(format!(
            "asked ECS to roll back {} during its deployment (StopServiceDeployment ROLLBACK)",
            names.join(", ")
        )))
    }

    /// Plans and reviews the restore, then applies and verifies it through the roll's
    /// own [`Run::roll_and_verify`]. Never retried.
    async fn restore_roll(
        &self,
        ready: &Ready,
        tags: &BTreeMap<String, String>,
        restore: &mut RestoreReport,
    ) -> Result<()> {
        let (Some(step), Some(tf)) = (&self.plan.terraform, &ready.terraform) else {
            bail!("no terraform roll to restore from");
        };
        let config = &self.platform.config.terraform;
        let apply = Apply {
            roll: crate::terraform::Roll::restore(tags.clone()),
            ..step.apply.clone()
        };
        let restore_step = TerraformStep::new(apply, config);
        let rolled: Vec<(String, String)> = self
            .plan
            .services
            .iter()
            .filter(|s| tags.contains_key(&s.name))
            .map(|s| (s.name.clone(), s.repository.clone()))
            .collect();
        let saved = self
            .plan_roll(tf, &restore_step, &rolled)
            .await
            .context("cannot plan the restore")?;
        self.progress
            .note(&saved.review.render(crate::ui::style::stderr()));
        // The same guard as the roll's: a restore never drags other changes in unasked.
        guard(&saved.review, self.request.allow_infra_changes)
            .context("the restore's terraform plan was refused; nothing was restored")?;
        let roll = Roll {
            terraform: tf,
            args: restore_step.apply.apply_saved_args(&saved.file),
            targeted: true,
            targets: tags.iter().map(|(s, t)| (s.clone(), t.clone())).collect(),
            // A restore is waited on until complete, whatever --wait-until said.
            until: WaitUntil::Complete,
        };
        self.roll_and_verify(ready, roll, restore)
            .await
            .map_err(|failure| match failure {
                RollFailure::Apply(err) => err.context("the restore's terraform apply failed"),
                RollFailure::Unsettled(failed) | RollFailure::Unhealthy(failed) => {
                    anyhow!("{}", list(&failed, "", "; "))
                }
                RollFailure::Stopped(_, err) => err,
            })
    }
}

/// The services this run rolled to a new tag, each with the tag it ran before (from the
/// survey under the lock); and those that cannot be restored, with why
/// ([`Before::restore_set`]).
fn restore_set(run: &Run<'_>, before: &Before) -> (BTreeMap<String, String>, ServiceTags) {
    let rolled = run
        .plan
        .deploying_services()
        .map(|s| (s.name.as_str(), run.plan.tag_of(&s.name)));
    before.restore_set(rolled)
}

/// The services whose service deployment ECS rolled back successfully: ECS runs their
/// previous revision now.
pub(super) fn natively_rolled_back(report: &RunReport) -> Vec<String> {
    report
        .rollouts
        .iter()
        .filter(|r| {
            r.native_rollback
                .as_ref()
                .is_some_and(|n| n.status == "ROLLBACK_SUCCESSFUL")
        })
        .map(|r| r.service.clone())
        .collect()
}

/// `api → 1a2b3c4, auth → 1a2b3c4`.
fn describe(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(service, tag)| format!("{service} → :{tag}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the restore did, for the closing message.
fn summary(restore: &RestoreReport) -> String {
    let left = if restore.left.is_empty() {
        String::new()
    } else {
        format!(
            " Not restored: {}.",
            restore
                .left
                .iter()
                .map(|(service, why)| format!("{service} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if restore.settled() {
        format!(
            "Automatic rollback: restored {}; they settled on those tags{}.{left} The run failed: fix the cause above, then deploy again",
            describe(&restore.tags),
            if restore.health.is_empty() {
                ""
            } else {
                " and answered their health checks"
            },
        )
    } else {
        format!(
            "Automatic rollback FAILED (not retried): restoring {} {}: {}.{left} Services may run a mix of old and new tags: check `deploy status` and ECS before anything else",
            describe(&restore.tags),
            if restore.applied {
                "was applied but did not settle"
            } else {
                "was not applied"
            },
            restore.error.as_deref().unwrap_or("unknown error"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_was_restored_and_whether_it_settled() {
        let mut restore = RestoreReport {
            tags: vec![("api".into(), "1a2b3c4".into())],
            left: vec![("files".into(), "ran nothing readable".into())],
            applied: true,
            ..RestoreReport::default()
        };
        let ok = summary(&restore);
        assert!(
            ok.starts_with("Automatic rollback: restored api → :1a2b3c4; they settled"),
            "{ok}"
        );
        assert!(
            ok.contains("Not restored: files (ran nothing readable)"),
            "{ok}"
        );
        restore.error = Some("api: did not settle within 3s".into());
        let failed = summary(&restore);
        assert!(
            failed.starts_with("Automatic rollback FAILED (not retried)"),
            "{failed}"
        );
        assert!(
            failed.contains("was applied but did not settle: api: did not settle"),
            "{failed}"
        );
    }
}
