//! After a native rollback (`continue --rollback`, or ECS's own once a pause was
//! answered CONTINUE): ECS runs the old revision while terraform's state and
//! `image_tags` still say the run's tag, so the next apply would silently roll it
//! again. The services ECS rolled back get the tags they ran before the run re-applied
//! through the pipeline's own reviewed, targeted roll: an undo of exactly that run
//! (whatever its state) for exactly those services, under the lock, recorded as its own
//! run; the paused run's record then says what was reconciled.

use anyhow::{Context as _, Result};
use tokio::runtime::Runtime;

use super::super::messages::Document;
use super::Answers;
use crate::aws::history;
use crate::model::plan::Selection;
use crate::request::{ContinueRequest, Globals, Request};

/// Ok: nothing to reconcile, or reconciled (with the failure to report when ECS rolled
/// back by itself after a CONTINUE); an error when the reconcile failed.
pub(super) fn after_rollbacks(
    globals: &Globals,
    request: &ContinueRequest,
    answers: &mut Answers,
    runtime: &Runtime,
) -> Result<Option<String>> {
    let rolled_back: Vec<String> = answers
        .report
        .followed
        .iter()
        .filter(|s| {
            s.native_rollback
                .as_ref()
                .is_some_and(|n| n.status == "ROLLBACK_SUCCESSFUL")
        })
        .map(|s| s.service.clone())
        .collect();
    if rolled_back.is_empty() {
        return Ok(None);
    }
    let run_id = answers.record.run_id.clone();
    crate::ui::output::warn(&format!(
        "ECS rolled back {}: re-applying the tags they ran before run {run_id} with terraform (an undo of that run for them), so that its state and image_tags say what runs (reconcile)",
        rolled_back.join(", ")
    ));
    let undo = Request {
        selection: Selection::Named(rolled_back.clone()),
        var_file: Some(request.var_file.clone()),
        skip_spas: true,
        undo: true,
        undo_of: Some(run_id.clone()),
        // Confirmed with the answer: the reconcile is its consequence. The review's
        // guard still refuses a roll that changes anything else.
        assume_yes: true,
        lock_wait: request.lock_wait,
        ..Request::default()
    };
    let mut document = Document::Kept(None);
    let outcome = super::super::run(globals, &undo, &mut document);
    if let Document::Kept(kept) = document {
        answers.report.reconcile = kept;
    }
    if let Err(err) = outcome {
        return Err(err.context(format!(
            "Reconcile FAILED for {}: terraform's state may still say run {run_id}'s tag for them, and the next apply would roll it again. Check `deploy status`, then `deploy undo --services {}`",
            rolled_back.join(", "),
            rolled_back.join(",")
        )));
    }
    let mut reconciled = Vec::new();
    for change in answers
        .record
        .services
        .iter_mut()
        .filter(|c| rolled_back.contains(&c.service))
    {
        if let Some(previous) = &change.previous {
            change.reconciled = Some(previous.tag.clone());
            reconciled.push(format!("{} → :{}", change.service, previous.tag));
        }
    }
    let (s3, bucket) = &answers.history;
    runtime
        .block_on(history::write(s3, bucket, &answers.record))
        .context("the reconcile was applied but run's history record could not say so")?;
    let said = format!(
        "Reconciled: terraform re-applied {} (what ECS rolled back to), so its state and the next apply agree with what runs",
        reconciled.join(", ")
    );
    if answers.report.action == "ROLLBACK" {
        eprintln!("{said}");
        return Ok(None);
    }
    // ECS rolled back by itself after a CONTINUE: the roll failed.
    Ok(Some(format!(
        "{said}. The roll failed: fix the cause ECS gave above, then deploy again"
    )))
}
