//! The run's record in the environment's history (issue 17): what each planned service
//! ran when the run took the lock (surveyed once, also what an automatic rollback
//! restores), written as `running` then, and rewritten with the outcome at the end.
//! Writing the history never fails a run: a failed write is a warning. `deploy undo`
//! reads it back here too.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use super::{Ready, Run};
use crate::aws::ecs::{image_tag_of, Ecs, LiveImage, Lookup};
use crate::aws::{ecr, history as store};
use crate::error::Interrupted;
use crate::model::config;
use crate::model::history::{
    self, ImageVersion, PlanSummary, Record, RestoreRecord, ServiceChange, SpaChange, State, Who,
};
use crate::model::plan::{Action, Plan, Undo};
use crate::model::platform::Checkout;
use crate::model::report::RunReport;

/// What ran before this run rolled anything, read under the lock.
#[derive(Debug, Default)]
pub(super) struct Before {
    /// Per planned service: the image ECS ran (`None`: not running, or unreadable).
    pub services: BTreeMap<String, Option<String>>,
    /// Per deploying SPA: the git SHA its bucket recorded.
    pub spas: BTreeMap<String, Option<String>>,
    /// Per deploying SPA: the number of its live release (`None`: none kept yet).
    pub spa_releases: BTreeMap<String, Option<u64>>,
    /// The registry digest of each image above.
    pub digests: HashMap<String, Option<String>>,
}

impl Before {
    /// The tag a service ran before the run, when known.
    pub fn tag_of(&self, service: &str) -> Option<&str> {
        self.services
            .get(service)
            .and_then(|image| image.as_deref())
            .and_then(image_tag_of)
    }
}

/// The record being kept for this run, and where.
pub(super) struct Ledger {
    s3: crate::aws::S3,
    bucket: String,
    record: Record,
}

impl Run<'_> {
    /// What each planned service runs now, and what each deploying SPA's bucket records.
    /// A read that fails is a warning: the run goes on, with less to record and
    /// nothing an automatic rollback could restore.
    pub(super) async fn survey_before(&self, ready: &Ready) -> Before {
        let mut before = Before::default();
        if self.plan.terraform.is_none() {
            return before;
        }
        let Ok(cluster) = ready.environment.cluster() else {
            return before;
        };
        let ecs_config = &self.platform.config.ecs;
        let lookups: Vec<Lookup> = self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(|s| Lookup {
                service: s.name.clone(),
                ecs_service: config::expand(&ecs_config.service, &s.name),
                container: config::expand(&ecs_config.container, &s.name),
            })
            .collect();
        let ecs = Ecs::new(
            aws_sdk_ecs::Client::new(&ready.aws.sdk),
            cluster.to_owned(),
            self.profile.clone(),
        );
        match ecs.live_images(&lookups).await {
            Ok(live) => {
                for (service, image) in live {
                    let image = match image {
                        LiveImage::Running { image, .. } => Some(image),
                        _ => None,
                    };
                    before.services.insert(service, image);
                }
            }
            Err(err) => self.progress.warn(&format!(
                "cannot read what the services run before the roll ({err:#}): the run record will not say, and no automatic rollback is possible"
            )),
        }
        let s3 = ready.aws.s3();
        for target in &ready.spas {
            let recorded =
                crate::spa::deployed_sha(&s3, Some(&target.manifest), &target.bucket).await;
            before
                .spas
                .insert(target.name.clone(), recorded.ok().flatten());
            let live = crate::spa::restore::live_release(&s3, &target.manifest).await;
            let number = live.ok().flatten().filter(|d| d.release).map(|d| d.number);
            before.spa_releases.insert(target.name.clone(), number);
        }
        let images: Vec<String> = before.services.values().flatten().cloned().collect();
        before.digests = self.digests(ready, images).await;
        before
    }

    /// The registry digest of each image (`None` where the registry did not say).
    async fn digests(&self, ready: &Ready, images: Vec<String>) -> HashMap<String, Option<String>> {
        let mut digests = HashMap::new();
        if images.is_empty() {
            return digests;
        }
        let client = aws_sdk_ecr::Client::new(&ready.aws.sdk);
        let access = match ecr::registry_access(
            &client,
            self.plan.registry.host.as_deref(),
            self.profile.as_deref(),
        )
        .await
        {
            Ok(access) => access,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "no registry access for digests");
                return digests;
            }
        };
        let registry = match access.registry_client() {
            Ok(registry) => registry,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "no registry client for digests");
                return digests;
            }
        };
        // `<host>/<repository>:<tag>` of this registry, asked of its HTTP API (no
        // Docker), side by side under one deadline.
        let mut asked = Vec::new();
        for image in images {
            let place = image
                .split_once('/')
                .filter(|(host, _)| *host == registry.host)
                .and_then(|(_, rest)| rest.rsplit_once(':'));
            match place {
                Some((repository, tag)) => asked.push((
                    image.clone(),
                    crate::registry::digests::Wanted {
                        host: registry.host.clone(),
                        repository: repository.to_owned(),
                        reference: tag.to_owned(),
                    },
                )),
                None => {
                    digests.insert(image, None);
                }
            }
        }
        let wanted: Vec<_> = asked.iter().map(|(_, wanted)| wanted.clone()).collect();
        let clients = std::collections::BTreeMap::from([(registry.host.clone(), registry)]);
        let answers = crate::registry::digests::lookup(&clients, &wanted).await;
        for ((image, _), answer) in asked.into_iter().zip(answers) {
            digests.insert(image, answer.ok().flatten());
        }
        digests
    }

    /// Writes the run's record as `running`. `None` when the environment keeps no
    /// history (`history.enabled = false`, no bucket, `--skip-tf`).
    pub(super) async fn open_ledger(&self, ready: &Ready, before: &Before) -> Option<Ledger> {
        let step = self.plan.terraform.as_ref()?;
        if !self.platform.config.history.enabled {
            return None;
        }
        let bucket = crate::commands::history::history_bucket(self.platform, &ready.environment)?;
        let record = new_record(
            self.plan,
            &step.apply.workspace,
            ready.caller_arn.as_deref().unwrap_or("?"),
            before,
        );
        let ledger = Ledger {
            s3: ready.aws.s3(),
            bucket,
            record,
        };
        self.write_record(&ledger).await;
        Some(ledger)
    }

    /// Rewrites the record with what the run did and how it ended.
    pub(super) async fn close_ledger(
        &self,
        ledger: Option<Ledger>,
        ready: &Ready,
        report: &RunReport,
        outcome: &Result<()>,
    ) {
        let Some(mut ledger) = ledger else {
            return;
        };
        let new_images: Vec<String> = report.images.iter().map(|i| i.image.clone()).collect();
        let digests = if report.applied {
            self.digests(ready, new_images).await
        } else {
            HashMap::new()
        };
        finish_record(&mut ledger.record, report, &digests, outcome);
        self.write_record(&ledger).await;
    }

    async fn write_record(&self, ledger: &Ledger) {
        if let Err(err) = store::write(&ledger.s3, &ledger.bucket, &ledger.record).await {
            self.progress.warn(&format!(
                "{err:#}; the run goes on without its history record"
            ));
        }
    }
}

