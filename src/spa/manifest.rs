//! The deploy manifest kept for each SPA in the environment's private bucket (see
//! [`super::ManifestLocation`]), and the pure comparison of a build output against it and
//! against the bucket listing: what to upload, what is unchanged, which old files to keep
//! and which to delete, and which recorded releases are kept ([`kept`], [`kept_after`]).
//! `spa::release` builds on these values; this file does not import it.
//!
//! Why a manifest rather than ETags: the ETag of a single-part upload is the MD5 of the
//! content, but a multipart upload's is not, an SSE-KMS object's is not either, and
//! ListObjectsV2 does not return user metadata. The manifest holds our own SHA-256 of
//! every file, whatever way it was uploaded, and the one place that knows which deploy
//! last shipped a file, which retention needs. It is written last, so it only ever
//! describes uploads that completed.
//!
//! The bucket listing (ListObjectsV2) is compared too, when there is one: a key that
//! vanished, or whose ETag is not the one S3 gave us when we uploaded it (changed behind
//! our back), is uploaded again, and objects no manifest knows are adopted. Listing is
//! the slow part of a no-change run (moto takes 0.3 s per 1,000 keys), so `upload` lists
//! only every `spa_upload.verify_every_deploys` deploys, whenever there is no manifest,
//! and after a run that did not finish; in between, the manifest, which only deploy
//! writes, is trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where older deploys kept the manifest: in the SPA bucket itself, where CloudFront
/// served it (every deployed SHA, time and file hash) to anyone. Read once to migrate,
/// then deleted; never adopted as a file of the site.
pub const LEGACY_MANIFEST_KEY: &str = ".deploy/manifest.json";

/// The manifest format this code reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    /// The last deploy that compared the manifest with a full listing of the bucket; 0
    /// while an upload is under way (set before its first write), so that a run that
    /// died half-way makes the next one list the bucket.
    #[serde(default)]
    pub verified_deploy: u64,
    /// The deploys that files still listed here were last part of, oldest first. The
    /// last one is the latest complete upload.
    pub deploys: Vec<DeployRecord>,
    /// Every file this tool keeps in the bucket: the live ones and the old ones kept for
    /// retention.
    pub files: BTreeMap<String, ManifestEntry>,
}

/// One completed upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Counts up by one per upload to this bucket.
    pub number: u64,
    pub git_sha: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub uploaded: usize,
    pub deleted: usize,
    /// Whether a release record was kept for this deploy (see [`super::release`]);
    /// deploys made before releases existed have none.
    #[serde(default)]
    pub release: bool,
    /// A restore (`deploy rollback`, `deploy undo`): the release it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Hex SHA-256 of the content; `None` for a file found in the bucket that this tool
    /// did not upload (adopted, see [`UploadPlan::adopted`]).
    pub sha256: Option<String>,
    pub size: u64,
    /// The ETag S3 answered when the file was uploaded.
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// Number of the last deploy whose build output contained this file (see
    /// [`Manifest::deploys`] for its git SHA and time).
    pub deploy: u64,
}

impl Manifest {
    /// The number the next upload gets.
    pub fn next_deploy(&self) -> u64 {
        self.deploys.last().map_or(1, |deploy| deploy.number + 1)
    }

    /// The git SHA of the latest complete upload.
    pub fn deployed_sha(&self) -> Option<&str> {
        self.deploys.last().map(|deploy| deploy.git_sha.as_str())
    }

    /// The live release: the latest complete upload or restore.
    pub fn live(&self) -> Option<&DeployRecord> {
        self.deploys.last()
    }
}

/// A file of the build output, hashed and classified.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFile {
    /// Bucket key: the path below the output directory, `/`-separated.
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The same digest in base64, as S3's `x-amz-checksum-sha256` wants it.
    pub sha256_base64: String,
    pub content_type: String,
    pub cache_control: String,
    pub entry_point: bool,
}

/// An object as ListObjectsV2 shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketObject {
    pub size: u64,
    pub etag: Option<String>,
}

