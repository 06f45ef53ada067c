//! SPAs in `deploy rollback` and `deploy undo` (issue 29): which kept release each SPA
//! goes back to, decided before the plan is shown (also in a dry run) from the SPA
//! manifests and their buckets, refused before anything changes when it cannot be
//! done; then, under the lock, the restore itself (step 7) with one invalidation per
//! distribution. The restore set is pure, over what was read: `undo_wanted` (what an
//! undo asks of each SPA), `pick` (the kept release, from the manifest) and `check` (its
//! record and files), on `spa::release`'s choices; `choose` reads between them.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};

use super::{Ready, Run};
use crate::model::environment::Environment;
use crate::model::history::SpaUndo;
use crate::model::plan::{Action, Decision, Mode, Plan, SpaRelease};
use crate::model::platform::Checkout;
use crate::model::report::{Invalidation, RunReport, SpaResult};
use crate::spa::manifest::{BucketObject, DeployRecord, Manifest};
use crate::spa::release::{self, Refusal, Relation, Release};
use crate::spa::{self, SpaTarget};

/// What is restored per SPA: a release by commit (rollback) or by number (undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Wanted {
    AtOrBefore { sha: String, short: String },
    Number(u64),
    Leave(String),
    NoRecord,
}

/// `deploy rollback`: each SPA to check goes to its kept release of the target commit,
/// or the newest before it.
pub(super) async fn decide_rollback(
    plan: &mut Plan,
    checkout: &Checkout,
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
    decide(plan, checkout, profile, wanted).await
}

/// `deploy undo`: each SPA the undone run changed goes back to the release live before
/// it; SPAs it did not change are left.
pub(super) async fn decide_undo(
    plan: &mut Plan,
    checkout: &Checkout,
    profile: Option<&str>,
    set: Vec<(String, SpaUndo)>,
    run_id: &str,
) -> Result<()> {
    let wanted = undo_wanted(checking(plan), &set, run_id);
    decide(plan, checkout, profile, wanted).await
}

/// `deploy undo`'s restore set: per SPA the plan checks, what the undone run's record
/// says to do (an SPA it did not change is left).
fn undo_wanted(
    checking: Vec<String>,
    set: &[(String, SpaUndo)],
    run_id: &str,
) -> Vec<(String, Wanted)> {
    checking
        .into_iter()
        .map(|name| {
            let undo = set.iter().find(|(spa, _)| *spa == name).map(|(_, u)| u);
            let wanted = match undo {
                Some(SpaUndo::Restore { release }) => Wanted::Number(*release),
                Some(SpaUndo::Leave(why)) => Wanted::Leave(why.clone()),
                Some(SpaUndo::NoRecord) => Wanted::NoRecord,
                None => Wanted::Leave(format!("not changed by run {run_id}")),
            };
            (name, wanted)
        })
        .collect()
}

/// The SPAs the plan still has to decide.
fn checking(plan: &Plan) -> Vec<String> {
    plan.spas
        .iter()
        .filter(|s| s.action == Action::Check)
        .map(|s| s.name.clone())
        .collect()
}

async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
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
    let (environment, _) =
        crate::commands::read_environment(platform, profile, workspace.as_deref(), config_suffices)
            .await?;
    let s3 = crate::aws::Aws::load(profile).await.s3();
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
        format!("no bucket known (set spas.{name}.bucket in deploy.toml or add it to the terraform output)")
    })?;
    let private = environment.lock_bucket.as_deref().context(
        "no private bucket, so no release was ever kept (set lock.bucket in deploy.toml)",
    )?;
    let place = environment.spa(name);
    Ok(SpaTarget::new(
        &platform.root,
        spa,
        bucket,
        place.distribution_id,
        private,
    ))
}

type Choice = (String, Decision, Option<SpaRelease>);

/// The release record's absence, as an operator reads it.
const NO_RECORD: &str = "no release record: deploys made before deploy kept SPA releases (and uploads by other tools) have none";

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

/// What [`pick`] decided: done (left, refused, already live), or a release whose
/// record is to be read and [`check`]ed.
#[derive(Debug, PartialEq)]
enum Pick {
    Done(std::result::Result<Choice, String>),
    Read(DeployRecord),
}