/// The record of a run that just took the lock.
fn new_record(plan: &Plan, environment: &str, caller_arn: &str, before: &Before) -> Record {
    let services = plan
        .services
        .iter()
        .filter(|s| s.action == Action::Deploy)
        .map(|s| ServiceChange {
            service: s.name.clone(),
            previous: before
                .services
                .get(&s.name)
                .and_then(|image| image.as_ref())
                .and_then(|image| {
                    Some(ImageVersion {
                        tag: image_tag_of(image)?.to_owned(),
                        digest: before.digests.get(image).cloned().flatten(),
                    })
                }),
            new: ImageVersion {
                tag: plan.tag_of(&s.name).to_owned(),
                digest: None,
            },
            rolled: false,
            settled: None,
            ecs_deployment: None,
            ecs_ended: None,
            reconciled: None,
        })
        .collect();
    let spas = plan
        .spas
        .iter()
        .filter(|s| s.action == Action::Deploy)
        .map(|s| SpaChange {
            name: s.name.clone(),
            previous_sha: before.spas.get(&s.name).cloned().flatten(),
            new_sha: None,
            previous_release: before.spa_releases.get(&s.name).copied().flatten(),
            new_release: None,
            restored_from: None,
            live_since: None,
        })
        .collect();
    Record {
        format: history::FORMAT,
        run_id: history::new_run_id(),
        environment: environment.to_owned(),
        started: crate::timestamp::now_unix(),
        finished: None,
        state: State::Running,
        who: Who {
            caller_arn: caller_arn.to_owned(),
            user: crate::operator::user_name(),
            host: crate::operator::hostname(),
            pid: std::process::id(),
        },
        command: crate::model::plan::shell_words(std::env::args()),
        mode: plan.mode,
        head: plan.head.sha.clone(),
        image_tag: plan.image_tag.clone(),
        undo_of: plan.undo.as_ref().map(|undo| undo.run_id.clone()),
        services,
        spas,
        terraform: None,
        stages: Vec::new(),
        error: None,
        restore: None,
    }
}