/// What an upload will do, computed before anything is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadPlan {
    /// The number this upload gets.
    pub deploy: u64,
    /// Files to upload: new, changed, changed headers, missing from the bucket, or
    /// changed in the bucket behind our back.
    pub upload: Vec<String>,
    /// Files already in the bucket as built.
    pub unchanged: Vec<String>,
    /// Files no longer built, kept for open pages until their retention runs out.
    pub stale_kept: Vec<String>,
    /// Files no longer built whose retention ran out: deleted after the entry points.
    pub expire: Vec<String>,
    /// Objects in the bucket that no manifest knows (a bucket deploy.sh filled, or the
    /// manifest was removed) and that the build no longer has: treated as part of the
    /// previous deploy, so they are kept, then deleted, like any other old file.
    pub adopted: Vec<String>,
    /// Release records no longer among the kept ones once this upload is one: deleted
    /// from the private bucket after the manifest is written.
    pub dropped_releases: Vec<u64>,
}

/// Whether this upload compares with a full listing of the bucket: when there is no
/// manifest, when the last upload did not finish (`verified_deploy` 0), and every
/// `verify_every_deploys` deploys.
pub fn needs_listing(manifest: Option<&Manifest>, verify_every_deploys: u64) -> bool {
    manifest.is_none_or(|manifest| {
        manifest.verified_deploy == 0
            || manifest
                .next_deploy()
                .saturating_sub(manifest.verified_deploy)
                >= verify_every_deploys
    })
}

/// How long files that left the build output stay in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `spa_upload.retention_deploys`: later deploys that keep such a file for pages
    /// already open.
    pub deploys: u64,
    /// `spa_upload.releases_kept`: the newest releases kept restorable; a file any of
    /// them serves is never deleted.
    pub releases: u64,
}

/// Compares the build output with the manifest and, when given, the bucket listing
/// (`None`: the bucket is taken to hold what the manifest says). A file that left the
/// build output is kept while a kept release serves it ([`kept_after`])
/// or for `retention.deploys` later deploys, whichever is longer; then deleted.
pub fn plan_upload(
    local: &[LocalFile],
    manifest: &Manifest,
    bucket: Option<&BTreeMap<String, BucketObject>>,
    retention: Retention,
) -> UploadPlan {
    let deploy = manifest.next_deploy();
    let (keep_from, dropped_releases) = kept_after(&manifest.deploys, deploy, retention.releases);
    let mut plan = UploadPlan {
        deploy,
        dropped_releases,
        ..UploadPlan::default()
    };
    let built: BTreeSet<&str> = local.iter().map(|file| file.key.as_str()).collect();

    for file in local {
        // Not recorded: we cannot vouch for what the bucket holds under that key.
        let same = manifest.files.get(&file.key).is_some_and(|recorded| {
            let as_built = recorded.sha256.as_deref() == Some(file.sha256.as_str())
                && recorded.size == file.size
                && recorded.content_type.as_deref() == Some(file.content_type.as_str())
                && recorded.cache_control.as_deref() == Some(file.cache_control.as_str());
            let in_bucket = match bucket {
                None => true,
                Some(bucket) => bucket.get(&file.key).is_some_and(|listed| {
                    listed.size == file.size
                        && (recorded.etag.is_none() || recorded.etag == listed.etag)
                }),
            };
            as_built && in_bucket
        });
        if same {
            plan.unchanged.push(file.key.clone());
        } else {
            plan.upload.push(file.key.clone());
        }
    }

    for (key, entry) in &manifest.files {
        let gone = bucket.is_some_and(|bucket| !bucket.contains_key(key));
        if built.contains(key.as_str()) || gone {
            // Still built (handled above), or already gone from the bucket.
            continue;
        }
        // A file's `deploy` is the last deploy that served it, so a kept release serves
        // it exactly when that deploy is one of them.
        let served_by_a_kept_release = entry.deploy >= keep_from;
        let open_pages = deploy.saturating_sub(entry.deploy) <= retention.deploys;
        if !served_by_a_kept_release && !open_pages {
            plan.expire.push(key.clone());
        } else {
            plan.stale_kept.push(key.clone());
        }
    }

    for key in bucket.into_iter().flat_map(BTreeMap::keys) {
        if key != LEGACY_MANIFEST_KEY
            && !built.contains(key.as_str())
            && !manifest.files.contains_key(key)
        {
            plan.adopted.push(key.clone());
        }
    }
    plan
}

