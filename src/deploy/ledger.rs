//! The run's record in the environment's history (issue 17): what each planned service
//! ran when the run took the lock (surveyed once, also what an automatic rollback
//! restores), written as `running` then, and rewritten with the outcome at the end.
//! Writing the history never fails a run: a failed write is a warning. `deploy undo`
//! reads it back here too.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};

use super::run::{Ready, Run};
use crate::aws::ecs::{image_tag_of, Ecs, LiveImage, Lookup};
use crate::aws::{ecr, history as store, Contexts};
use crate::checkout::Checkout;
use crate::model::config;
use crate::model::history::{self, ImageVersion, Record, ServiceTags, UndoSet, Who};
use crate::model::plan::{Action, Plan};
use crate::report::record::{self, Opening, Previous};
use crate::report::RunReport;

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

    /// What ran before, as the run's record says it: each service's tag and digest,
    /// each SPA's recorded SHA and live release.
    pub fn previous(&self) -> Previous {
        let services = self
            .services
            .iter()
            .filter_map(|(service, image)| {
                let image = image.as_ref()?;
                let version = ImageVersion {
                    tag: image_tag_of(image)?.to_owned(),
                    digest: self.digests.get(image).cloned().flatten(),
                };
                Some((service.clone(), version))
            })
            .collect();
        let flatten = |map: &BTreeMap<String, Option<String>>| {
            map.iter()
                .filter_map(|(name, sha)| Some((name.clone(), sha.clone()?)))
                .collect()
        };
        Previous {
            services,
            spa_shas: flatten(&self.spas),
            spa_releases: self
                .spa_releases
                .iter()
                .filter_map(|(name, number)| Some((name.clone(), (*number)?)))
                .collect(),
        }
    }

    /// The restore set of the automatic rollback: of `rolled` (each service the run
    /// rolled, with the tag it rolled it to), those that ran another tag before, each
    /// back to it; and those that ran nothing readable, with why. A service that ran
    /// its new tag already is neither.
    pub fn restore_set<'a>(
        &self,
        rolled: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (BTreeMap<String, String>, ServiceTags) {
        let mut tags = BTreeMap::new();
        let mut left = Vec::new();
        for (service, new) in rolled {
            match self.tag_of(service) {
                Some(old) if old == new => {}
                Some(old) => {
                    tags.insert(service.to_owned(), old.to_owned());
                }
                None => left.push((
                    service.to_owned(),
                    "ran nothing readable before this run (no ECS service, or no tag)".to_owned(),
                )),
            }
        }
        (tags, left)
    }

    /// The reconcile set after ECS rolled `services` back by itself: each to the tag it
    /// ran before this run; those that ran nothing readable, with why.
    pub fn reconcile_set(&self, services: Vec<String>) -> (BTreeMap<String, String>, ServiceTags) {
        let mut tags = BTreeMap::new();
        let mut left = Vec::new();
        for service in services {
            match self.tag_of(&service) {
                Some(old) => {
                    tags.insert(service, old.to_owned());
                }
                None => left.push((
                    service,
                    "ran nothing readable before this run: re-apply by hand".to_owned(),
                )),
            }
        }
        (tags, left)
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
            .deploying_services()
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
        let bucket =
            crate::changes::environment::history_bucket(self.platform, &ready.environment)?;
        let opening = Opening {
            run_id: new_run_id(),
            environment: step.apply.workspace.clone(),
            started: crate::timestamp::now_unix(),
            who: Who {
                caller_arn: ready.caller_arn.as_deref().unwrap_or("?").to_owned(),
                user: crate::operator::user_name(),
                host: crate::operator::hostname(),
                pid: std::process::id(),
            },
            command: crate::model::plan::shell_words(std::env::args()),
        };
        let record = record::opened(self.plan, opening, &before.previous());
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
        let now = crate::timestamp::now_unix();
        record::finished(&mut ledger.record, report, &digests, outcome, now);
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

/// A random run id (16 hex digits): the clock's nanoseconds and the pid.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}{:08x}", std::process::id())
}