/// What the run did, from its report, and how it ended.
fn finish_record(
    record: &mut Record,
    report: &RunReport,
    digests: &HashMap<String, Option<String>>,
    outcome: &Result<()>,
) {
    record.finished = Some(crate::timestamp::now_unix());
    record.state = match outcome {
        Ok(()) => State::Succeeded,
        Err(err) if err.is::<Interrupted>() => State::Interrupted,
        Err(_) => State::Failed,
    };
    record.error = outcome.as_ref().err().map(|err| format!("{err:#}"));
    for change in &mut record.services {
        change.rolled = report.applied;
        let rollout = report.rollouts.iter().find(|r| r.service == change.service);
        change.settled = rollout.map(|r| r.steady);
        change.ecs_deployment = rollout.and_then(|r| {
            r.deployment.as_ref().map(|d| {
                format!(
                    "{} {}{} ({})",
                    d.strategy,
                    d.status,
                    d.stage
                        .as_deref()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default(),
                    d.arn
                )
            })
        });
        change.ecs_ended = rollout.and_then(|r| r.native_rollback.as_ref().map(|n| n.headline()));
        change.reconciled = report
            .reconcile
            .as_ref()
            .filter(|r| r.applied)
            .and_then(|r| r.tags.iter().find(|(s, _)| *s == change.service))
            .map(|(_, tag)| tag.clone());
        if let Some(image) = report.images.iter().find(|i| i.service == change.service) {
            change.new.digest = digests.get(&image.image).cloned().flatten();
        }
    }
    for spa in &mut record.spas {
        let done = report.spas.iter().find(|s| s.name == spa.name);
        spa.new_sha = done.map(|s| s.git_sha.clone());
        spa.new_release = done.and_then(|s| s.release);
        spa.restored_from = done.and_then(|s| s.restored_from);
        spa.live_since = done.and_then(|s| s.live_since.clone());
    }
    record.terraform = report.review.as_ref().map(|review| PlanSummary {
        services: review
            .services
            .iter()
            .filter(|s| !s.resources.is_empty())
            .map(|s| s.service.clone())
            .collect(),
        other: review.other.iter().map(ToString::to_string).collect(),
        destroyed: review.destroyed.clone(),
    });
    record.stages = report.stages.clone();
    record.restore = report.restore.as_ref().map(|restore| RestoreRecord {
        tags: restore.tags.clone(),
        settled: restore.settled(),
        error: restore.error.clone(),
    });
}

/// `deploy undo`: the history decides the plan. The newest run of the environment that
/// succeeded and changed a service is undone: each service it changed goes back to the
/// tag it ran before it.
pub(super) async fn decide_undo(
    plan: &mut Plan,
    checkout: &Checkout,
    profile: Option<&str>,
) -> Result<()> {
    let platform = &checkout.platform;
    let Some(step) = &plan.terraform else {
        bail!("deploy undo rolls with terraform: it needs --var-file");
    };
    let environment = step.apply.workspace.clone();
    let (records, location, _) =
        crate::commands::history::read_records(platform, profile, &environment, UNDO_DEPTH).await?;
    let Some(last) = history::last_undoable(&records) else {
        bail!(
            "nothing to undo in {environment}: none of its {} newest recorded runs (s3://{}/{}) succeeded and changed a service or an SPA. `deploy history --var-file {}` lists them",
            records.len(),
            location.bucket,
            location.prefix(),
            step.apply.var_file.display()
        );
    };
    let (restorable, mut left) = last.restore_set();
    // Only services this checkout still deploys: terraform targets them by name.
    let mut tags = Vec::new();
    for (service, tag) in restorable {
        if platform.services.iter().any(|s| s.name == service) {
            tags.push((service, tag));
        } else {
            left.push((service, "no longer a service of this checkout".to_owned()));
        }
    }
    let spa_set = last.spa_undo_set();
    let restores_spas = spa_set.iter().any(|(name, undo)| {
        !matches!(undo, history::SpaUndo::Leave(_))
            && plan
                .spas
                .iter()
                .any(|s| &s.name == name && s.action == Action::Check)
    });
    if tags.is_empty() && !restores_spas {
        bail!(
            "cannot undo run {} of {environment}: none of the services it changed can be restored ({}). Nothing was touched",
            last.run_id,
            left.iter()
                .map(|(service, why)| format!("{service}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let undo = Undo {
        run_id: last.run_id.clone(),
        tags: tags.into_iter().collect(),
        left,
    };
    let run_id = undo.run_id.clone();
    plan.restore(undo, &platform.config.terraform);
    super::spa_restore::decide_undo(plan, checkout, profile, spa_set, &run_id).await
}

/// How many of the newest records `deploy undo` looks through.
const UNDO_DEPTH: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_before_comes_from_the_image_ecs_ran() {
        let mut before = Before::default();
        before
            .services
            .insert("api".into(), Some("127.0.0.1:5000/api:abc1234".into()));
        before.services.insert("auth".into(), None);
        assert_eq!(before.tag_of("api"), Some("abc1234"));
        assert_eq!(before.tag_of("auth"), None);
        assert_eq!(before.tag_of("files"), None);
    }
}
