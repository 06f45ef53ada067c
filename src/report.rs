//! The end-of-run report: what was built, pushed, rolled and verified, per service and
//! per SPA. Printed as a table, or as JSON with `--output json`, also after a failure,
//! so that it always says what was and was not done. It sits above the adapters (and
//! not in `model`): it gathers their outcomes (images, rollouts, health checks, the
//! reviewed terraform plan, the images copied).

mod done;
pub mod record;

pub use done::{Done, RunDocument, ServiceDone, SpaDone};

use std::fmt;

use serde::Serialize;

use crate::aws::ecs::Settled;
use crate::docker::images::{ImageResult, ImageStatus};
use crate::model::history::Stage;
use crate::model::plan::{Action, Mode, Plan};
use crate::registry::CopyReport;
use crate::terraform::Review;
use crate::ui::style::{Cell, Tone};
use crate::ui::table::write_table;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Whether the run got past preflight and the lock: from there on, the summary
    /// is printed whatever happens.
    #[serde(skip)]
    pub began: bool,
    pub plan: Plan,
    pub images: Vec<ImageResult>,
    /// Whether the terraform apply ran to completion.
    pub applied: bool,
    /// How long that apply took: the roll of every service at once.
    pub apply_secs: Option<f64>,
    /// When that apply began: the service deployments created since are its own.
    #[serde(skip)]
    pub roll_started: Option<std::time::SystemTime>,
    pub rollouts: Vec<Settled>,
    pub health: Vec<crate::health::Check>,
    pub spas: Vec<SpaResult>,
    /// The roll's terraform plan, reviewed in preflight (`None` with `--skip-tf`, or
    /// when preflight stopped before it).
    pub review: Option<Review>,
    /// `deploy promote`: each image copied, by digest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopiedImage>,
    /// Seconds per stage, in the order they ran.
    pub stages: Vec<Stage>,
    /// The automatic rollback after a failed verify (`--rollback-on-failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreReport>,
    /// After ECS rolled services back by itself: their previous tags re-applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<RestoreReport>,
}

/// One image copied, for the summary and `--output json`.
#[derive(Debug, Clone, Serialize)]
pub struct CopiedImage {
    pub service: String,
    pub tag: String,
    #[serde(flatten)]
    pub copy: CopyReport,
}

/// The automatic rollback: the services this run changed, back to their tags before it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    /// Service → the tag it is restored to.
    pub tags: Vec<(String, String)>,
    /// Services that failed but cannot be restored, with why.
    pub left: Vec<(String, String)>,
    /// Whether the restore's terraform apply ran to completion.
    pub applied: bool,
    pub rollouts: Vec<Settled>,
    pub health: Vec<crate::health::Check>,
    /// Why the restore did not finish (planned, applied, settled and healthy).
    pub error: Option<String>,
}

impl RestoreReport {
    /// Whether every restored service settled on its old tag (and answered its checks).
    pub fn settled(&self) -> bool {
        self.applied
            && self.error.is_none()
            && self.rollouts.iter().all(|r| r.steady)
            && self.health.iter().all(|c| c.error.is_none())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SpaResult {
    pub name: String,
    pub bucket: String,
    /// What the upload recorded: HEAD's SHA, or `<sha>-dirty`.
    pub git_sha: String,
    pub uploaded: usize,
    pub unchanged: usize,
    /// The release now live (its number in the SPA's manifest).
    #[serde(default)]
    pub release: Option<u64>,
    /// A restore (`deploy rollback`, `deploy undo`): the release put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// When the release went live (RFC 3339, UTC).
    #[serde(default)]
    pub live_since: Option<String>,
    /// The invalidation created, if one was.
    pub invalidation_id: Option<String>,
    pub invalidation: Invalidation,
}

/// What happened on CloudFront after an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Invalidation {
    Created {
        id: String,
    },
    /// No entry point changed and no file was removed: nothing cached went stale.
    NotNeeded,
    /// The SPA has no distribution (config or terraform output).
    NoDistribution,
}

impl Invalidation {
    /// The id of the invalidation created, if one was.
    pub fn id(&self) -> Option<String> {
        match self {
            Invalidation::Created { id } => Some(id.clone()),
            Invalidation::NotNeeded | Invalidation::NoDistribution => None,
        }
    }
}

impl fmt::Display for Invalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalidation::Created { id } => f.write_str(id),
            Invalidation::NotNeeded => f.write_str("not needed (no entry point changed)"),
            Invalidation::NoDistribution => f.write_str("- (no distribution)"),
        }
    }
}

impl RunReport {
    pub fn new(plan: &Plan) -> Self {
        Self {
            began: false,
            plan: plan.clone(),
            images: Vec::new(),
            applied: false,
            apply_secs: None,
            roll_started: None,
            rollouts: Vec::new(),
            health: Vec::new(),
            spas: Vec::new(),
            review: None,
            copies: Vec::new(),
            stages: Vec::new(),
            restore: None,
            reconcile: None,
        }
    }

