//! The pipeline of `deploy` (a build), `rollback`, `undo`, `promote` and `diff`, as
//! docs/internals.md numbers it: discover, plan and decide, show (a dry run stops
//! there), preflight and review (`diff` stops there), confirm, lock, obtain the images
//! (`source`) with the SPAs built beside them, upload the SPAs, roll and verify (`roll`),
//! restore if asked (`recovery`), summary. The history and the webhook: `observers`.
//! `continue` (`pauses`) answers a run's pauses, and reconciles through an undo.

mod changed;
mod changed_spas;
mod decide;
mod dockerfile;
mod images;
mod ledger;
mod lock;
mod messages;
mod notices;
mod observers;
mod pauses;
mod preflight;
mod promote;
mod recovery;
mod restore;
mod review;
mod roll;
mod run;
mod source;
mod spa_restore;
mod spas;
mod stages;

use anyhow::Result;

pub use crate::report::CopiedImage;
pub use messages::Document;
pub use pauses::run as answer_pauses;

use crate::checkout::runtime;
use crate::report::RunReport;
use crate::request::{Globals, Request};
use crate::ui::output::{emit_stdout, OutputFormat};
use crate::ui::progress::Progress;
use ledger::Before;
use run::{Ready, Run};
use stages::{Step, Stop};

/// One run of the pipeline, for any of the commands above; its `--output json` document
/// goes where `document` says (stdout, but for `continue`'s reconcile).
pub fn run(globals: &Globals, request: &Request, document: &mut Document) -> Result<()> {
    // 1. Discover (the profiles checked first). 2. Plan, and decide what it leaves open.
    let aws = preflight::contexts(globals, request)?;
    let checkout = decide::open(globals.repo.as_deref(), request)?;
    let mut plan = decide::make_plan(&checkout, request)?;
    let (profile, runtime) = (preflight::choose_profile(globals, request)?, runtime()?);
    let decided = decide::decide(&mut plan, &checkout, request, &aws, profile.as_deref());
    let known = runtime.block_on(decided)?; // terraform outputs, if decide read them
    let stop = Stop::of(request.dry_run, request.diff_only);
    if stop == Stop::AfterPlan {
        return emit_stdout(&plan, globals.output);
    }
    if !messages::show_plan(&plan, globals.output, document)? {
        return Ok(());
    }
    messages::require_a_way_to_confirm(request)?;
    let progress = Progress::new(globals.quiet);
    let run = Run::new(&checkout, request, &plan, (profile, aws), known, &progress);
    let mut report = RunReport::new(&plan);
    let outcome = runtime.block_on(run.execute(stop, &mut report, globals.output));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2)); // dockerd cancels builds
                                                                 // 11. Summary: what was done; when preflight stopped the run, nothing was.
    if stop.summarises(report.began, globals.output) {
        messages::summarise(&run, &report, &outcome, globals, document)?;
    }
    outcome
}

impl Run<'_> {
    /// Steps 3-10 (`deploy diff`: the terraform half of 3, and the review on stdout).
    async fn execute(&self, stop: Stop, report: &mut RunReport, out: OutputFormat) -> Result<()> {
        if stop == Stop::AfterReview {
            return self.diff(out).await;
        }
        let mut observers = self.observers();
        // Now SIGINT, SIGTERM and SIGHUP interrupt the run (README "Exit codes").
        crate::signals::listen();
        // 3. Preflight. 4. Review the roll's saved plan (also under -y), then confirm.
        let mut ready = self.preflight().await?;
        self.review_and_confirm(&ready, report)?;
        // 5. Lock (released however the rest ends); under it the survey, the observers.
        let (lock, waited) = self.lock(&ready).await?;
        let before = self.survey_before(&ready).await;
        observers.started(self, &ready, &before).await;
        let outcome = self.locked(&mut ready, waited, &before, report).await;
        observers.closing(self, &ready, report, &outcome).await;
        let outcome = self.release(lock, outcome).await;
        observers.ended(self, &ready, &outcome).await;
        outcome
    }

    /// Steps 6-10, under the lock (a run that waited for it plans its roll again).
    async fn locked(
        &self,
        ready: &mut Ready,
        waited: bool,
        before: &Before,
        report: &mut RunReport,
    ) -> Result<()> {
        if waited {
            self.plan_again(ready, report).await?;
        }
        report.began = true;
        self.stages.enter(Step::BuildAndPush); // 6, and 7's builds beside it
        let built = self.images_beside_spa_builds(ready, before, report).await?;
        self.stages.enter(Step::Spas); // 7's uploads, once every image is pushed
        self.deploy_spas(ready, built, report).await?;
        match self.roll(ready, report).await {
            Err(failure) => self.recover(ready, before, report, failure).await,
            rolled => rolled,
        }
    }
}
