//! The reviewed roll (issue 15). In preflight, before anything is built, terraform
//! plans exactly the roll (the apply's `-var-file`, variables and targets) into a saved
//! plan; its review is shown before the confirmation (and under `-y`); the guard
//! refuses changes to infrastructure outside the deployment, and any destroy, unless
//! `--allow-infra-changes`; after the build and push, the apply applies that saved plan
//! and nothing else. `deploy diff` is the same preflight and review, stopping there.

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::run::{interruptible, Ready, Run, SavedPlan};
use super::stages::Step;
use crate::error::Stage;
use crate::model::plan::{shell_words, TerraformStep};
use crate::report::RunReport;
use crate::terraform::{AddressChange, ApplyFailed, PlanOptions, Review, Terraform};
use crate::ui::output::OutputFormat;
use crate::ui::output::{emit_stdout_ended, Ending};

/// The flag that accepts changes outside the deployment.
pub const ALLOW_FLAG: &str = "--allow-infra-changes";

impl Run<'_> {
    /// Runs `terraform plan -out=…` for the roll and reviews the saved plan against the
    /// services this run rolls.
    pub(super) async fn plan_the_roll(
        &self,
        tf: &Terraform,
        step: &TerraformStep,
    ) -> Result<SavedPlan> {
        let rolled: Vec<(String, String)> = self
            .plan
            .touched_services()
            .map(|service| (service.name.clone(), service.repository.clone()))
            .collect();
        self.plan_roll(tf, step, &rolled).await
    }

    /// [`Self::plan_the_roll`] for the services `rolled` (name, repository).
    pub(super) async fn plan_roll(
        &self,
        tf: &Terraform,
        step: &TerraformStep,
        rolled: &[(String, String)],
    ) -> Result<SavedPlan> {
        let config = &self.platform.config.terraform;
        let dir = tempfile::Builder::new()
            .prefix("deploy-plan-")
            .tempdir()
            .context("cannot create a temp dir for the saved terraform plan")?;
        let file = dir.path().join(crate::model::plan::SAVED_PLAN_NAME);
        // A run queued with --lock-wait plans while the run ahead may be applying:
        // terraform then waits for its state lock as long as deploy waits for its own,
        // instead of failing at once.
        let options = PlanOptions {
            lock_timeout: self.request.lock_wait,
        };
        let args = step.apply.plan_args_with(config, &file, options);
        self.progress.note(&format!(
            "planning the roll: {}",
            shell_words(std::iter::once("terraform".to_owned()).chain(args.iter().cloned()))
        ));
        if let Err(err) = tf.plan(&args).await {
            let advice = match err.downcast_ref::<ApplyFailed>() {
                Some(failed) => failed.advice(&step.apply.var_file),
                None => "fix what the message says, then run the same command again".to_owned(),
            };
            return Err(err.context(format!(
                "cannot plan the roll; nothing was built, pushed or applied. {advice}"
            )));
        }
        let diff = tf.show_plan(&file).await.context(
            "cannot read the saved plan back (terraform show -json); nothing was built, pushed or applied",
        )?;
        let review = Review::new(&diff, &step.apply.owners(config, rolled));
        Ok(SavedPlan {
            _dir: dir,
            file,
            review,
        })
    }

    /// Step 4: the review of the roll's saved plan (under -y too), then the typed `y`
    /// (unless -y).
    pub(super) fn review_and_confirm(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        self.stages.enter(Step::Review);
        if let Some(saved) = &ready.saved_plan {
            self.review(saved, report)?;
        }
        if !self.request.assume_yes {
            super::messages::confirm(self.source)?;
        }
        Ok(())
    }

    /// Step 4's first half: the review on the progress channel (under -y too), kept in
    /// the report, then the guard.
    pub(super) fn review(&self, saved: &SavedPlan, report: &mut RunReport) -> Result<()> {
        self.progress
            .note(&saved.review.render(crate::ui::style::stderr()));
        report.review = Some(saved.review.clone());
        guard(&saved.review, self.request.allow_infra_changes)
    }

    /// After waiting for the deploy lock (`--lock-wait`): the run that held it may have
    /// applied, and terraform refuses a saved plan made before the state changed. So
    /// the roll is planned again and reviewed with the same guard. Without `-y`, a
    /// review that differs from the one the operator typed `y` for stops the run:
    /// nobody approved it. Under `-y` the new review is printed and goes on.
    pub(super) async fn plan_again(&self, ready: &mut Ready, report: &mut RunReport) -> Result<()> {
        self.stages.enter(Step::Replan);
        let (Some(step), Some(tf), Some(before)) =
            (&self.plan.terraform, &ready.terraform, &ready.saved_plan)
        else {
            return Ok(());
        };
        self.progress
            .note("the run that held the lock may have rolled meanwhile: planning the roll again");
        let saved = interruptible(Stage::BeforeRoll, self.plan_the_roll(tf, step)).await?;
        if saved.review != before.review {
            if !self.request.assume_yes {
                self.progress
                    .note(&saved.review.render(crate::ui::style::stderr()));
                anyhow::bail!(
                    "the roll's terraform plan changed while this run waited for the deploy lock (the run that held it changed the environment), so it is not the plan you confirmed; nothing was built, pushed or applied. Run the same command again to review the new plan (shown above)"
                );
            }
            self.review(&saved, report)?;
        }
        ready.saved_plan = Some(saved);
        Ok(())
    }

    /// `deploy diff`: the terraform half of preflight, the plan and its review on
    /// stdout; [`NeedsReview`](crate::error::NeedsReview) (exit 3) when a deploy of that
    /// plan would need the flag.
    pub(super) async fn diff(&self, output: OutputFormat) -> Result<()> {
        let (Some(step), Some(tf)) = (&self.plan.terraform, self.check_terraform().await?) else {
            anyhow::bail!("deploy diff plans with terraform, which this run skips");
        };
        let saved = self.plan_the_roll(&tf, step).await?;
        let needs_acceptance = saved.review.needs_acceptance();
        let outcome = if needs_acceptance.is_empty() {
            Ok(())
        } else {
            Err(crate::error::NeedsReview(format!(
                "the plan would also change {} resource(s) outside the deployment, or destroy something (listed above): a deploy of it stops before any build unless given {ALLOW_FLAG}",
                needs_acceptance.len()
            ))
            .into())
        };
        emit_stdout_ended(
            &DiffReport {
                image_tag: &self.plan.image_tag,
                review: &saved.review,
                needs_acceptance,
            },
            output,
            &Ending::of(&outcome, 0, None),
        )?;
        outcome
    }
}