/// The manifest after a successful upload: every built file as part of this deploy
/// (with the ETag S3 gave for the ones uploaded now), old files kept, expired ones
/// gone, adopted ones recorded, and the deploy history trimmed to the deploys still
/// referenced. `bucket` is the listing this upload compared with, if it listed.
pub fn next_manifest(
    previous: &Manifest,
    plan: &UploadPlan,
    local: &[LocalFile],
    bucket: Option<&BTreeMap<String, BucketObject>>,
    new_etags: &BTreeMap<String, Option<String>>,
    record: DeployRecord,
) -> Manifest {
    let mut files = BTreeMap::new();
    for file in local {
        let etag = match new_etags.get(&file.key) {
            Some(etag) => etag.clone(),
            None => previous
                .files
                .get(&file.key)
                .and_then(|entry| entry.etag.clone())
                .or_else(|| {
                    bucket
                        .and_then(|bucket| bucket.get(&file.key))
                        .and_then(|object| object.etag.clone())
                }),
        };
        files.insert(
            file.key.clone(),
            ManifestEntry {
                sha256: Some(file.sha256.clone()),
                size: file.size,
                etag,
                content_type: Some(file.content_type.clone()),
                cache_control: Some(file.cache_control.clone()),
                deploy: plan.deploy,
            },
        );
    }
    for key in &plan.stale_kept {
        if let Some(entry) = previous.files.get(key) {
            files.insert(key.clone(), entry.clone());
        }
    }
    for key in &plan.adopted {
        let listed = bucket.and_then(|bucket| bucket.get(key));
        files.insert(
            key.clone(),
            ManifestEntry {
                sha256: None,
                size: listed.map_or(0, |object| object.size),
                etag: listed.and_then(|object| object.etag.clone()),
                content_type: None,
                cache_control: None,
                deploy: plan.deploy - 1,
            },
        );
    }
    // Deploy records stay while a file or a kept release refers to them.
    let oldest_release = previous
        .deploys
        .iter()
        .filter(|deploy| deploy.release && !plan.dropped_releases.contains(&deploy.number))
        .map(|deploy| deploy.number)
        .min()
        .unwrap_or(plan.deploy);
    let oldest = files
        .values()
        .map(|entry| entry.deploy)
        .min()
        .unwrap_or(plan.deploy)
        .min(oldest_release);
    let mut deploys: Vec<DeployRecord> = previous
        .deploys
        .iter()
        .filter(|deploy| deploy.number >= oldest)
        .cloned()
        .collect();
    deploys.push(record);
    Manifest {
        version: MANIFEST_VERSION,
        verified_deploy: if bucket.is_some() {
            plan.deploy
        } else {
            previous.verified_deploy
        },
        deploys,
        files,
    }
}

/// The kept releases, oldest first: the newest `keep` deploys that recorded one.
pub fn kept(deploys: &[DeployRecord], keep: u64) -> Vec<&DeployRecord> {
    let releases: Vec<&DeployRecord> = deploys.iter().filter(|d| d.release).collect();
    let skip = releases.len().saturating_sub(keep as usize);
    releases[skip..].to_vec()
}

/// Once deploy `next` (a release) is made: the oldest kept release's number, and the
/// releases recorded in `deploys` that are no longer kept.
pub fn kept_after(deploys: &[DeployRecord], next: u64, keep: u64) -> (u64, Vec<u64>) {
    let earlier = kept(deploys, keep.saturating_sub(1));
    let oldest = earlier.first().map_or(next, |d| d.number);
    let dropped = deploys
        .iter()
        .filter(|d| d.release && d.number < oldest)
        .map(|d| d.number)
        .collect();
    (oldest, dropped)
}

#[cfg(test)]
mod tests;
