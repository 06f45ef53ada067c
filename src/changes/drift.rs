//! Drift, read: what each service runs (from the survey) against deploy's last roll of it
//! (the history records) and terraform's `image_tags` output, and, for a drifted service,
//! the ECS service deployment that put what runs there. The verdict is
//! [`crate::model::drift`]'s.

use std::collections::{BTreeMap, HashMap};

use crate::aws::ecs::{image_tag_of, Ecs, LiveImage};
use crate::aws::Aws;
use crate::changes::live::ServiceState;
use crate::model::config;
use crate::model::drift::{self, Running, ServiceDrift};
use crate::model::environment::{Environment, Outputs};
use crate::model::history::Record;
use crate::model::platform::Platform;

/// Terraform's recorded tag per service: the output `terraform.outputs.image_tags` (a
/// map of service to tag, or to image reference); `None` when there is no such output.
pub fn terraform_tags(platform: &Platform, outputs: &Outputs) -> Option<BTreeMap<String, String>> {
    let name = &platform.config.terraform.outputs.image_tags;
    let map = outputs.get(name)?.as_object()?;
    Some(
        map.iter()
            .filter_map(|(service, value)| {
                let value = value.as_str()?;
                let tag = if value.contains(':') || value.contains('/') {
                    image_tag_of(value)?
                } else {
                    value
                };
                Some((service.clone(), tag.to_owned()))
            })
            .collect(),
    )
}

/// What was compared, for the reader: where the recorded side came from.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sources {
    /// The history was read (`false`: no bucket, or not asked).
    pub history: bool,
    /// Terraform's `image_tags` output was read.
    pub terraform: bool,
    /// Why one of them was not, when it matters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The drift of every running service. `records` newest first (`None`: not read);
/// `digests`: the registry digests of what runs, by service, where known. Each drifted
/// service is named with the ECS service deployment that put what runs there, when
/// ECS has one whose target is the running task definition (its resolved digest then
/// wins over the registry's).
pub async fn survey(
    platform: &Platform,
    aws: &Aws,
    cluster: &str,
    services: &[ServiceState],
    records: Option<&[Record]>,
    terraform_tags: Option<&BTreeMap<String, String>>,
    digests: &HashMap<String, String>,
) -> Vec<ServiceDrift> {
    let ecs = Ecs::new(
        aws_sdk_ecs::Client::new(&aws.sdk),
        cluster.to_owned(),
        aws.profile.clone(),
    );
    let mut found = Vec::new();
    for state in services {
        let LiveImage::Running {
            image,
            task_definition,
            ..
        } = &state.live
        else {
            continue;
        };
        let running = Running {
            task_definition: task_definition.clone(),
            tag: image_tag_of(image).map(str::to_owned),
            digest: digests.get(&state.name).cloned(),
        };
        let recorded = records.and_then(|r| drift::last_recorded(r, &state.name));
        let terraform_tag = terraform_tags.and_then(|t| t.get(&state.name).cloned());
        let mut verdict = drift::verdict(&state.name, running, recorded, terraform_tag);
        if verdict.drifted {
            let ecs_service = config::expand(&platform.config.ecs.service, &state.name);
            match ecs.newest_deployment(&ecs_service).await {
                Ok(Some(seen)) if seen.task_definition.as_deref() == Some(task_definition) => {
                    let container = config::expand(&platform.config.ecs.container, &state.name);
                    if let Some(digest) = seen.digest_of(&container) {
                        verdict.running.digest = Some(digest.to_owned());
                    }
                    verdict.changed_by = Some(seen.describe());
                }
                Ok(_) => {}
                Err(why) => {
                    tracing::debug!(service = %state.name, %why, "no service deployment to name")
                }
            }
        }
        found.push(verdict);
    }
    found
}

/// The drifted ones among `drift`.
pub fn drifted(drift: &[ServiceDrift]) -> Vec<&ServiceDrift> {
    drift.iter().filter(|d| d.drifted).collect()
}

/// The recorded side of `environment`: its history records (the newest
/// [`RECORDS_READ`], from the bucket it already names) and terraform's tags in `outputs`
/// (already read: nothing asks terraform for them again). Neither is required: what
/// cannot be read is said in [`Sources::notes`].
pub async fn recorded(
    platform: &Platform,
    aws: &Aws,
    environment: &Environment,
    outputs: &Outputs,
) -> (
    Option<Vec<Record>>,
    Option<BTreeMap<String, String>>,
    Sources,
) {
    let mut sources = Sources::default();
    let tags = terraform_tags(platform, outputs);
    sources.terraform = tags.is_some();
    if tags.is_none() {
        sources.notes.push(format!(
            "terraform has no output {:?} (terraform.outputs.image_tags): only the history is compared",
            platform.config.terraform.outputs.image_tags
        ));
    }
    let records = match read_history(platform, aws, environment).await {
        Ok(records) => Some(records),
        Err(why) => {
            sources
                .notes
                .push(format!("the history was not read: {why}"));
            None
        }
    };
    sources.history = records.is_some();
    (records, tags, sources)
}

async fn read_history(
    platform: &Platform,
    aws: &Aws,
    environment: &Environment,
) -> Result<Vec<Record>, String> {
    if !platform.config.history.enabled {
        return Err("history.enabled is false".into());
    }
    let bucket = crate::changes::environment::history_bucket(platform, environment)
        .ok_or("no history bucket (history.bucket, lock.bucket, the deploy_lock_bucket output)")?;
    let name = match &environment.workspace {
        Some(name) => name.clone(),
        None => crate::changes::live::terraform(platform, aws.profile.as_deref())
            .selected_workspace()
            .await
            .map_err(|err| format!("no terraform workspace selected ({err:#})"))?,
    };
    let location = crate::aws::history::HistoryLocation::new(&bucket, &name);
    crate::aws::history::list(&aws.s3(), &location, RECORDS_READ)
        .await
        .map_err(|err| format!("{err:#}"))
}

/// How many records back the last roll of a service is looked for.
pub const RECORDS_READ: usize = 20;
