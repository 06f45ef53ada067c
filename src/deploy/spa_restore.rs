//! SPAs in `deploy rollback` and `deploy undo` (issue 29): which kept release each SPA
//! goes back to, decided before the plan is shown (also in a dry run) from the SPA
//! manifests and their buckets, refused before anything changes when it cannot be
//! done; then, under the lock, the restore itself (step 7) with one invalidation per
//! distribution. The restore set is pure, over what was read: `undo_wanted` (what an
//! undo asks of each SPA), `pick` (the kept release, from the manifest) and `check` (its
//! record and files), on `spa::release`'s choices; `choose` reads between them.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};

use super::run::{Ready, Run};
use crate::aws::Contexts;
use crate::checkout::Checkout;
use crate::model::config::set_in_config;
use crate::model::environment::Environment;
use crate::model::history::SpaUndo;
use crate::model::plan::{Action, Decision, Plan, SpaRelease};
use crate::report::{RunReport, SpaResult};
use crate::spa::release::Relation;

mod choice;

use crate::spa::{self, SpaTarget};
use choice::{check, pick, short, undo_wanted, Choice, Pick, Read, Wanted};

/// `deploy rollback`: each SPA to check goes to its kept release of the target commit,
/// or the newest before it.
pub(super) async fn decide_rollback(
    plan: &mut Plan,
    checkout: &Checkout,
    contexts: &Contexts,
    profile: Option<&str>,
) -> Result<()> {
    let Some(target) = plan.rollback_to.clone() else {
        return Ok(());
    };
    let wanted = checking(plan)
        .into_iter()
        .map(|name| {
            let sha = target.sha.clone();
            let short = target.short_sha.clone();
            (name, Wanted::AtOrBefore { sha, short })
        })
        .collect();
    decide(plan, checkout, contexts, profile, wanted).await
}

/// `deploy undo`: each SPA the undone run changed goes back to the release live before
/// it; SPAs it did not change are left.
pub(super) async fn decide_undo(
    plan: &mut Plan,
    checkout: &Checkout,
    contexts: &Contexts,
    profile: Option<&str>,
    set: Vec<(String, SpaUndo)>,
    run_id: &str,
) -> Result<()> {
    let wanted = undo_wanted(checking(plan), &set, run_id);
    decide(plan, checkout, contexts, profile, wanted).await
}

/// The SPAs the plan still has to decide.
fn checking(plan: &Plan) -> Vec<String> {
    plan.spas_to(Action::Check)
        .map(|s| s.name.clone())
        .collect()
}

async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    contexts: &Contexts,
    profile: Option<&str>,
    wanted: Vec<(String, Wanted)>,
) -> Result<()> {
    let platform = &checkout.platform;
    if wanted.iter().all(|(_, w)| matches!(w, Wanted::Leave(_))) {
        let decisions = wanted
            .into_iter()
            .map(|(name, w)| match w {
                Wanted::Leave(why) => (name, Decision::skip(why), None),
                _ => unreachable!("all left"),
            })
            .collect();
        plan.restore_spas(decisions);
        return Ok(());
    }
    let workspace = plan.terraform.as_ref().map(|t| t.apply.workspace.clone());
    let config_suffices = platform.spas.iter().all(|spa| spa.bucket.is_some())
        && platform.config.lock.bucket.is_some();
    let (environment, _) = crate::changes::environment::read_environment(
        platform,
        profile,
        workspace.as_deref(),
        config_suffices,
    )
    .await?;
    let s3 = contexts.get(profile).await.s3();
    let keep = platform.config.spa_upload.releases_kept;
    let mut decisions = Vec::new();
    let mut refusals = Vec::new();
    for (name, wanted) in wanted {
        let target = match target_of(platform, &environment, &name) {
            Ok(target) => target,
            Err(err) => {
                refusals.push(format!("  {name}: {err:#}"));
                continue;
            }
        };
        match choose(&s3, checkout, &target, &wanted, keep).await? {
            Ok(decision) => decisions.push(decision),
            Err(why) => refusals.push(format!("  {name}: {why}")),
        }
    }
    if !refusals.is_empty() {
        bail!(
            "cannot restore {}:\n{}\nRestore the others alone with --spas, or pass --skip-spas to leave SPAs as they are. Nothing was touched",
            if refusals.len() == 1 { "this SPA" } else { "these SPAs" },
            refusals.join("\n")
        );
    }
    plan.restore_spas(decisions);
    Ok(())
}

/// The SPA's bucket and manifest in this environment.
fn target_of(
    platform: &crate::model::platform::Platform,
    environment: &Environment,
    name: &str,
) -> Result<SpaTarget> {
    let spa = platform
        .spas
        .iter()
        .find(|spa| spa.name == name)
        .context("no such SPA")?;
    let bucket = environment.spa(name).bucket.with_context(|| {
        format!(
            "no bucket known ({} or add it to the terraform output)",
            set_in_config(&format!("spas.{name}.bucket"))
        )
    })?;
    let private = environment.lock_bucket.as_deref().with_context(|| {
        format!(
            "no private bucket, so no release was ever kept ({})",
            set_in_config("lock.bucket")
        )
    })?;
    let place = environment.spa(name);
    Ok(SpaTarget::new(
        &platform.root,
        spa,
        bucket,
        place.distribution_id,
        private,
    ))
}

