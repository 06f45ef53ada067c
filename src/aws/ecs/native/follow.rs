//! Following one service deployment from ECS: finding the one our apply caused,
//! polling it until it reaches what `--wait-until` asks, and stopping it for a rollback.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Result};
use aws_sdk_ecs::types::ServiceDeployment;

use super::super::{image_tag_of, Ecs, RolloutTarget, Settled};
use super::*;
use crate::aws;
use crate::ui::progress::ItemProgress;

/// How the answer begins when a service has no service deployment since the roll.
pub(super) const NONE_LISTED: &str = "ListServiceDeployments lists none";

impl Ecs {
    /// The service deployment of `ecs_service` created at or after `since` (our
    /// apply's); `Err` with why when the account or service has none to follow.
    pub(super) async fn deployment_since(
        &self,
        ecs_service: &str,
        since: SystemTime,
    ) -> Result<String, String> {
        // Newest first: the one our apply caused is the last created.
        let found = self.list_deployments(ecs_service, Some(since)).await?;
        found
            .first()
            .and_then(|d| d.service_deployment_arn())
            .map(str::to_owned)
            .ok_or_else(|| format!("{NONE_LISTED} created since the roll began"))
    }

    /// The service deployments of `ecs_service` (created at or after `since`, when
    /// given), newest first; `Err` with why when the account cannot be asked.
    pub(in crate::aws::ecs) async fn list_deployments(
        &self,
        ecs_service: &str,
        since: Option<SystemTime>,
    ) -> Result<Vec<aws_sdk_ecs::types::ServiceDeploymentBrief>, String> {
        let after = since.map(|since| {
            aws_sdk_ecs::types::CreatedAt::builder()
                .after(aws_sdk_ecs::primitives::DateTime::from(since))
                .build()
        });
        let listed = self
            .client
            .list_service_deployments()
            .cluster(&self.cluster)
            .service(ecs_service)
            .set_created_at(after)
            .send()
            .await
            .map_err(|err| {
                aws::explain("ecs:ListServiceDeployments", &err, self.profile.as_deref())
                    .to_string()
            })?;
        let mut found = listed.service_deployments().to_vec();
        found.sort_by_key(|d| std::cmp::Reverse(d.created_at().map(|t| t.as_nanos())));
        Ok(found)
    }