/// `deploy undo`: the history decides the plan ([`history::undo_set`]). The newest run
/// of the environment that succeeded and changed a service is undone (or the run
/// `undo_of` names: `continue --rollback`'s reconcile): each service it changed goes
/// back to the tag it ran before it.
pub(super) async fn decide_undo(
    plan: &mut Plan,
    checkout: &Checkout,
    (selection, undo_of): (&crate::model::plan::Selection, Option<&str>),
    contexts: &Contexts,
    profile: Option<&str>,
) -> Result<()> {
    let platform = &checkout.platform;
    let Some(step) = &plan.terraform else {
        bail!("deploy undo rolls with terraform: it needs --var-file");
    };
    let environment = step.apply.workspace.clone();
    let aws = contexts.get(profile).await;
    let (records, location, _) =
        crate::changes::environment::read_records(platform, &aws, &environment, UNDO_DEPTH).await?;
    let services: Vec<&str> = platform.services.iter().map(|s| s.name.as_str()).collect();
    let checked_spas: Vec<&str> = plan
        .spas_to(Action::Check)
        .map(|s| s.name.as_str())
        .collect();
    let listed = format!("s3://{}/{}", location.bucket, location.prefix());
    let var_file = step.apply.var_file.display().to_string();
    let source = history::UndoSource {
        environment: &environment,
        location: &listed,
        var_file: &var_file,
        run_id: undo_of,
    };
    let named = match selection {
        crate::model::plan::Selection::Named(names) => Some(names.as_slice()),
        _ => None,
    };
    let UndoSet { undo, spas } =
        history::undo_set(&records, &services, named, &checked_spas, source)?;
    let run_id = undo.run_id.clone();
    plan.restore(undo, &platform.config.terraform);
    super::spa_restore::decide_undo(plan, checkout, contexts, profile, spas, &run_id).await
}

/// How many of the newest records `deploy undo` looks through.
const UNDO_DEPTH: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    fn before() -> Before {
        let mut before = Before::default();
        for (service, image) in [
            ("api", Some("127.0.0.1:5000/api:abc1234")),
            ("auth", None),
            ("billing", Some("127.0.0.1:5000/billing:fffffff")),
            ("files", Some("127.0.0.1:5000/files")),
        ] {
            before
                .services
                .insert(service.into(), image.map(str::to_owned));
        }
        before.digests.insert(
            "127.0.0.1:5000/api:abc1234".into(),
            Some("sha256:aa".into()),
        );
        before
    }

    #[test]
    fn the_tag_before_comes_from_the_image_ecs_ran() {
        let before = before();
        assert_eq!(before.tag_of("api"), Some("abc1234"));
        assert_eq!(before.tag_of("auth"), None);
        assert_eq!(before.tag_of("files"), None);
        assert_eq!(before.tag_of("webhooks"), None);
    }

    #[test]
    fn the_restore_set_is_what_ran_another_tag_before() {
        let rolled = [
            ("api", "fffffff"),
            ("auth", "fffffff"),
            ("billing", "fffffff"),
            ("files", "fffffff"),
            ("webhooks", "fffffff"),
        ];
        let (tags, left) = before().restore_set(rolled);
        assert_eq!(
            tags,
            BTreeMap::from([("api".to_owned(), "abc1234".to_owned())])
        );
        // billing ran its new tag already: neither restored nor left.
        let why = "ran nothing readable before this run (no ECS service, or no tag)";
        let left: Vec<(&str, &str)> = left.iter().map(|(s, w)| (s.as_str(), w.as_str())).collect();
        assert_eq!(left, [("auth", why), ("files", why), ("webhooks", why)]);
        let (tags, left) = before().restore_set([]);
        assert!(tags.is_empty() && left.is_empty());
    }

    #[test]
    fn the_reconcile_set_is_each_rolled_back_service_at_its_tag_before() {
        let (tags, left) = before().reconcile_set(vec!["api".into(), "auth".into()]);
        assert_eq!(
            tags,
            BTreeMap::from([("api".to_owned(), "abc1234".to_owned())])
        );
        assert_eq!(
            left,
            [(
                "auth".to_owned(),
                "ran nothing readable before this run: re-apply by hand".to_owned()
            )]
        );
    }

    #[test]
    fn the_record_is_told_each_tag_and_digest_before() {
        let mut before = before();
        before.spas.insert("admin-ui".into(), Some("a".repeat(40)));
        before.spas.insert("simulator".into(), None);
        before.spa_releases.insert("admin-ui".into(), Some(3));
        before.spa_releases.insert("simulator".into(), None);
        let previous = before.previous();
        let services: Vec<(&str, &str, Option<&str>)> = previous
            .services
            .iter()
            .map(|(s, v)| (s.as_str(), v.tag.as_str(), v.digest.as_deref()))
            .collect();
        assert_eq!(
            services,
            [
                ("api", "abc1234", Some("sha256:aa")),
                ("billing", "fffffff", None)
            ]
        );
        assert_eq!(
            previous.spa_shas,
            BTreeMap::from([("admin-ui".to_owned(), "a".repeat(40))])
        );
        assert_eq!(
            previous.spa_releases,
            BTreeMap::from([("admin-ui".to_owned(), 3)])
        );
    }
}
