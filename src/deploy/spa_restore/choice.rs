//! The SPA restore set, pure over what was read: what an undo asks of each SPA
//! (`undo_wanted`), the kept release a rollback or an undo names (`pick`, from the
//! manifest), and whether it is restorable (`check`, from its record and the bucket's
//! files). `super::choose` reads between them.

use std::collections::BTreeMap;

use crate::model::history::SpaUndo;
use crate::model::plan::{Decision, SpaRelease};
use crate::spa::manifest::{BucketObject, DeployRecord, Manifest};
use crate::spa::release::{self, Refusal, Relation, Release};

/// What is restored per SPA: a release by commit (rollback) or by number (undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    AtOrBefore { sha: String, short: String },
    Number(u64),
    Leave(String),
    NoRecord,
}

/// `deploy undo`'s restore set: per SPA the plan checks, what the undone run's record
/// says to do (an SPA it did not change is left).
pub(super) fn undo_wanted(
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

pub(super) type Choice = (String, Decision, Option<SpaRelease>);

/// The release record's absence, as an operator reads it.
pub(super) const NO_RECORD: &str = "no release record: deploys made before deploy kept SPA releases (and uploads by other tools) have none";

/// What [`pick`] decided: done (left, refused, already live), or a release whose
/// record is to be read and [`check`]ed.
#[derive(Debug, PartialEq)]
pub(super) enum Pick {
    Done(std::result::Result<Choice, String>),
    Read(DeployRecord),
}

/// The first half of one SPA's choice, from its manifest (`None`: there is none, or it
/// was not read because the SPA is left): the kept release `wanted` names, unless the
/// SPA is left, has no record, or already serves it. `manifest_at`: where the manifest
/// lives; `relation`: where a recorded commit stands against a rollback's target.
pub(super) fn pick(
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
pub(super) struct Read<'a> {
    /// The chosen release's record (`None`: gone).
    pub(super) record: Option<&'a Release>,
    pub(super) manifest: &'a Manifest,
    pub(super) listing: &'a BTreeMap<String, BucketObject>,
    /// Where the record lives, for the refusal.
    pub(super) release_at: String,
    pub(super) bucket: &'a str,
}

/// The second half: the chosen release is restorable when its record is there and the
/// bucket still holds its files as released; the plan's reason says which release.
pub(super) fn check(
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

pub(super) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
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