    pub(super) async fn describe_deployment(&self, arn: &str) -> Result<ServiceDeployment> {
        let output = self
            .client
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .map_err(|err| {
                anyhow!(aws::explain(
                    "ecs:DescribeServiceDeployments",
                    &err,
                    self.profile.as_deref()
                ))
            })?;
        output
            .service_deployments()
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("ECS does not describe service deployment {arn}"))
    }

    /// Asks ECS to roll a service deployment back (`StopServiceDeployment` with
    /// ROLLBACK): instant while it bakes, the old tasks still running.
    pub async fn stop_for_rollback(&self, arn: &str) -> Result<()> {
        self.client
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(aws_sdk_ecs::types::StopServiceDeploymentStopType::Rollback)
            .send()
            .await
            .map_err(|err| {
                anyhow!(aws::explain(
                    "ecs:StopServiceDeployment",
                    &err,
                    self.profile.as_deref()
                ))
            })?;
        Ok(())
    }

    /// Follows the service deployment our apply caused until it succeeds (then the
    /// service must run the expected tag), reaches `wait.until`, or ECS ends it; without
    /// one, the older wait on `DescribeServices` within the margin, said on the item's
    /// line.
    pub async fn follow(
        &self,
        target: &RolloutTarget,
        since: SystemTime,
        wait: &Wait,
        item: &ItemProgress,
    ) -> Settled {
        let Wait {
            until,
            margin,
            overall,
            poll,
        } = *wait;
        let arn = match self.deployment_since(&target.ecs_service, since).await {
            Ok(arn) => arn,
            Err(why) => {
                let within = overall.unwrap_or(margin);
                item.state(&format!(
                    "no ECS service deployment to follow ({why}): waiting on DescribeServices.deployments within {}s",
                    within.as_secs()
                ));
                let mut settled = self.wait_until_settled(target, within, poll, item).await;
                settled.followed = Some(format!("DescribeServices ({why})"));
                return settled;
            }
        };
        let started = Instant::now();
        let mut stage_seen: Option<(Option<String>, Instant)> = None;
        let mut last_line = String::new();
        let mut last: Option<DeploymentView> = None;
        // `[alarms]`: said once when ECS does not report some; why deploy asked ECS to
        // roll back when one fired.
        let mut alarms_checked = false;
        let mut requested: Option<String> = None;
        let finish = |steady, running_tag, error, view: Option<DeploymentView>, rollback| Settled {
            service: target.service.clone(),
            steady,
            running_tag,
            waited_secs: started.elapsed().as_secs_f64(),
            error,
            followed: Some("service deployment".to_owned()),
            deployment: view,
            native_rollback: rollback,
        };
        loop {
            let deployment = match self.describe_deployment(&arn).await {
                Ok(deployment) => deployment,
                Err(err) => return finish(false, None, Some(format!("{err:#}")), last, None),
            };
            let config = deployment.deployment_configuration();
            let timeout = timeout_for(config, until, margin, overall);
            let mut view = view(&deployment);
            view.pauses
                .retain(|pause| !target.answered_hooks.contains(&pause.hook_id));
            // Bake left: from when this run first saw the stage (ECS gives no start).
            if stage_seen.as_ref().map(|(s, _)| s) != Some(&view.stage) {
                stage_seen = Some((view.stage.clone(), Instant::now()));
            }
            if let (Some(bake), Some((_, since))) = (view.bake_secs, &stage_seen) {
                view.bake_left_secs = Some(bake.saturating_sub(since.elapsed().as_secs()));
            }
            item.leaves(&format!(
                "its {} deployment is {}",
                view.strategy,
                what_is_left(&view, config)
            ));
            let line = progress_line(&view, crate::timestamp::now_unix() as i64);
            if line != last_line {
                item.state(&line);
                last_line = line;
            }
            if !alarms_checked && !target.watched_alarms.is_empty() {
                alarms_checked = true;
                let unreported = watch::unreported(&view, &target.watched_alarms);
                if !unreported.is_empty() {
                    item.state(&watch::unreported_line(&unreported));
                }
            }
            let alarming = watch::in_alarm(&view, &target.watched_alarms);
            if !alarming.is_empty()
                && requested.is_none()
                && matches!(phase(&view), Phase::Running | Phase::Paused)
            {
                let why = watch::rollback_reason(&alarming);
                item.state(&format!(
                    "{why}: asking ECS to roll back (StopServiceDeployment ROLLBACK)"
                ));
                if let Err(err) = self.stop_for_rollback(&arn).await {
                    let error = format!("{why}, and ECS could not be asked to roll back: {err:#}");
                    return finish(false, None, Some(error), Some(view), None);
                }
                requested = Some(why);
                tokio::time::sleep(poll).await;
                continue;
            }
            if reached(&view, until) {
                let point = match (until, view.pauses.is_empty()) {
                    (WaitUntil::Auto, false) => "paused (--wait-until auto)".to_owned(),
                    (WaitUntil::Auto, true) => format!(
                        "{} (--wait-until auto)",
                        until.for_strategy(&view.strategy).name()
                    ),
                    _ => format!("{} (--wait-until)", until.name()),
                };
                let running = self.running_tag(target).await.ok().flatten();
                let mut settled = finish(true, running, None, Some(view), None);
                settled.followed = Some(format!("service deployment, until {point}"));
                return settled;
            }
            match phase(&view) {
                Phase::Running | Phase::Paused => {}
                Phase::Succeeded => {
                    let running = self.running_tag(target).await;
                    return match running {
                        Ok(tag) if tag.as_deref() == Some(&target.expected_tag) => {
                            finish(true, tag, None, Some(view), None)
                        }
                        Ok(tag) => {
                            let error = format!(
                                "the service deployment of {} SUCCEEDED but the service runs :{} instead of :{}",
                                target.ecs_service,
                                tag.as_deref().unwrap_or("?"),
                                target.expected_tag
                            );
                            finish(false, tag, Some(error), Some(view), None)
                        }
                        Err(err) => finish(false, None, Some(format!("{err:#}")), Some(view), None),
                    };
                }
                Phase::Ended => {
                    let running = self.running_tag(target).await.ok().flatten();
                    let rollback = NativeRollback {
                        status: view.status.clone(),
                        stage: view.stage.clone(),
                        reason: view
                            .rollback_reason
                            .clone()
                            .or_else(|| view.status_reason.clone())
                            .unwrap_or_else(|| "no reason given".to_owned()),
                        triggered_alarms: view.triggered_alarms.clone(),
                        requested_by_deploy: requested.clone(),
                    };
                    let error = ended_message(&target.ecs_service, &view);
                    return finish(false, running, Some(error), Some(view), Some(rollback));
                }
            }
            if started.elapsed() >= timeout {
                let why = match overall {
                    Some(_) => "--wait-timeout",
                    None => "its bakes and steps plus ecs.wait_timeout_secs",
                };
                let error = format!(
                    "stopped waiting for the {} deployment of {} after {}s ({why}); ECS goes on with it, {}",
                    view.strategy,
                    target.ecs_service,
                    timeout.as_secs(),
                    what_is_left(&view, config)
                );
                return finish(false, None, Some(error), Some(view), None);
            }
            last = Some(view);
            tokio::time::sleep(poll).await;
        }
    }

    /// The tag of the target's container in the task definition the service runs now.
    async fn running_tag(&self, target: &RolloutTarget) -> Result<Option<String>> {
        let service = self.describe(&target.ecs_service).await?;
        let Some(task_definition) = service.task_definition() else {
            return Ok(None);
        };
        Ok(self
            .container_image(task_definition, &target.container)
            .await?
            .and_then(|image| image_tag_of(&image).map(str::to_owned)))
    }
}

/// How far to follow each service deployment, and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub until: WaitUntil,
    /// On top of each deployment's own bakes and steps (`ecs.wait_timeout_secs`); the
    /// whole wait of a service without service deployments.
    pub margin: Duration,
    /// `--wait-timeout`: the whole wait of each service, whatever its configuration.
    pub overall: Option<Duration>,
    pub poll: Duration,
}
