//! The run, step by step, numbered as the README's "What a run does": discover, plan,
//! preflight, confirm, lock, build and push, SPAs, roll, verify, health, summary. Each
//! step lives in the module of the system it talks to; [`run`] and [`Run::execute`]
//! only compose them, so that the whole pipeline reads on one screen.

mod changed;
mod changed_spas;
mod ledger;
mod messages;
mod notices;
mod preflight;
mod promote;
mod restore;
mod review;
mod spa_restore;
mod stages;

use std::time::Instant;

use anyhow::Result;

pub use promote::CopiedImage;

use crate::docker::engine::Engine;
use crate::docker::images::ImageResult;
use crate::error::{Interrupted, Stage};
use crate::git::Repo;
use crate::model::environment::{Environment, Outputs};
use crate::model::plan::{self, Mode, Plan};
use crate::model::platform::{runtime, Checkout, Platform};
use crate::model::report::RunReport;
use crate::notify::{Event, Notifier};
use crate::request::{Globals, Request};
use crate::spa::SpaTarget;
use crate::terraform::Terraform;
use crate::ui::output::emit_stdout;
use crate::ui::progress::Progress;
use notices::Step;

/// A deploy, or a rollback (`deploy rollback`): the same pipeline, minus the builds.
pub fn run(globals: &Globals, request: &Request) -> Result<()> {
    // 1. Discover.
    let checkout = Checkout::open(globals.repo.as_deref())?;
    // 2. Plan (`--changed` reads what ECS runs, also in a dry run).
    let mut plan = make_plan(&checkout, request)?;
    let profile = preflight::choose_profile(globals, request)?;
    let runtime = runtime()?;
    let outputs = match plan.mode {
        Mode::Changed => runtime.block_on(changed::decide(
            &mut plan,
            &checkout,
            request,
            profile.as_deref(),
        ))?,
        // Both environments are read (read-only), also in a dry run.
        Mode::Promote => {
            runtime.block_on(promote::decide(&mut plan, &checkout, profile.as_deref()))?
        }
        // `deploy rollback`: the SPA manifests decide which releases are restored (or
        // refuse), also in a dry run.
        Mode::Rollback => {
            runtime.block_on(spa_restore::decide_rollback(
                &mut plan,
                &checkout,
                profile.as_deref(),
            ))?;
            None
        }
        // `deploy undo`: the history decides what is restored, also in a dry run.
        Mode::Undo => {
            runtime.block_on(ledger::decide_undo(
                &mut plan,
                &checkout,
                profile.as_deref(),
            ))?;
            None
        }
        _ => None,
    };
    if request.dry_run {
        return emit_stdout(&plan, globals.output);
    }
    // The plan is shown; with nothing to do the run ends here (runbook: "exits early
    // if nothing changed").
    if !messages::show_plan(&plan, globals.output)? {
        return Ok(());
    }
    messages::require_a_way_to_confirm(request)?;

    // 3-10, then 11 whatever happened.
    let progress = Progress::new(globals.quiet);
    let run = Run {
        platform: &checkout.platform,
        request,
        plan: &plan,
        profile,
        outputs,
        progress: &progress,
        log_dir: log_dir(&checkout.repo, &plan),
    };
    if request.diff_only {
        // `deploy diff`: the terraform half of preflight and the review; nothing else.
        let outcome = runtime.block_on(run.diff(globals.output));
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        return outcome;
    }
    let mut report = RunReport::new(&plan);
    let outcome = runtime.block_on(run.execute(&mut report));
    // Stop build/push streams now: the daemon cancels work whose connection closed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // 11. Summary: what was done; when preflight stopped the run, nothing was.
    if report.began || globals.output == crate::cli::OutputFormat::Json {
        emit_stdout(&report, globals.output)?;
    }
    outcome
}