    /// Records how long a stage took, from `started`.
    pub fn stage(&mut self, name: &str, started: std::time::Instant) {
        self.stages.push(Stage {
            name: name.to_owned(),
            secs: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        });
    }

    fn rolled(&self, service: &str) -> bool {
        self.applied
            && self
                .plan
                .services
                .iter()
                .any(|s| s.name == service && s.action == Action::Deploy)
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plan.undo {
            Some(undo) => writeln!(f, "\nSummary: undo of run {}", undo.run_id)?,
            None => writeln!(
                f,
                "\nSummary: {} {} {}",
                self.plan.mode,
                if self.plan.mode == Mode::Rollback {
                    "to"
                } else {
                    "of"
                },
                self.plan.image_tag
            )?,
        }
        let mut rows = Vec::new();
        for step in self.plan.deploying_services() {
            let image = self.images.iter().find(|i| i.service == step.name);
            let rollout = self.rollouts.iter().find(|r| r.service == step.name);
            let push = match image.map(|i| i.status) {
                Some(ImageStatus::Pushed) => Cell::new(
                    image.map_or_else(String::new, ImageResult::pushed_words),
                    Tone::Done,
                ),
                Some(ImageStatus::Copied) => Cell::new("copied by digest", Tone::Done),
                Some(ImageStatus::AlreadyInRegistry) => {
                    Cell::new("already in registry", Tone::Known)
                }
                Some(ImageStatus::Failed) => Cell::new("FAILED", Tone::Failed),
                Some(ImageStatus::NotStarted) | None => Cell::new("not done", Tone::Pending),
            };
            let rolled = if self.plan.terraform.is_none() {
                Cell::new("skipped (--skip-tf)", Tone::Skipped)
            } else if self.rolled(&step.name) {
                Cell::new("yes", Tone::Done)
            } else {
                Cell::plain("no")
            };
            let steady = match rollout {
                Some(r) if r.steady => Cell::new(
                    format!("yes (:{})", r.running_tag.as_deref().unwrap_or("?")),
                    Tone::Done,
                ),
                Some(r) => Cell::new(
                    format!("NO (:{})", r.running_tag.as_deref().unwrap_or("?")),
                    Tone::Failed,
                ),
                None => Cell::none(),
            };
            let checks: Vec<_> = self
                .health
                .iter()
                .filter(|c| c.service == step.name)
                .collect();
            let health = if checks.is_empty() {
                Cell::none()
            } else if checks.iter().all(|c| c.healthy) {
                Cell::new("yes", Tone::Done)
            } else {
                Cell::new("NO", Tone::Failed)
            };
            // What was timed for this service alone: its build, push and ECS wait. A
            // rollback or a resumed run builds nothing, and that is "-", not "0.0s".
            let timed: Vec<f64> = [
                image.and_then(|i| i.build_secs),
                image.and_then(|i| i.push_secs),
                rollout.map(|r| r.waited_secs),
            ]
            .into_iter()
            .flatten()
            .collect();
            let time = match timed.iter().sum::<f64>() {
                _ if timed.is_empty() => Cell::none(),
                secs if secs < 0.05 => Cell::plain("<0.1s"),
                secs => Cell::plain(format!("{secs:.1}s")),
            };
            rows.push([
                Cell::plain(&step.name),
                Cell::plain(image.map_or(&step.image, |i| &i.image)),
                push,
                rolled,
                steady,
                health,
                time,
            ]);
        }
        write_table(
            f,
            [
                "SERVICE",
                "IMAGE",
                "BUILD/PUSH",
                "ROLLED",
                "STEADY",
                "HEALTHY",
                "TIME",
            ],
            &rows,
        )?;
        if let Some(secs) = self.apply_secs {
            writeln!(
                f,
                "terraform apply (every service above at once): {secs:.1}s"
            )?;
        }
        let accepted = self
            .review
            .as_ref()
            .map(Review::needs_acceptance)
            .unwrap_or_default();
        if !accepted.is_empty() {
            // Only a run given --allow-infra-changes gets this far with any.
            writeln!(
                f,
                "outside the deployment, accepted with --allow-infra-changes ({}):",
                if self.applied {
                    "applied"
                } else {
                    "NOT applied"
                }
            )?;
            for change in &accepted {
                writeln!(f, "  {change}")?;
            }
        }
        if let Some(restore) = &self.restore {
            writeln!(
                f,
                "\nAutomatic rollback: {}",
                if restore.settled() {
                    "restored"
                } else {
                    "FAILED"
                }
            )?;
            let rows: Vec<[Cell; 3]> = restore
                .tags
                .iter()
                .map(|(service, tag)| {
                    let settled = match restore.rollouts.iter().find(|r| &r.service == service) {
                        Some(r) if r.steady => Cell::new(format!("yes (:{tag})"), Tone::Done),
                        Some(r) => Cell::new(
                            format!("NO (:{})", r.running_tag.as_deref().unwrap_or("?")),
                            Tone::Failed,
                        ),
                        None => Cell::new("not verified", Tone::Pending),
                    };
                    [
                        Cell::plain(service),
                        Cell::plain(format!(":{tag}")),
                        settled,
                    ]
                })
                .collect();
            write_table(f, ["SERVICE", "RESTORED TO", "STEADY"], &rows)?;
            for (service, why) in &restore.left {
                writeln!(f, "not restored: {service} ({why})")?;
            }
        }
        if !self.spas.is_empty() {
            writeln!(f)?;
            let mut rows = Vec::new();
            for spa in &self.spas {
                let invalidation = match spa.invalidation {
                    Invalidation::NoDistribution => Tone::Skipped,
                    Invalidation::Created { .. } | Invalidation::NotNeeded => Tone::Plain,
                };
                let short = &spa.git_sha[..spa.git_sha.len().min(7)];
                let release = match (spa.release, spa.restored_from) {
                    (Some(number), Some(from)) => format!("#{number} = #{from} ({short})"),
                    (Some(number), None) => format!("#{number} ({short})"),
                    (None, _) => short.to_owned(),
                };
                rows.push([
                    Cell::plain(&spa.name),
                    Cell::plain(&spa.bucket),
                    Cell::plain(spa.uploaded.to_string()),
                    Cell::plain(spa.unchanged.to_string()),
                    Cell::new(spa.invalidation.to_string(), invalidation),
                    Cell::plain(release),
                ]);
            }
            write_table(
                f,
                [
                    "SPA",
                    "BUCKET",
                    "UPLOADED",
                    "UNCHANGED",
                    "INVALIDATION",
                    "RELEASE",
                ],
                &rows,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::plan::Decision;
    use crate::planning::tests::{fixture, plan};
    use crate::request::Selection;

    fn image(service: &str, status: ImageStatus, secs: Option<(f64, f64)>) -> ImageResult {
        ImageResult {
            service: service.to_owned(),
            image: format!("127.0.0.1:5000/{service}:0123456"),
            status,
            build_secs: secs.map(|(build, _)| build),
            push_secs: secs.map(|(_, push)| push),
            error: None,
            dependency_stage: None,
        }
    }

    fn settled(service: &str, tag: &str, steady: bool) -> Settled {
        Settled {
            service: service.to_owned(),
            steady,
            running_tag: Some(tag.to_owned()),
            waited_secs: 30.0,
            error: None,
            followed: None,
            deployment: None,
            native_rollback: None,
        }
    }

    fn health(service: &str, healthy: bool) -> crate::health::Check {
        crate::health::Check {
            service: service.to_owned(),
            url: format!("http://127.0.0.1/{service}/health"),
            status: Some(if healthy { 200 } else { 503 }),
            healthy,
            error: None,
        }
    }

    fn table(report: &RunReport) -> String {
        crate::ui::table::without_colour(&report.to_string())
    }

    /// `--changed` deploying api, auth and billing, the others skipped.
    fn changed_run() -> RunReport {
        let mut plan = plan(Selection::Changed, false, false).unwrap();
        let decisions = plan
            .services
            .iter()
            .map(|s| {
                let decision = match s.name.as_str() {
                    "api" | "auth" | "billing" => Decision::deploy("changed"),
                    _ => Decision::skip("unchanged"),
                };
                (s.name.clone(), decision)
            })
            .collect();
        plan.decide(decisions, &Default::default(), &fixture().config.terraform);
        RunReport::new(&plan)
    }

    #[test]
    fn the_summary_of_a_run_that_rolled() {
        let mut report = changed_run();
        report.images = vec![
            image("api", ImageStatus::Pushed, Some((41.25, 3.5))),
            image("auth", ImageStatus::AlreadyInRegistry, None),
            image("billing", ImageStatus::Pushed, Some((0.01, 0.02))),
        ];
        report.applied = true;
        report.apply_secs = Some(8.04);
        report.rollouts = vec![
            settled("api", "0123456", true),
            // The circuit breaker put auth back on its old tag.
            settled("auth", "fedcba9", false),
        ];
        report.health = vec![health("api", true), health("billing", false)];
        report.spas = vec![SpaResult {
            name: "admin-ui".into(),
            bucket: "admin-ui-sandbox".into(),
            git_sha: "0123456789abcdef0123456789abcdef01234567".into(),
            uploaded: 3,
            unchanged: 12,
            release: Some(4),
            restored_from: None,
            live_since: Some("2026-12-01T19:03:00Z".into()),
            invalidation_id: Some("I2J0I21PCUYOIK".into()),
            invalidation: Invalidation::Created {
                id: "I2J0I21PCUYOIK".into(),
            },
        }];
        insta::assert_snapshot!(table(&report));
    }

    #[test]
    fn the_summary_of_a_run_that_failed_before_the_apply() {
        let mut report = changed_run();
        report.images = vec![
            image("api", ImageStatus::Pushed, Some((12.0, 2.0))),
            image("auth", ImageStatus::Failed, Some((5.0, 0.0))),
            image("billing", ImageStatus::NotStarted, None),
        ];
        insta::assert_snapshot!(table(&report));
    }
}
