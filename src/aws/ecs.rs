//! ECS: the image a service runs, and waiting for a rolled service to settle on the new
//! tag (the runbook's "ECS services reach a steady state", automated).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_ecs::types::{DeploymentRolloutState, Service};
use serde::Serialize;

use crate::aws;
use crate::ui::progress::ItemProgress;

pub mod native;

/// The tag of an image reference: `host:5000/repo:tag@sha256:…` → `tag`. `None` for a
/// digest-only or untagged reference.
pub fn image_tag_of(image: &str) -> Option<&str> {
    let name = image.split('@').next()?;
    let last = name.rsplit('/').next()?;
    last.split_once(':')
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.is_empty())
}

/// What one rolled service must settle on.
#[derive(Debug, Clone)]
pub struct RolloutTarget {
    /// The platform's name for it.
    pub service: String,
    pub ecs_service: String,
    pub container: String,
    pub expected_tag: String,
}

/// How waiting ended for one service.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub service: String,
    pub steady: bool,
    /// The tag the service settled on (or runs when waiting stopped).
    pub running_tag: Option<String>,
    pub waited_secs: f64,
    pub error: Option<String>,
    /// What was followed: "service deployment", or "DescribeServices (why)" where the
    /// account or service has no service deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed: Option<String>,
    /// The service deployment followed, as last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<native::DeploymentView>,
    /// How ECS ended it when it rolled back or stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_rollback: Option<native::NativeRollback>,
}

/// What ECS runs for one service now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveImage {
    /// The service is not in the cluster (or is inactive).
    Missing { reason: String },
    /// Its task definition has no container of that name.
    NoContainer { task_definition: String },
    Running {
        image: String,
        task_definition: String,
        rollout_state: Option<String>,
        running: i32,
        desired: i32,
        deployments: usize,
    },
}

/// Where a rolled service stands, from one DescribeServices result.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SettleState {
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
fn settle_state(service: &Service, running_tag: Option<&str>, expected_tag: &str) -> SettleState {
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

/// One service to look up: the platform's name, the ECS service, the container.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub service: String,
    pub ecs_service: String,
    pub container: String,
}