/// One line per change: terraform's symbol, the action, the address.
pub fn change_lines(changes: &[AddressChange]) -> String {
    changes
        .iter()
        .map(|change| format!("  {change}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The guard: changes outside the deployment, and any destroy, stop the run before
/// anything is built unless the operator accepted them. Exit 1, not 2: the flags are
/// right, the terraform code or state is not what a roll expects.
pub(super) fn guard(review: &Review, accepted: bool) -> Result<()> {
    let listed = review.needs_acceptance();
    if listed.is_empty() || accepted {
        return Ok(());
    }
    let destroys = if review.destroyed.is_empty() {
        ""
    } else {
        " A destroy always needs the flag, even with -y."
    };
    anyhow::bail!(
        "the roll's terraform plan would also change {} resource(s) that are not the deployment's own task definitions and services:\n{}\nThey come with this commit's terraform code or the environment's state (a merged infrastructure change, drift, a first deploy), not with the images.{destroys} Review them, then run again with {ALLOW_FLAG} to apply them with the roll. Nothing was built, pushed or applied",
        listed.len(),
        change_lines(&listed),
    )
}

/// What `deploy diff --output json` prints.
#[derive(Serialize)]
struct DiffReport<'a> {
    pub image_tag: &'a str,
    pub review: &'a Review,
    /// What a deploy of this plan needs `--allow-infra-changes` for.
    pub needs_acceptance: Vec<AddressChange>,
}

impl std::fmt::Display for DiffReport<'_> {
    /// Below the plan's table: the review, coloured as stdout allows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.review.render(crate::ui::style::stdout()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terraform::{ChangeKind, ServiceDiff};

    fn review(other: &[(&str, ChangeKind)], own_delete: bool) -> Review {
        let change = |address: &str, action| AddressChange {
            address: address.into(),
            action,
        };
        let mut resources = vec![change(
            r#"terraform_data.service["api"]"#,
            ChangeKind::Replace,
        )];
        if own_delete {
            resources.push(change(
                r#"terraform_data.service["old"]"#,
                ChangeKind::Delete,
            ));
        }
        Review {
            services: vec![ServiceDiff {
                service: "api".into(),
                image: None,
                attributes: Vec::new(),
                resources,
            }],
            other: other.iter().map(|(a, k)| change(a, *k)).collect(),
            destroyed: if own_delete {
                vec![r#"terraform_data.service["old"]"#.into()]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn the_guard_lets_own_changes_through_and_stops_the_rest_unless_accepted() {
        assert!(guard(&review(&[], false), false).is_ok());
        let other = review(&[("aws_security_group.db", ChangeKind::Update)], false);
        let err = guard(&other, false).unwrap_err().to_string();
        assert!(
            err.contains("  ~   update   aws_security_group.db"),
            "{err}"
        );
        assert!(err.contains("--allow-infra-changes"), "{err}");
        assert!(
            err.contains("Nothing was built, pushed or applied"),
            "{err}"
        );
        assert!(!err.contains("A destroy"), "{err}");
        assert!(guard(&other, true).is_ok());
        // A destroy of the deployment's own resources needs the flag too.
        let err = guard(&review(&[], true), false).unwrap_err().to_string();
        assert!(
            err.contains(r#"-   destroy  terraform_data.service["old"]"#),
            "{err}"
        );
        assert!(
            err.contains("A destroy always needs the flag, even with -y"),
            "{err}"
        );
        assert!(guard(&review(&[], true), true).is_ok());
    }
}