/// The first half of one SPA's choice, from its manifest (`None`: there is none, or it
/// was not read because the SPA is left): the kept release `wanted` names, unless the
/// SPA is left, has no record, or already serves it. `manifest_at`: where the manifest
/// lives; `relation`: where a recorded commit stands against a rollback's target.
fn pick(
    name: &str,
    wanted: &Wanted,
    manifest: Option<&Manifest>,
    manifest_at: &str,
    keep: u64,
    relation: impl Fn(&str) -> Relation,
) -> Pick {
    let refuse = |why: String| Pick::Done(Err(why));
    let manifest = match (wanted, manifest) {
        (Wanted::Leave(why), _) => {
            return Pick::Done(Ok((name.to_owned(), Decision::skip(why.clone()), None)))
        }
        (Wanted::NoRecord, _) => return refuse(NO_RECORD.to_owned()),
        (_, None) => return refuse(format!("{NO_RECORD} ({manifest_at} does not exist)")),
        (_, Some(manifest)) => manifest,
    };
    let chosen = match wanted {
        Wanted::AtOrBefore { .. } => {
            release::choose_at_or_before(&manifest.deploys, keep, relation)
        }
        Wanted::Number(number) => release::choose_number(&manifest.deploys, keep, *number),
        Wanted::Leave(_) | Wanted::NoRecord => unreachable!("handled above"),
    };
    let chosen = match chosen {
        Ok(chosen) => chosen,
        Err(Refusal::NoRecord) => return refuse(NO_RECORD.to_owned()),
        Err(Refusal::NotKept { oldest }) => {
            return refuse(format!(
                "that release is no longer kept (spa_upload.releases_kept = {keep}); the oldest restorable is #{} ({}, live from {})",
                oldest.number,
                short(&oldest.git_sha),
                oldest.time
            ))
        }
    };
    let live = manifest.live();
    if live.is_some_and(|l| l.number == chosen.number || l.restored_from == Some(chosen.number)) {
        let reason = format!(
            "already serves release #{} ({})",
            chosen.number,
            short(&chosen.git_sha)
        );
        return Pick::Done(Ok((name.to_owned(), Decision::skip(reason), None)));
    }
    Pick::Read(chosen.clone())
}

/// What was read for the second half of one SPA's choice.
struct Read<'a> {
    /// The chosen release's record (`None`: gone).
    record: Option<&'a Release>,
    manifest: &'a Manifest,
    listing: &'a BTreeMap<String, BucketObject>,
    /// Where the record lives, for the refusal.
    release_at: String,
    bucket: &'a str,
}

/// The second half: the chosen release is restorable when its record is there and the
/// bucket still holds its files as released; the plan's reason says which release.
fn check(
    name: &str,
    wanted: &Wanted,
    chosen: &DeployRecord,
    read: &Read<'_>,
) -> std::result::Result<Choice, String> {
    let Some(record) = read.record else {
        return Err(format!(
            "the record of release #{} is gone from {}",
            chosen.number, read.release_at
        ));
    };
    let missing = release::missing_files(record, read.manifest, read.listing);
    if !missing.is_empty() {
        return Err(format!(
            "release #{} ({}) needs files s3://{} no longer holds as released: {}",
            chosen.number,
            short(&chosen.git_sha),
            read.bucket,
            missing.join(", ")
        ));
    }
    let which = match wanted {
        Wanted::AtOrBefore { sha, short: asked } if release::commit_of(&chosen.git_sha) == sha => {
            format!("its release of {asked}")
        }
        Wanted::AtOrBefore { short: asked, .. } => format!(
            "no release of {asked}: the newest before it, of {}",
            short(&chosen.git_sha)
        ),
        _ => "the release live before the undone run".to_owned(),
    };
    let reason = format!(
        "restore release #{} ({which}), live from {}: its files, not rebuilt",
        chosen.number, chosen.time
    );
    let planned = SpaRelease {
        number: chosen.number,
        git_sha: chosen.git_sha.clone(),
        time: chosen.time.clone(),
    };
    Ok((name.to_owned(), Decision::deploy(reason), Some(planned)))
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

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
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
            let invalidation = match &target.distribution_id {
                Some(distribution) => {
                    let wait = (settings.invalidation_wait_secs > 0)
                        .then(|| std::time::Duration::from_secs(settings.invalidation_wait_secs));
                    Invalidation::Created {
                        id: spa::invalidate(
                            &cloudfront,
                            distribution,
                            &settings.invalidation_paths,
                            wait,
                        )
                        .await?,
                    }
                }
                None => Invalidation::NoDistribution,
            };
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
                invalidation_id: match &invalidation {
                    Invalidation::Created { id } => Some(id.clone()),
                    _ => None,
                },
                invalidation,
            });
        }
        Ok(())
    }
}

