//! One run's inputs, resolved ([`Run`]), and what preflight found out ([`Ready`]): the
//! two values every step reads. The steps are `impl Run` blocks in their own modules.

use anyhow::Result;

use super::source::ImageSource;
use super::stages::Stages;
use crate::checkout::Checkout;
use crate::docker::engine::Engine;
use crate::docker::images::ImageResult;
use crate::error::{Interrupted, Stage};
use crate::git::Repo;
use crate::model::environment::{Environment, Outputs};
use crate::model::plan::Plan;
use crate::model::platform::Platform;
use crate::request::Request;
use crate::spa::SpaTarget;
use crate::terraform::{Review, Terraform};
use crate::ui::progress::Progress;

/// One run's inputs, resolved.
pub(super) struct Run<'a> {
    pub platform: &'a Platform,
    pub request: &'a Request,
    pub plan: &'a Plan,
    pub profile: Option<String>,
    /// The run's AWS contexts, shared with the step that decided the plan: each profile
    /// is loaded once.
    pub contexts: crate::aws::Contexts,
    /// The environment's terraform outputs, when `--changed` has read them already.
    pub outputs: Option<Outputs>,
    pub progress: &'a Progress,
    pub log_dir: std::path::PathBuf,
    /// Where the images rolled come from: built, found in the registry, or copied.
    pub source: ImageSource,
    /// The stage the run is in, read by the webhook when the run ends.
    pub stages: Stages,
}

impl<'a> Run<'a> {
    pub fn new(
        checkout: &'a Checkout,
        request: &'a Request,
        plan: &'a Plan,
        (profile, contexts): (Option<String>, crate::aws::Contexts),
        outputs: Option<Outputs>,
        progress: &'a Progress,
    ) -> Self {
        Self {
            platform: &checkout.platform,
            request,
            plan,
            profile,
            contexts,
            outputs,
            progress,
            log_dir: log_dir(&checkout.repo, plan),
            source: ImageSource::of(plan.mode),
            stages: Stages::default(),
        }
    }

    /// `--rollback-on-failure`, or `verify.rollback_on_failure` in deploy.toml.
    pub fn rollback_on_failure(&self) -> bool {
        self.request.rollback_on_failure || self.platform.config.verify.rollback_on_failure
    }
}

/// What preflight found out.
pub(super) struct Ready {
    pub aws: crate::aws::Aws,
    /// The Docker daemon; a promotion needs none.
    pub engine: Option<Engine>,
    /// Terraform, when this run rolls services.
    pub terraform: Option<Terraform>,
    /// The cluster, the health URL, the private bucket and the SPA buckets.
    pub environment: Environment,
    /// The SPAs to build and upload, with their buckets and distributions.
    pub spas: Vec<SpaTarget>,
    /// `deploy rollback` and `deploy undo`: the images rolled, found in the registry
    /// by preflight.
    pub rollback_images: Vec<ImageResult>,
    /// The roll's saved terraform plan, reviewed: exactly what step 8 applies.
    pub saved_plan: Option<SavedPlan>,
    /// Who STS says this run acts as (for its history record and notifications).
    pub caller_arn: Option<String>,
}

/// A saved plan and its review (`review`). The file holds every variable's value
/// (the tfvars secrets too): it lives in a private temp dir (mode 0700), removed when
/// this is dropped, never in the repository.
pub(super) struct SavedPlan {
    /// Removed when dropped.
    pub _dir: tempfile::TempDir,
    pub file: std::path::PathBuf,
    pub review: Review,
}

/// Where the build logs of this run's images go.
fn log_dir(repo: &Repo, plan: &Plan) -> std::path::PathBuf {
    repo.git_dir()
        .join("deploy")
        .join("logs")
        .join(&plan.image_tag)
}

/// Cancels `step` on SIGINT, SIGTERM or SIGHUP (dropping it stops builds, pushes and
/// polls); a signal that came before it began cancels it at once.
pub(super) async fn interruptible<T>(
    stage: Stage,
    step: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        signal = crate::signals::interrupted() => Err(Interrupted::new(stage, signal).into()),
        outcome = step => outcome,
    }
}

/// [`interruptible`] for a wait on ECS after the apply: cut short, it first says what
/// each deployment followed still had to do (ECS goes on with them).
pub(super) async fn cut_short<T>(
    progress: &Progress,
    wait: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let outcome = interruptible(Stage::AfterApply, wait).await;
    if outcome.as_ref().is_err_and(|err| err.is::<Interrupted>()) {
        let left = progress.unfinished();
        if !left.is_empty() {
            let lines: Vec<String> = left
                .iter()
                .map(|(service, what)| format!("  {service}: {what}"))
                .collect();
            progress.warn(&format!(
                "stopped waiting for ECS, which goes on with:\n{}",
                lines.join("\n")
            ));
        }
    }
    outcome
}
