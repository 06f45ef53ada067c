//! The wait every ECS service gets without a service deployment to follow: its
//! `DescribeServices` deployments polled until only the new task set runs, fully, on
//! the rolled tag (the runbook's "ECS services reach a steady state", automated).

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{DeploymentRolloutState, Service};

use super::{image_tag_of, Ecs, RolloutTarget, Settled};
use crate::ui::progress::ItemProgress;

/// Where a rolled service stands, from one DescribeServices result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SettleState {
    /// Tasks still starting or draining, or no PRIMARY deployment yet.
    InProgress,
    /// The PRIMARY deployment's rollout FAILED (fail fast, SPEC §3.9).
    Failed { reason: String },
    /// Only the new task set runs, fully, on the expected tag.
    Steady,
    /// Settled, but on another tag: the circuit breaker rolled it back.
    RolledBack,
}

/// Classifies a described service: `running_tag` is the tag of the container in its
/// current task definition, `expected_tag` the one rolled.
pub(super) fn settle_state(
    service: &Service,
    running_tag: Option<&str>,
    expected_tag: &str,
) -> SettleState {
    let deployments = service.deployments();
    let Some(primary) = deployments.iter().find(|d| d.status() == Some("PRIMARY")) else {
        return SettleState::InProgress;
    };
    if primary.rollout_state() == Some(&DeploymentRolloutState::Failed) {
        let reason = primary.rollout_state_reason().unwrap_or("no reason given");
        return SettleState::Failed {
            reason: reason.to_owned(),
        };
    }
    let complete = deployments.len() == 1
        && primary.running_count() == primary.desired_count()
        && primary.pending_count() == 0
        && matches!(
            primary.rollout_state(),
            None | Some(DeploymentRolloutState::Completed)
        );
    match (complete, running_tag == Some(expected_tag)) {
        (false, _) => SettleState::InProgress,
        (true, true) => SettleState::Steady,
        (true, false) => SettleState::RolledBack,
    }
}

impl Ecs {
    /// Waits until the service runs only the new task set, fully. Fails fast on a
    /// FAILED rollout, and when it settles on another tag (a circuit-breaker rollback).
    pub async fn wait_until_settled(
        &self,
        target: &RolloutTarget,
        timeout: Duration,
        poll: Duration,
        item: &ItemProgress,
    ) -> Settled {
        let started = Instant::now();
        let mut last_event = String::new();
        let mut running_tag = None;
        let finish = |steady: bool, running_tag: Option<String>, error: Option<String>| Settled {
            service: target.service.clone(),
            steady,
            running_tag,
            waited_secs: started.elapsed().as_secs_f64(),
            error,
            followed: None,
            deployment: None,
            native_rollback: None,
        };
        loop {
            let service = match self.describe(&target.ecs_service).await {
                Ok(service) => service,
                Err(err) => return finish(false, running_tag, Some(format!("{err:#}"))),
            };
            if let Some(event) = service.events().first().and_then(|e| e.message()) {
                if event != last_event {
                    last_event = event.to_owned();
                    item.detail(&format!("ECS: {event}"));
                }
            }
            if let Some(task_definition) = service.task_definition() {
                match self.container_image(task_definition, &target.container).await {
                    Ok(Some(image)) => running_tag = image_tag_of(&image).map(str::to_owned),
                    Ok(None) => {
                        return finish(
                            false,
                            None,
                            Some(format!(
                                "task definition {task_definition} has no container named {} (set ecs.container in deploy.toml)",
                                target.container
                            )),
                        )
                    }
                    Err(err) => return finish(false, running_tag, Some(format!("{err:#}"))),
                }
            }
            match settle_state(&service, running_tag.as_deref(), &target.expected_tag) {
                SettleState::InProgress => {}
                SettleState::Failed { reason } => {
                    return finish(
                        false,
                        running_tag,
                        Some(format!(
                            "the rollout of {} FAILED: {reason}",
                            target.ecs_service
                        )),
                    );
                }
                SettleState::Steady => return finish(true, running_tag, None),
                SettleState::RolledBack => {
                    // Settled, but not on what we rolled: ECS rolled it back.
                    return finish(
                        false,
                        running_tag.clone(),
                        Some(format!(
                            "{} settled on :{} instead of :{} (the deployment circuit breaker rolled it back?); last event: {}",
                            target.ecs_service,
                            running_tag.as_deref().unwrap_or("?"),
                            target.expected_tag,
                            if last_event.is_empty() { "none" } else { &last_event }
                        )),
                    );
                }
            }
            let deployments = service.deployments();
            let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
            if started.elapsed() >= timeout {
                let stopped = self.stopped_task_reasons(&target.ecs_service).await;
                let waiting = primary
                    .map(|p| {
                        format!(
                            "{} of {} task(s) running, {} pending, {} deployment(s)",
                            p.running_count(),
                            p.desired_count(),
                            p.pending_count(),
                            deployments.len()
                        )
                    })
                    .unwrap_or_else(|| "no PRIMARY deployment".into());
                return finish(
                    false,
                    running_tag,
                    Some(format!(
                        "{} did not settle within {}s ({waiting}); last event: {}{}",
                        target.ecs_service,
                        timeout.as_secs(),
                        if last_event.is_empty() {
                            "none"
                        } else {
                            &last_event
                        },
                        if stopped.is_empty() {
                            String::new()
                        } else {
                            format!("; stopped tasks: {}", stopped.join("; "))
                        }
                    )),
                );
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Why recent tasks of the service stopped (shown when waiting gives up).
    async fn stopped_task_reasons(&self, ecs_service: &str) -> Vec<String> {
        let Ok(listed) = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .service_name(ecs_service)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
        else {
            return Vec::new();
        };
        let arns: Vec<String> = listed.task_arns().iter().take(5).cloned().collect();
        if arns.is_empty() {
            return Vec::new();
        }
        let Ok(tasks) = self
            .client
            .describe_tasks()
            .cluster(&self.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
        else {
            return Vec::new();
        };
        tasks
            .tasks()
            .iter()
            .filter_map(|task| task.stopped_reason().map(str::to_owned))
            .collect()
    }
}