impl Run<'_> {
    async fn execute(&self, report: &mut RunReport) -> Result<()> {
        let started = std::time::Instant::now();
        let notifier = Notifier::from_config(&self.platform.config.notify, |message| {
            self.progress.warn(message)
        });
        // From here on SIGINT, SIGTERM and SIGHUP interrupt the run, each with the same
        // clean-up (README "Exit codes").
        crate::signals::listen();
        // 3. Preflight and who am I.
        let mut ready = interruptible(Stage::BeforeRoll, self.preflight()).await?;
        // 4. Review the roll's saved plan (also under -y), then confirm.
        if let Some(saved) = &ready.saved_plan {
            self.review(saved, report)?;
        }
        if !self.request.assume_yes {
            messages::confirm(self.plan.mode)?;
        }
        // 5. Lock, released however the rest ends, interruption included (a signal while
        // taking or waiting for it ends the run holding nothing). A run that waited
        // plans its roll again: the holder may have applied since.
        let (lock, waited) = self.lock(&ready).await?;
        self.notify(notifier.as_ref(), &ready, Event::Started, None)
            .await;
        let mut step = Step::Replan;
        let outcome = match waited {
            true => self.plan_again(&mut ready, report).await,
            false => Ok(()),
        };
        // Under the lock: what runs before this run, recorded in its history record
        // (written now as `running`, rewritten at the end), and what an automatic
        // rollback restores.
        let before = self.survey_before(&ready).await;
        let ledger = self.open_ledger(&ready, &before).await;
        let outcome = match outcome {
            Ok(()) => self.locked(&ready, &before, report, &mut step).await,
            Err(err) => Err(err),
        };
        self.close_ledger(ledger, &ready, report, &outcome).await;
        if outcome.is_ok() {
            step = Step::Unlock;
        }
        let outcome = self.release(lock, outcome).await;
        let (event, failure) = match &outcome {
            Ok(()) => (Event::Succeeded, None),
            Err(err) => (Event::Failed, Some((step, err))),
        };
        self.notify(
            notifier.as_ref(),
            &ready,
            event,
            Some((started.elapsed(), failure)),
        )
        .await;
        outcome
    }

    /// Steps 6-10, under the lock; `step` follows them, for a failure's notification.
    async fn locked(
        &self,
        ready: &Ready,
        before: &ledger::Before,
        report: &mut RunReport,
        step: &mut Step,
    ) -> Result<()> {
        report.began = true;
        let started = Instant::now();
        // 6. Build and push; a rollback's images were found in the registry by preflight.
        *step = Step::BuildAndPush;
        if matches!(self.plan.mode, Mode::Rollback | Mode::Undo) {
            report.images = ready.rollback_images.clone();
        } else if self.plan.mode == Mode::Promote {
            // A promotion copies the source's images by digest instead.
            interruptible(Stage::BeforeRoll, self.copy_images(ready, report)).await?;
        } else {
            let built = interruptible(Stage::BeforeRoll, self.build_and_push(ready, report)).await;
            report.stage("build and push", started);
            built?;
        }
        // 7. SPAs.
        *step = Step::Spas;
        let started = Instant::now();
        let uploaded = interruptible(Stage::BeforeRoll, self.deploy_spas(ready, report)).await;
        if !ready.spas.is_empty() {
            report.stage("spas", started);
        }
        uploaded?;
        // 8. Roll. Not interruptible by dropping: terraform stops itself on a signal and
        // we wait for it, so that its state is never left half-written.
        *step = Step::Roll;
        let started = Instant::now();
        let rolled = self.roll(ready, report).await;
        if self.plan.terraform.is_some() {
            report.stage("terraform apply", started);
        }
        if !rolled? {
            return Ok(());
        }
        // 9. Verify, and 10. health; a failure restores the previous tags when asked to.
        let started = Instant::now();
        let verified = self.verify_and_check(ready, report, step).await;
        report.stage("verify", started);
        // A failed health check while ECS still bakes: ECS rolls back, not terraform.
        let verified = match verified {
            Err(failure) if *step == Step::Health && !failure.is::<Interrupted>() => {
                self.roll_back_natively(ready, report, failure).await
            }
            verified => verified,
        };
        match verified {
            Err(failure)
                if self.rollback_on_failure()
                    && !failure.is::<Interrupted>()
                    && restore::natively_rolled_back(report).is_empty() =>
            {
                let started = Instant::now();
                let restored = self.restore(ready, before, report, failure).await;
                report.stage("automatic rollback", started);
                restored
            }
            // ECS rolled services back by itself: terraform is told what runs.
            Err(failure)
                if !failure.is::<Interrupted>()
                    && !restore::natively_rolled_back(report).is_empty() =>
            {
                let started = Instant::now();
                let reconciled = self.reconcile(ready, before, report, failure).await;
                report.stage("reconcile", started);
                reconciled
            }
            verified => verified,
        }
    }

    /// Steps 9 and 10.
    async fn verify_and_check(
        &self,
        ready: &Ready,
        report: &mut RunReport,
        step: &mut Step,
    ) -> Result<()> {
        *step = Step::Verify;
        interruptible(Stage::AfterApply, self.verify(ready, report)).await?;
        *step = Step::Health;
        interruptible(Stage::AfterApply, self.check_health(ready, report)).await
    }

    /// `--rollback-on-failure`, or `verify.rollback_on_failure` in deploy.toml.
    fn rollback_on_failure(&self) -> bool {
        self.request.rollback_on_failure || self.platform.config.verify.rollback_on_failure
    }
}

