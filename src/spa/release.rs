//! SPA releases (issue 29): each upload keeps a record of what it served, in the
//! environment's private bucket beside the manifest, so that `deploy rollback` and
//! `deploy undo` can put a recent release back byte for byte without a build. The
//! record holds every file's digest and headers, and the entry points' exact bytes
//! (they are the only files overwritten under the same name by the next release; a
//! content-hashed asset keeps its name only while its content stays the same).
//!
//! Pure values and decisions, table-tested below: which one (of the releases the
//! manifest keeps, `manifest::kept`) a
//! rollback or an undo restores (or why none), whether the bucket still holds what it
//! needs, and the manifest after a restore. Reading and writing them is `spa::restore`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::manifest::{kept, BucketObject, DeployRecord, Manifest, ManifestEntry};

/// The release record format this code reads and writes.
pub const RELEASE_VERSION: u32 = 1;

/// What one upload (or restore) served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub version: u32,
    pub spa: String,
    /// The deploy number in the SPA's manifest.
    pub number: u64,
    /// The commit built (`<sha>-dirty` for uncommitted files).
    pub git_sha: String,
    /// When it went live (RFC 3339, UTC).
    pub time: String,
    /// A restore: the release it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// Every file the release serves, by bucket key.
    pub files: BTreeMap<String, ReleaseFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseFile {
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub cache_control: String,
    /// Entry points only: the exact bytes, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl ReleaseFile {
    pub fn entry_point(&self) -> bool {
        self.body.is_some()
    }
}

/// Where a release's commit stands against the commit rolled back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// That commit (or its `-dirty` build).
    Same,
    /// An ancestor of it: "at or before".
    Before,
    /// Later, or on another branch.
    Other,
    /// Not in the local history (shallow clone, or a commit since rewritten).
    Unknown,
}

/// Why an SPA cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Releases exist, but none that fits is still kept; the oldest that is.
    NotKept { oldest: DeployRecord },
    /// No release record fits: deploys before releases were kept have none.
    NoRecord,
}

/// The release `deploy rollback <target>` restores: of the target commit itself, else
/// the newest of an ancestor, among the kept releases. `relation` places each
/// recorded commit against the target.
pub fn choose_at_or_before(
    deploys: &[DeployRecord],
    keep: u64,
    relation: impl Fn(&str) -> Relation,
) -> Result<&DeployRecord, Refusal> {
    let kept = kept(deploys, keep);
    let of = |wanted: Relation| {
        kept.iter()
            .rev()
            .find(|d| relation(commit_of(&d.git_sha)) == wanted)
    };
    if let Some(found) = of(Relation::Same).or_else(|| of(Relation::Before)) {
        return Ok(found);
    }
    let fits = |d: &&DeployRecord| {
        matches!(
            relation(commit_of(&d.git_sha)),
            Relation::Same | Relation::Before
        )
    };
    let recordless = deploys.iter().filter(|d| !d.release).any(|d| fits(&d));
    match kept.first() {
        Some(oldest) if !recordless => Err(Refusal::NotKept {
            oldest: (*oldest).clone(),
        }),
        _ => Err(Refusal::NoRecord),
    }
}

/// The release `deploy undo` restores: release `number`, if still kept.
pub fn choose_number(
    deploys: &[DeployRecord],
    keep: u64,
    number: u64,
) -> Result<&DeployRecord, Refusal> {
    let kept = kept(deploys, keep);
    if let Some(found) = kept.iter().find(|d| d.number == number) {
        return Ok(found);
    }
    let recordless = deploys.iter().any(|d| d.number == number && !d.release);
    match kept.first() {
        Some(oldest) if !recordless => Err(Refusal::NotKept {
            oldest: (*oldest).clone(),
        }),
        _ => Err(Refusal::NoRecord),
    }
}

/// The commit of a recorded SHA (`<sha>-dirty` was built on `<sha>`).
pub fn commit_of(git_sha: &str) -> &str {
    git_sha.strip_suffix("-dirty").unwrap_or(git_sha)
}

/// The files a restore of `release` needs from the bucket (all but the entry points,
/// which the record holds) that the bucket no longer holds as released: gone, or
/// another content under the name (the manifest's digest differs, or S3's ETag is not
/// the one recorded). Each with why; empty: restorable.
pub fn missing_files(
    release: &Release,
    manifest: &Manifest,
    listing: &BTreeMap<String, BucketObject>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for (key, file) in release.files.iter().filter(|(_, f)| !f.entry_point()) {
        let Some(listed) = listing.get(key) else {
            missing.push(format!("{key} (gone from the bucket)"));
            continue;
        };
        let same = manifest.files.get(key).is_some_and(|recorded| {
            recorded.sha256.as_deref() == Some(file.sha256.as_str())
                && recorded.size == file.size
                && (recorded.etag.is_none() || recorded.etag == listed.etag)
        });
        if !same {
            missing.push(format!("{key} (the bucket holds another version)"));
        }
    }
    missing
}

