//! Step 5, the deploy lock: one run at a time per environment, taken once the operator
//! confirmed and released however the run ends.

use anyhow::Result;

use super::run::{Ready, Run};
use super::stages::Step;
use crate::aws::deploy_lock::{self, Lock, LockLocation};

impl Run<'_> {
    /// Takes the lock, held from here until the run ends. With `--lock-wait` it waits for another run's lock, showing the holder;
    /// the second value says whether it did (another run may have rolled meanwhile).
    pub(super) async fn lock(&self, ready: &Ready) -> Result<(Option<Lock>, bool)> {
        self.stages.enter(Step::Lock);
        let Some(step) = &self.plan.terraform else {
            // No environment (--skip-tf): images and SPAs only.
            return Ok((None, false));
        };
        if !self.platform.config.lock.enabled {
            return Ok((None, false));
        }
        let Some(bucket) = &ready.environment.lock_bucket else {
            self.progress.warn(&format!(
                "running WITHOUT the deploy lock: no bucket for it ({}, add a terraform output {:?}, or use an S3 terraform backend; lock.enabled = false silences this)",
                crate::model::config::set_in_config("lock.bucket"),
                self.platform.config.terraform.outputs.deploy_lock_bucket
            ));
            return Ok((None, false));
        };
        let location = LockLocation::new(bucket, &step.apply.workspace);
        let environment = &step.apply.workspace;
        let taken = deploy_lock::take(
            ready.aws.s3(),
            location,
            self.plan.commit(),
            self.request.lock_wait,
            |held, left| {
                let holder = match &held.holder {
                    Some(holder) => format!("held by {holder}"),
                    None => "held by another run".to_owned(),
                };
                self.progress.note(&format!(
                    "waiting for the deploy lock of {environment} (up to {} more, --lock-wait): {holder}",
                    crate::timestamp::age(left.as_secs().max(1))
                ));
            },
        )
        .await?;
        tracing::info!(environment = %environment, waited = taken.waited, "deploy lock taken");
        if taken.waited {
            self.progress
                .note(&format!("took the deploy lock of {environment}"));
        }
        Ok((Some(taken.lock), taken.waited))
    }

    /// Releases the lock whatever `outcome` was (after a success, the run's last stage). The run's own failure stays the
    /// error; a lock that stays held is said too, never silenced: the next run
    /// depends on it.
    pub(super) async fn release(&self, lock: Option<Lock>, outcome: Result<()>) -> Result<()> {
        if outcome.is_ok() {
            self.stages.enter(Step::Unlock);
        }
        let Some(lock) = lock else {
            return outcome;
        };
        match (lock.release().await, outcome) {
            (Err(err), Ok(())) => Err(err),
            (Err(err), Err(failed)) => {
                self.progress.warn(&format!("{err:#}"));
                Err(failed)
            }
            (Ok(()), outcome) => outcome,
        }
    }
}