/// One run's inputs, resolved.
struct Run<'a> {
    platform: &'a Platform,
    request: &'a Request,
    plan: &'a Plan,
    profile: Option<String>,
    /// The environment's terraform outputs, when `--changed` has read them already.
    outputs: Option<Outputs>,
    progress: &'a Progress,
    log_dir: std::path::PathBuf,
}

/// What preflight found out.
struct Ready {
    aws: crate::aws::Aws,
    /// The Docker daemon; a promotion needs none.
    engine: Option<Engine>,
    /// Terraform, when this run rolls services.
    terraform: Option<Terraform>,
    /// The cluster, the health URL, the private bucket and the SPA buckets.
    environment: Environment,
    /// The SPAs to build and upload, with their buckets and distributions.
    spas: Vec<SpaTarget>,
    /// `deploy rollback`: the images rolled, found in the registry by preflight.
    rollback_images: Vec<ImageResult>,
    /// The roll's saved terraform plan, reviewed: exactly what step 8 applies.
    saved_plan: Option<review::SavedPlan>,
    /// Who STS says this run acts as (for its history record and notifications).
    caller_arn: Option<String>,
}

/// Step 2: the plan of what this checkout would deploy.
fn make_plan(checkout: &Checkout, request: &Request) -> Result<Plan> {
    let repo = &checkout.repo;
    let rollback_to = request
        .rollback
        .as_deref()
        .map(|revision| repo.commit(revision))
        .transpose()?;
    // A rollback builds nothing, so the working tree does not matter.
    let uncommitted = if rollback_to.is_some() {
        Vec::new()
    } else {
        repo.uncommitted_paths()?
    };
    tracing::info!(root = %repo.root().display(), tag = %checkout.head.short_sha, "repository found");
    Plan::new(
        &checkout.platform,
        request,
        plan::Context {
            head: checkout.head.clone(),
            cwd: &checkout.cwd,
            registry_env: plan::registry::RegistryEnv::from_process(),
            spa_sources: crate::spa::sources::read(&checkout.platform, &uncommitted),
            uncommitted,
            rollback_to,
        },
    )
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
async fn interruptible<T>(
    stage: Stage,
    step: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        signal = crate::signals::interrupted() => Err(Interrupted::new(stage, signal).into()),
        outcome = step => outcome,
    }
}