/// ECS, for one cluster.
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    cluster: String,
    profile: Option<String>,
    images: std::sync::Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client, cluster: String, profile: Option<String>) -> Self {
        Self {
            client,
            cluster,
            profile,
            images: Default::default(),
        }
    }

    async fn describe(&self, ecs_service: &str) -> Result<Service> {
        let output = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(ecs_service)
            .send()
            .await
            .map_err(|err| {
                anyhow!(aws::explain(
                    "ecs:DescribeServices",
                    &err,
                    self.profile.as_deref()
                ))
            })
            .with_context(|| {
                format!(
                    "cannot describe ECS service {ecs_service} in cluster {}",
                    self.cluster
                )
            })?;
        // A missing service is not an API error: DescribeServices lists it in `failures`.
        if let Some(failure) = output.failures().first() {
            bail!(
                "ECS service {ecs_service} is not in cluster {} ({})",
                self.cluster,
                failure.reason().unwrap_or("MISSING")
            );
        }
        output
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
            .cloned()
            .with_context(|| {
                format!(
                    "ECS service {ecs_service} is not active in cluster {}",
                    self.cluster
                )
            })
    }

    /// What each service runs now: DescribeServices in batches of 10, then the task
    /// definitions, concurrently, so the whole read is a couple of round trips.
    pub async fn live_images(&self, lookups: &[Lookup]) -> Result<HashMap<String, LiveImage>> {
        use futures_util::StreamExt;
        let mut services: HashMap<String, Service> = HashMap::new();
        let mut missing: HashMap<String, String> = HashMap::new();
        let batches: Vec<Vec<String>> = lookups
            .chunks(10)
            .map(|chunk| chunk.iter().map(|l| l.ecs_service.clone()).collect())
            .collect();
        let described: Vec<Result<_>> = futures_util::stream::iter(batches)
            .map(|names| async move {
                self.client
                    .describe_services()
                    .cluster(&self.cluster)
                    .set_services(Some(names))
                    .send()
                    .await
                    .map_err(|err| {
                        anyhow!(aws::explain(
                            "ecs:DescribeServices",
                            &err,
                            self.profile.as_deref()
                        ))
                    })
                    .with_context(|| {
                        format!(
                            "cannot describe the ECS services of cluster {}",
                            self.cluster
                        )
                    })
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for output in described {
            let output = output?;
            for service in output.services() {
                if service.status() != Some("INACTIVE") {
                    if let Some(name) = service.service_name() {
                        services.insert(name.to_owned(), service.clone());
                    }
                }
            }
            for failure in output.failures() {
                let name = failure
                    .arn()
                    .and_then(|arn| arn.rsplit('/').next())
                    .unwrap_or_default();
                missing.insert(
                    name.to_owned(),
                    failure.reason().unwrap_or("MISSING").to_owned(),
                );
            }
        }
        let resolved: Vec<Result<(String, LiveImage)>> = futures_util::stream::iter(lookups.iter())
            .map(|lookup| {
                let service = services.get(&lookup.ecs_service).cloned();
                let reason = missing.get(&lookup.ecs_service).cloned();
                async move {
                    let Some(service) = service else {
                        let reason = reason.unwrap_or_else(|| "INACTIVE".into());
                        return Ok((
                            lookup.service.clone(),
                            LiveImage::Missing {
                                reason: format!(
                                    "ECS service {} not in cluster {} ({reason})",
                                    lookup.ecs_service, self.cluster
                                ),
                            },
                        ));
                    };
                    let task_definition = service.task_definition().unwrap_or_default().to_owned();
                    let image = self
                        .container_image(&task_definition, &lookup.container)
                        .await?;
                    let primary = service
                        .deployments()
                        .iter()
                        .find(|d| d.status() == Some("PRIMARY"));
                    let live = match image {
                        None => LiveImage::NoContainer { task_definition },
                        Some(image) => LiveImage::Running {
                            image,
                            task_definition,
                            rollout_state: primary
                                .and_then(|d| d.rollout_state())
                                .map(|s| s.as_str().to_owned()),
                            running: service.running_count(),
                            desired: service.desired_count(),
                            deployments: service.deployments().len(),
                        },
                    };
                    Ok((lookup.service.clone(), live))
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        resolved.into_iter().collect()
    }

    /// The image of `container` in a task definition (cached: definitions are immutable).
    /// The cache is not held across the request, so that the lookups of a survey run
    /// side by side (two of the same definition at once both ask; the answers agree).
    pub async fn container_image(
        &self,
        task_definition: &str,
        container: &str,
    ) -> Result<Option<String>> {
        let image_of = |containers: &[(String, String)]| {
            containers
                .iter()
                .find(|(name, _)| name == container)
                .map(|(_, image)| image.clone())
        };
        if let Some(containers) = self.images().get(task_definition) {
            return Ok(image_of(containers));
        }
        let output = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|err| {
                anyhow!(aws::explain(
                    "ecs:DescribeTaskDefinition",
                    &err,
                    self.profile.as_deref()
                ))
            })
            .with_context(|| format!("cannot describe task definition {task_definition}"))?;
        let containers: Vec<(String, String)> = output
            .task_definition()
            .map(|td| {
                td.container_definitions()
                    .iter()
                    .filter_map(|c| Some((c.name()?.to_owned(), c.image()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let image = image_of(&containers);
        self.images().insert(task_definition.to_owned(), containers);
        Ok(image)
    }

    /// Seeds the task definitions' containers already known (e.g. from a local cache:
    /// a task definition revision never changes, so its images never go stale).
    pub fn with_known(self, known: HashMap<String, Vec<(String, String)>>) -> Self {
        self.images().extend(known);
        self
    }

    /// Every task definition's containers (name, image) read or seeded so far.
    pub fn known(&self) -> HashMap<String, Vec<(String, String)>> {
        self.images().clone()
    }

    fn images(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(String, String)>>> {
        // A panic elsewhere cannot leave the map half-written: take it as it is.
        self.images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

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

#[cfg(test)]
mod tests;
