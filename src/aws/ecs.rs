//! ECS: the image a service runs, and waiting for a rolled service to settle on the new
//! tag (the runbook's "ECS services reach a steady state", automated): through the
//! service deployment our apply caused (`native`), else through `DescribeServices`
//! (`settle`).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_ecs::types::Service;
use serde::Serialize;

use crate::aws;

mod drift;
pub mod native;
mod settle;

pub use drift::DeploymentSeen;

#[cfg(test)]
use settle::{settle_state, SettleState};

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
    /// Alarms `[alarms]` of deploy.toml watches during the wait (`native::watch`).
    pub watched_alarms: Vec<String>,
    /// Pause hooks already answered (`deploy continue`): ECS may still list them for a
    /// moment, and they are no pause to stop at.
    pub answered_hooks: Vec<String>,
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
}

#[cfg(test)]
mod tests;
