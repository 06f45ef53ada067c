//! The end-of-run report: what was built, pushed, rolled and verified, per service and
//! per SPA. Printed as a table, or as JSON with `--output json`, also after a failure,
//! so that it always says what was and was not done.

use std::fmt;

use serde::Serialize;

use crate::aws::ecs::Settled;
use crate::docker::images::{ImageResult, ImageStatus};
use crate::model::plan::{write_table, Action, Mode, Plan};
use crate::ui::style::{Cell, Tone};

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
    pub rollouts: Vec<Settled>,
    pub health: Vec<crate::health::Check>,
    pub spas: Vec<SpaResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpaResult {
    pub name: String,
    pub bucket: String,
    /// What the upload recorded: HEAD's SHA, or `<sha>-dirty`.
    pub git_sha: String,
    pub uploaded: usize,
    pub unchanged: usize,
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
            rollouts: Vec::new(),
            health: Vec::new(),
            spas: Vec::new(),
        }
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
        writeln!(
            f,
            "\nSummary: {} {} {}",
            self.plan.mode,
            if self.plan.mode == Mode::Rollback {
                "to"
            } else {
                "of"
            },
            self.plan.image_tag
        )?;
        let mut rows = Vec::new();
        for step in self
            .plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
        {
            let image = self.images.iter().find(|i| i.service == step.name);
            let rollout = self.rollouts.iter().find(|r| r.service == step.name);
            let push = match image.map(|i| i.status) {
                Some(ImageStatus::Pushed) => Cell::new("built, pushed", Tone::Done),
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
        if !self.spas.is_empty() {
            writeln!(f)?;
            let mut rows = Vec::new();
            for spa in &self.spas {
                let invalidation = match spa.invalidation {
                    Invalidation::NoDistribution => Tone::Skipped,
                    Invalidation::Created { .. } | Invalidation::NotNeeded => Tone::Plain,
                };
                rows.push([
                    Cell::plain(&spa.name),
                    Cell::plain(&spa.bucket),
                    Cell::plain(spa.uploaded.to_string()),
                    Cell::plain(spa.unchanged.to_string()),
                    Cell::new(spa.invalidation.to_string(), invalidation),
                ]);
            }
            write_table(
                f,
                ["SPA", "BUCKET", "UPLOADED", "UNCHANGED", "INVALIDATION"],
                &rows,
            )?;
        }
        Ok(())
    }
}
