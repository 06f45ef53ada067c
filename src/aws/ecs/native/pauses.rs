//! The pauses of a run's service deployments (PAUSE lifecycle hooks awaiting action),
//! found again after the run and answered: `ContinueServiceDeployment` with CONTINUE
//! or ROLLBACK, one call per hook (`deploy continue`).

use std::time::SystemTime;

use anyhow::{anyhow, Result};
use aws_sdk_ecs::types::DeploymentLifecycleHookAction;

use super::super::Ecs;
use super::follow::NONE_LISTED;
use super::{view, DeploymentView};
use crate::aws;

/// How a pause is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The deployment goes on to its next lifecycle stage.
    Continue,
    /// ECS rolls the deployment back to the revision that ran before.
    Rollback,
}

impl Answer {
    pub fn name(self) -> &'static str {
        match self {
            Answer::Continue => "CONTINUE",
            Answer::Rollback => "ROLLBACK",
        }
    }
}

impl Ecs {
    /// The service deployment of `ecs_service` created since `since` (the run's), when
    /// it waits at a pause hook now; `None` when it has none or none is pending.
    pub async fn pending_pauses(
        &self,
        ecs_service: &str,
        since: SystemTime,
    ) -> Result<Option<DeploymentView>> {
        let arn = match self.deployment_since(ecs_service, since).await {
            Ok(arn) => arn,
            Err(why) if why.starts_with(NONE_LISTED) => return Ok(None),
            Err(why) => return Err(anyhow!(why)),
        };
        let deployment = self.describe_deployment(&arn).await?;
        let seen = view(&deployment);
        let running = matches!(seen.status.as_str(), "IN_PROGRESS" | "PENDING");
        Ok((running && !seen.pauses.is_empty()).then_some(seen))
    }

    /// Answers the pause `hook_id` of the service deployment `arn`.
    pub async fn answer_pause(&self, arn: &str, hook_id: &str, answer: Answer) -> Result<()> {
        let action = match answer {
            Answer::Continue => DeploymentLifecycleHookAction::Continue,
            Answer::Rollback => DeploymentLifecycleHookAction::Rollback,
        };
        self.client
            .continue_service_deployment()
            .service_deployment_arn(arn)
            .hook_id(hook_id)
            .action(action)
            .send()
            .await
            .map_err(|err| {
                anyhow!(aws::explain(
                    "ecs:ContinueServiceDeployment",
                    &err,
                    self.profile.as_deref()
                ))
            })?;
        Ok(())
    }
}