/// One SPA: the release to restore and the plan's reason, or why it cannot be. Reads
/// its manifest (unless it is left), then the chosen release's record; the choices are
/// [`pick`]'s and [`check`]'s.
async fn choose(
    s3: &crate::aws::S3,
    checkout: &Checkout,
    target: &SpaTarget,
    wanted: &Wanted,
    keep: u64,
) -> Result<std::result::Result<Choice, String>> {
    let state = match wanted {
        Wanted::Leave(_) | Wanted::NoRecord => None,
        _ => spa::restore::current_state(s3, target).await?,
    };
    let manifest = state.as_ref().map(|(manifest, _)| manifest);
    let target_oid = match wanted {
        Wanted::AtOrBefore { sha, .. } if manifest.is_some() => {
            Some(git2::Oid::from_str(sha).context("not a commit id")?)
        }
        _ => None,
    };
    let repo = checkout.repo.git();
    let relation = |recorded: &str| match target_oid {
        Some(target) => relation(repo, target, recorded),
        None => Relation::Unknown,
    };
    let manifest_at = target.manifest.to_string();
    let chosen = match pick(&target.name, wanted, manifest, &manifest_at, keep, relation) {
        Pick::Done(done) => return Ok(done),
        Pick::Read(chosen) => chosen,
    };
    let (manifest, listing) = state
        .as_ref()
        .context("a release chosen without a manifest")?;
    let record = spa::restore::read_release(s3, target, chosen.number).await?;
    let read = Read {
        record: record.as_ref(),
        manifest,
        listing,
        release_at: target.manifest.release(chosen.number).to_string(),
        bucket: &target.bucket,
    };
    Ok(check(&target.name, wanted, &chosen, &read))
}

/// Where a recorded commit stands against the commit rolled back to.
fn relation(repo: &git2::Repository, target: git2::Oid, recorded: &str) -> Relation {
    let Ok(oid) = git2::Oid::from_str(recorded) else {
        return Relation::Unknown;
    };
    if oid == target {
        return Relation::Same;
    }
    if repo.find_commit(oid).is_err() {
        return Relation::Unknown;
    }
    match repo.graph_descendant_of(target, oid) {
        Ok(true) => Relation::Before,
        Ok(false) => Relation::Other,
        Err(_) => Relation::Unknown,
    }
}

impl Run<'_> {
    /// Step 7 of a rollback or an undo: each planned SPA's release put back (entry
    /// points from its record, after a last check of its files under the lock), then one
    /// invalidation per distribution.
    pub(super) async fn restore_spas(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        let s3 = ready.aws.s3();
        let cloudfront = ready.aws.cloudfront();
        let settings = &self.platform.config.spa_upload;
        let planned: BTreeMap<&str, &SpaRelease> = self
            .plan
            .spas
            .iter()
            .filter_map(|s| s.restore.as_ref().map(|r| (s.name.as_str(), r)))
            .collect();
        for target in &ready.spas {
            let Some(planned) = planned.get(target.name.as_str()) else {
                continue;
            };
            let item = self.progress.item(&target.name);
            item.state(&format!("restoring release #{}", planned.number));
            let record = spa::restore::read_release(&s3, target, planned.number)
                .await?
                .with_context(|| {
                    format!(
                        "the record of release #{} of SPA {} is gone from {}; nothing of it was restored",
                        planned.number,
                        target.name,
                        target.manifest.release(planned.number)
                    )
                })?;
            let restored = spa::restore::restore(
                &s3,
                target,
                &record,
                settings.releases_kept,
                &item,
            )
            .await
            .with_context(|| {
                format!(
                    "the restore of SPA {} failed; its entry points go last, so the site serves the previous release or the restored one whole",
                    target.name
                )
            })?;
            // Every restore writes entry points: always invalidate.
            let invalidation = super::spas::invalidate(&cloudfront, target, settings, true).await?;
            item.finish(&format!(
                "release #{} ({}) restored as #{}: {} entry point(s) written, {} file(s) already there; invalidation {invalidation}",
                restored.restored,
                short(&restored.git_sha),
                restored.release,
                restored.entry_points.len(),
                restored.unchanged
            ));
            report.spas.push(SpaResult {
                name: target.name.clone(),
                bucket: target.bucket.clone(),
                git_sha: restored.git_sha.clone(),
                uploaded: restored.entry_points.len(),
                unchanged: restored.unchanged,
                release: Some(restored.release),
                restored_from: Some(restored.restored),
                live_since: Some(restored.time.clone()),
                invalidation_id: invalidation.id(),
                invalidation,
            });
        }
        Ok(())
    }
}