/// Whether this run restores SPAs instead of building them.
pub(super) fn restores(mode: Mode) -> bool {
    matches!(mode, Mode::Rollback | Mode::Undo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spa::release::{ReleaseFile, RELEASE_VERSION};

    const KEEP: u64 = 3;

    fn deploy(number: u64, sha: &str, release: bool) -> DeployRecord {
        DeployRecord {
            number,
            git_sha: sha.to_owned(),
            time: format!("2026-12-0{number}T00:00:00Z"),
            uploaded: 1,
            deleted: 0,
            release,
            restored_from: None,
        }
    }

    /// Releases #1..#4 of commits a..d, #4 live.
    fn manifest() -> Manifest {
        Manifest {
            deploys: vec![
                deploy(1, "a", true),
                deploy(2, "b", true),
                deploy(3, "c", true),
                deploy(4, "d", true),
            ],
            ..Manifest::default()
        }
    }

    /// Commits a..d in a line.
    fn line(target: &'static str) -> impl Fn(&str) -> Relation {
        move |sha| {
            let order = |s: &str| "abcd".find(s);
            match (order(sha), order(target)) {
                (Some(x), Some(t)) if x == t => Relation::Same,
                (Some(x), Some(t)) if x < t => Relation::Before,
                (Some(_), Some(_)) => Relation::Other,
                _ => Relation::Unknown,
            }
        }
    }

    fn at_or_before(sha: &str) -> Wanted {
        Wanted::AtOrBefore {
            sha: sha.to_owned(),
            short: sha.to_owned(),
        }
    }

    fn pick_of(wanted: &Wanted, manifest: Option<&Manifest>, target: &'static str) -> Pick {
        pick(
            "admin-ui",
            wanted,
            manifest,
            "s3://private/m.json",
            KEEP,
            line(target),
        )
    }

    fn refused(pick: Pick) -> String {
        match pick {
            Pick::Done(Err(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn pick_chooses_the_kept_release_or_says_why_not() {
        let manifest = manifest();
        let m = Some(&manifest);
        // Left, no record, no manifest.
        assert_eq!(
            pick_of(&Wanted::Leave("not changed by run r1".into()), None, "a"),
            Pick::Done(Ok((
                "admin-ui".into(),
                Decision::skip("not changed by run r1"),
                None
            )))
        );
        assert_eq!(refused(pick_of(&Wanted::NoRecord, m, "a")), NO_RECORD);
        assert_eq!(
            refused(pick_of(&at_or_before("b"), None, "b")),
            format!("{NO_RECORD} (s3://private/m.json does not exist)")
        );
        // A rollback's commit, by number, and the newest before a commit not released.
        assert_eq!(
            pick_of(&at_or_before("c"), m, "c"),
            Pick::Read(deploy(3, "c", true))
        );
        assert_eq!(
            pick_of(&Wanted::Number(2), m, "a"),
            Pick::Read(deploy(2, "b", true))
        );
        // Not kept any more (#1 is past the newest three), or never recorded.
        assert_eq!(
            refused(pick_of(&at_or_before("a"), m, "a")),
            "that release is no longer kept (spa_upload.releases_kept = 3); the oldest restorable is #2 (b, live from 2026-12-02T00:00:00Z)"
        );
        let mut recordless = manifest.clone();
        recordless.deploys.push(deploy(5, "e", false));
        let recordless = Some(&recordless);
        assert_eq!(
            refused(pick_of(&Wanted::Number(5), recordless, "a")),
            NO_RECORD
        );
        // The live release: nothing to do.
        assert_eq!(
            pick_of(&Wanted::Number(4), m, "a"),
            Pick::Done(Ok((
                "admin-ui".into(),
                Decision::skip("already serves release #4 (d)"),
                None
            )))
        );
    }

    fn release_record(files: &[(&str, &str)]) -> Release {
        Release {
            version: RELEASE_VERSION,
            spa: "admin-ui".into(),
            number: 2,
            git_sha: "b".into(),
            time: "2026-12-02T00:00:00Z".into(),
            restored_from: None,
            files: files
                .iter()
                .map(|(key, sha)| {
                    let file = ReleaseFile {
                        sha256: sha.to_string(),
                        size: 1,
                        content_type: "text/javascript".into(),
                        cache_control: "max-age=31536000".into(),
                        body: None,
                    };
                    (key.to_string(), file)
                })
                .collect(),
        }
    }

    #[test]
    fn check_needs_the_record_and_every_file_as_released() {
        let mut manifest = manifest();
        manifest.files.insert(
            "assets/app.js".into(),
            crate::spa::manifest::ManifestEntry {
                sha256: Some("s1".into()),
                size: 1,
                etag: None,
                content_type: None,
                cache_control: None,
                deploy: 2,
            },
        );
        let listing = BTreeMap::from([(
            "assets/app.js".to_owned(),
            BucketObject {
                size: 1,
                etag: Some("e".into()),
            },
        )]);
        let chosen = deploy(2, "b", true);
        let whole = release_record(&[("assets/app.js", "s1")]);
        let gone = release_record(&[("assets/old.js", "s0")]);
        let read = |record| Read {
            record,
            manifest: &manifest,
            listing: &listing,
            release_at: "s3://private/releases/2.json".into(),
            bucket: "admin-ui-sandbox",
        };
        let planned = SpaRelease {
            number: 2,
            git_sha: "b".into(),
            time: "2026-12-02T00:00:00Z".into(),
        };
        let cases = [
            (
                at_or_before("b"),
                Some(&whole),
                Ok("restore release #2 (its release of b), live from 2026-12-02T00:00:00Z: its files, not rebuilt"),
            ),
            (
                at_or_before("c"),
                Some(&whole),
                Ok("restore release #2 (no release of c: the newest before it, of b), live from 2026-12-02T00:00:00Z: its files, not rebuilt"),
            ),
            (
                Wanted::Number(2),
                Some(&whole),
                Ok("restore release #2 (the release live before the undone run), live from 2026-12-02T00:00:00Z: its files, not rebuilt"),
            ),
            (
                Wanted::Number(2),
                None,
                Err("the record of release #2 is gone from s3://private/releases/2.json"),
            ),
            (
                Wanted::Number(2),
                Some(&gone),
                Err("release #2 (b) needs files s3://admin-ui-sandbox no longer holds as released: assets/old.js (gone from the bucket)"),
            ),
        ];
        for (wanted, record, expected) in cases {
            let got = check("admin-ui", &wanted, &chosen, &read(record));
            let expected = expected
                .map(|reason| {
                    (
                        "admin-ui".to_owned(),
                        Decision::deploy(reason),
                        Some(planned.clone()),
                    )
                })
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{wanted:?}");
        }
    }

    #[test]
    fn an_undo_restores_what_the_undone_run_changed_and_leaves_the_rest() {
        let set = vec![
            ("admin-ui".to_owned(), SpaUndo::Restore { release: 3 }),
            ("new-ui".to_owned(), SpaUndo::Leave("nothing before".into())),
            ("old-ui".to_owned(), SpaUndo::NoRecord),
        ];
        let checking = ["admin-ui", "new-ui", "old-ui", "simulator"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            undo_wanted(checking, &set, "r1"),
            [
                ("admin-ui".to_owned(), Wanted::Number(3)),
                ("new-ui".to_owned(), Wanted::Leave("nothing before".into())),
                ("old-ui".to_owned(), Wanted::NoRecord),
                (
                    "simulator".to_owned(),
                    Wanted::Leave("not changed by run r1".into())
                ),
            ]
        );
    }
}