/// The manifest once `release` is restored as deploy `record`: every file it serves
/// belongs to this deploy (entry points with the ETags S3 gave them now), the other
/// files stay for retention as they were.
pub fn restored_manifest(
    previous: &Manifest,
    release: &Release,
    new_etags: &BTreeMap<String, Option<String>>,
    record: DeployRecord,
) -> Manifest {
    let mut files = previous.files.clone();
    for (key, file) in &release.files {
        let etag = match new_etags.get(key) {
            Some(etag) => etag.clone(),
            None => previous.files.get(key).and_then(|e| e.etag.clone()),
        };
        files.insert(
            key.clone(),
            ManifestEntry {
                sha256: Some(file.sha256.clone()),
                size: file.size,
                etag,
                content_type: Some(file.content_type.clone()),
                cache_control: Some(file.cache_control.clone()),
                deploy: record.number,
            },
        );
    }
    let mut deploys = previous.deploys.clone();
    deploys.push(record);
    Manifest {
        version: super::manifest::MANIFEST_VERSION,
        verified_deploy: previous.verified_deploy,
        deploys,
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spa::manifest::kept_after;

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

    /// Commits a..e in a line; `x` on another branch.
    fn line(target: &'static str) -> impl Fn(&str) -> Relation {
        move |sha| {
            let order = |s: &str| "abcde".find(s);
            match (order(sha), order(target)) {
                _ if sha == target => Relation::Same,
                (Some(s), Some(t)) if s < t => Relation::Before,
                (Some(_), Some(_)) => Relation::Other,
                _ => Relation::Unknown,
            }
        }
    }

    #[test]
    fn releases_kept_and_dropped_as_uploads_go_on() {
        let deploys = [
            deploy(1, "a", false),
            deploy(2, "b", true),
            deploy(3, "c", true),
            deploy(4, "d", true),
        ];
        let numbers = |kept: Vec<&DeployRecord>| kept.iter().map(|d| d.number).collect::<Vec<_>>();
        assert_eq!(numbers(kept(&deploys, 2)), [3, 4]);
        assert_eq!(numbers(kept(&deploys, 5)), [2, 3, 4]);
        // keep, next → (oldest kept once `next` is made, releases dropped)
        for (keep, next, expected) in [
            (3, 5, (3, vec![2])),
            (5, 5, (2, vec![])),
            (1, 5, (5, vec![2, 3, 4])),
            (2, 5, (4, vec![2, 3])),
        ] {
            assert_eq!(kept_after(&deploys, next, keep), expected, "keep {keep}");
        }
        assert_eq!(kept_after(&[], 1, 5), (1, vec![]));
    }

    #[test]
    fn a_rollback_restores_the_release_of_the_commit_or_the_newest_before_it() {
        let deploys = [
            deploy(1, "a", false),
            deploy(2, "b", true),
            deploy(3, "c-dirty", true),
            deploy(4, "x", true),
            deploy(5, "e", true),
            deploy(6, "b", true),
        ];
        // target, keep → restored release, or the refusal
        let cases: [(&'static str, u64, Result<u64, Refusal>); 6] = [
            ("c", 5, Ok(3)),
            ("d", 5, Ok(6)),
            ("b", 5, Ok(6)),
            ("e", 5, Ok(5)),
            ("c", 2, Ok(6)),
            ("a", 5, Err(Refusal::NoRecord)),
        ];
        for (target, keep, expected) in cases {
            let chosen = choose_at_or_before(&deploys, keep, line(target)).map(|d| d.number);
            assert_eq!(chosen, expected, "{target} keeping {keep}");
        }
        let newer = [deploy(4, "d", true), deploy(5, "e", true)];
        assert_eq!(
            choose_at_or_before(&newer, 5, line("c")),
            Err(Refusal::NotKept {
                oldest: deploy(4, "d", true)
            })
        );
        assert_eq!(
            choose_at_or_before(&[deploy(1, "a", false)], 5, line("c")),
            Err(Refusal::NoRecord)
        );
        assert_eq!(
            choose_at_or_before(&[], 5, line("c")),
            Err(Refusal::NoRecord)
        );
    }

    #[test]
    fn an_undo_restores_a_numbered_release_while_it_is_kept() {
        let deploys = [
            deploy(1, "a", false),
            deploy(2, "b", true),
            deploy(3, "c", true),
        ];
        assert_eq!(choose_number(&deploys, 5, 2).map(|d| d.number), Ok(2));
        assert_eq!(
            choose_number(&deploys, 1, 2),
            Err(Refusal::NotKept {
                oldest: deploy(3, "c", true)
            })
        );
        assert_eq!(choose_number(&deploys, 5, 1), Err(Refusal::NoRecord));
    }

    fn release(files: &[(&str, &str, bool)]) -> Release {
        Release {
            version: RELEASE_VERSION,
            spa: "admin-ui".into(),
            number: 2,
            git_sha: "b".into(),
            time: "2026-12-02T00:00:00Z".into(),
            restored_from: None,
            files: files
                .iter()
                .map(|(key, sha, entry)| {
                    (
                        key.to_string(),
                        ReleaseFile {
                            sha256: sha.to_string(),
                            size: 1,
                            content_type: "text/plain".into(),
                            cache_control: "no-cache".into(),
                            body: entry.then(|| "eA==".to_owned()),
                        },
                    )
                })
                .collect(),
        }
    }

    fn entry(sha: &str, etag: &str, deploy: u64) -> ManifestEntry {
        ManifestEntry {
            sha256: Some(sha.into()),
            size: 1,
            etag: Some(etag.into()),
            content_type: Some("text/plain".into()),
            cache_control: Some("no-cache".into()),
            deploy,
        }
    }

    #[test]
    fn a_restore_needs_every_file_but_the_entry_points_in_the_bucket_as_released() {
        let release = release(&[
            ("index.html", "i1", true),
            ("a.1.js", "a1", false),
            ("gone.js", "g", false),
            ("favicon.svg", "f1", false),
            ("moved.js", "m", false),
        ]);
        let manifest = Manifest {
            files: [
                ("a.1.js", entry("a1", "\"ea\"", 2)),
                ("favicon.svg", entry("f2", "\"ef\"", 3)),
                ("moved.js", entry("m", "\"em\"", 2)),
            ]
            .into_iter()
            .map(|(k, e)| (k.to_owned(), e))
            .collect(),
            ..Manifest::default()
        };
        let listed = |etag: &str| BucketObject {
            size: 1,
            etag: Some(etag.into()),
        };
        let listing = [
            ("a.1.js", listed("\"ea\"")),
            ("favicon.svg", listed("\"ef\"")),
            ("moved.js", listed("\"changed behind our back\"")),
        ]
        .into_iter()
        .map(|(k, o)| (k.to_owned(), o))
        .collect();
        assert_eq!(
            missing_files(&release, &manifest, &listing),
            [
                "favicon.svg (the bucket holds another version)",
                "gone.js (gone from the bucket)",
                "moved.js (the bucket holds another version)",
            ]
        );
    }

    #[test]
    fn a_restored_release_owns_its_files_and_the_others_stay_for_retention() {
        let release = release(&[("index.html", "i1", true), ("a.1.js", "a1", false)]);
        let previous = Manifest {
            version: 1,
            verified_deploy: 3,
            deploys: vec![deploy(2, "b", true), deploy(3, "c", true)],
            files: [
                ("index.html", entry("i2", "\"i2\"", 3)),
                ("a.1.js", entry("a1", "\"ea\"", 2)),
                ("a.2.js", entry("a2", "\"e2\"", 3)),
            ]
            .into_iter()
            .map(|(k, e)| (k.to_owned(), e))
            .collect(),
        };
        let etags = BTreeMap::from([("index.html".to_owned(), Some("\"i1\"".to_owned()))]);
        let mut record = deploy(4, "b", true);
        record.restored_from = Some(2);
        let next = restored_manifest(&previous, &release, &etags, record);
        assert_eq!(next.files["index.html"], entry("i1", "\"i1\"", 4));
        assert_eq!(next.files["a.1.js"].deploy, 4);
        assert_eq!(next.files["a.1.js"].etag.as_deref(), Some("\"ea\""));
        assert_eq!(next.files["a.2.js"], previous.files["a.2.js"]);
        assert_eq!(next.deployed_sha(), Some("b"));
        assert_eq!(next.live().and_then(|d| d.restored_from), Some(2));
        assert_eq!(next.verified_deploy, 3);
    }
}
