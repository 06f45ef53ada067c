//! The deploy manifest kept for each SPA in the environment's private bucket (see
//! [`super::ManifestLocation`]), and the pure comparison of a build output against it and against the bucket listing: what to
//! upload, what is unchanged, which old files to keep and which to delete.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Counts up by one per upload to this bucket.
    pub number: u64,
    pub git_sha: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub uploaded: usize,
    pub deleted: usize,
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

/// Compares the build output with the manifest and, when given, the bucket listing
/// (`None`: the bucket is taken to hold what the manifest says). `retention_deploys`
/// later deploys keep a file that left the build output; the one after deletes it.
pub fn plan_upload(
    local: &[LocalFile],
    manifest: &Manifest,
    bucket: Option<&BTreeMap<String, BucketObject>>,
    retention_deploys: u64,
) -> UploadPlan {
    let deploy = manifest.next_deploy();
    let mut plan = UploadPlan {
        deploy,
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
        if deploy.saturating_sub(entry.deploy) > retention_deploys {
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
    let oldest = files
        .values()
        .map(|entry| entry.deploy)
        .min()
        .unwrap_or(plan.deploy);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn local(key: &str, content: &str) -> LocalFile {
        LocalFile {
            key: key.into(),
            path: PathBuf::from("/dist").join(key),
            size: content.len() as u64,
            sha256: format!("sha-of-{content}"),
            sha256_base64: String::new(),
            content_type: "text/plain; charset=utf-8".into(),
            cache_control: "no-cache".into(),
            entry_point: key.ends_with(".html"),
        }
    }

    fn record(number: u64) -> DeployRecord {
        DeployRecord {
            number,
            git_sha: format!("sha{number}"),
            time: "2025-01-01T00:00:00Z".into(),
            uploaded: 0,
            deleted: 0,
        }
    }

    /// Simulates one deploy of `files` (key, content) against `state` (manifest +
    /// bucket), as `upload` does: returns the plan.
    fn deploy(
        state: &mut (Manifest, BTreeMap<String, BucketObject>),
        files: &[(&str, &str)],
        retention: u64,
    ) -> UploadPlan {
        let (manifest, bucket) = state;
        let local: Vec<LocalFile> = files.iter().map(|(k, c)| local(k, c)).collect();
        let plan = plan_upload(&local, manifest, Some(bucket), retention);
        let mut etags = BTreeMap::new();
        for key in &plan.upload {
            let file = local.iter().find(|f| &f.key == key).unwrap();
            let etag = Some(format!("\"etag-{}\"", file.sha256));
            bucket.insert(
                key.clone(),
                BucketObject {
                    size: file.size,
                    etag: etag.clone(),
                },
            );
            etags.insert(key.clone(), etag);
        }
        for key in &plan.expire {
            bucket.remove(key);
        }
        *manifest = next_manifest(
            manifest,
            &plan,
            &local,
            Some(bucket),
            &etags,
            record(plan.deploy),
        );
        plan
    }

    #[test]
    fn first_deploy_uploads_everything_and_second_nothing() {
        let mut state = Default::default();
        let files = [("assets/app.1.js", "a1"), ("index.html", "v1")];
        let first = deploy(&mut state, &files, 3);
        assert_eq!(first.deploy, 1);
        assert_eq!(first.upload, ["assets/app.1.js", "index.html"]);
        let second = deploy(&mut state, &files, 3);
        assert_eq!(second.deploy, 2);
        assert!(second.upload.is_empty(), "{second:?}");
        assert_eq!(second.unchanged.len(), 2);
        assert_eq!(state.0.deployed_sha(), Some("sha2"));
    }

    #[test]
    fn changed_content_headers_or_bucket_are_uploaded_again() {
        let mut state = Default::default();
        deploy(
            &mut state,
            &[("index.html", "v1"), ("a.js", "a"), ("b.js", "b")],
            3,
        );

        // Content changed.
        let plan = deploy(
            &mut state,
            &[("index.html", "v2"), ("a.js", "a"), ("b.js", "b")],
            3,
        );
        assert_eq!(plan.upload, ["index.html"]);

        // Headers changed (new cache rules), same content.
        let (manifest, bucket) = &mut state;
        let mut files: Vec<LocalFile> = [("index.html", "v2"), ("a.js", "a"), ("b.js", "b")]
            .iter()
            .map(|(k, c)| local(k, c))
            .collect();
        files[1].cache_control = "public, max-age=60".into();
        assert_eq!(
            plan_upload(&files, manifest, Some(bucket), 3).upload,
            ["a.js"]
        );

        // Deleted from the bucket behind our back; overwritten behind our back.
        bucket.remove("a.js");
        bucket.get_mut("b.js").unwrap().etag = Some("\"someone-else\"".into());
        let files = &files_of(&[("index.html", "v2"), ("a.js", "a"), ("b.js", "b")]);
        assert_eq!(
            plan_upload(files, manifest, Some(bucket), 3).upload,
            ["a.js", "b.js"]
        );
        // Without a listing, the manifest is trusted: nothing to upload.
        assert!(plan_upload(files, manifest, None, 3).upload.is_empty());
    }

    fn files_of(files: &[(&str, &str)]) -> Vec<LocalFile> {
        files.iter().map(|(k, c)| local(k, c)).collect()
    }

    #[test]
    fn files_in_the_bucket_but_not_the_manifest_are_uploaded() {
        let manifest = Manifest::default();
        let bucket = BTreeMap::from([(
            "index.html".to_owned(),
            BucketObject {
                size: 2,
                etag: Some("\"x\"".into()),
            },
        )]);
        let plan = plan_upload(
            &files_of(&[("index.html", "v1")]),
            &manifest,
            Some(&bucket),
            3,
        );
        assert_eq!(plan.upload, ["index.html"]);
    }

    #[test]
    fn removed_files_are_kept_for_the_retention_then_expired() {
        let mut state = Default::default();
        deploy(&mut state, &[("index.html", "v1"), ("old.js", "o")], 2);
        // Deploy 2 stops shipping old.js: kept (2 later deploys keep it: 2 and 3).
        let plan = deploy(&mut state, &[("index.html", "v2")], 2);
        assert_eq!(plan.stale_kept, ["old.js"]);
        assert!(plan.expire.is_empty());
        let plan = deploy(&mut state, &[("index.html", "v3")], 2);
        assert_eq!(plan.stale_kept, ["old.js"]);
        // Deploy 4: retention ran out.
        let plan = deploy(&mut state, &[("index.html", "v4")], 2);
        assert_eq!(plan.expire, ["old.js"]);
        assert!(!state.0.files.contains_key("old.js"));
        assert!(!state.1.contains_key("old.js"));
        // History only keeps deploys that files still point at.
        let numbers: Vec<u64> = state.0.deploys.iter().map(|d| d.number).collect();
        assert_eq!(numbers, [4]);
    }

    #[test]
    fn a_file_built_again_before_it_expires_is_live_again() {
        let mut state = Default::default();
        deploy(&mut state, &[("index.html", "v1"), ("x.js", "x")], 1);
        let plan = deploy(&mut state, &[("index.html", "v2")], 1);
        assert_eq!(plan.stale_kept, ["x.js"]);
        let plan = deploy(&mut state, &[("index.html", "v1"), ("x.js", "x")], 1);
        assert!(plan.expire.is_empty());
        assert_eq!(plan.upload, ["index.html"]);
        assert_eq!(state.0.files["x.js"].deploy, 3);
    }

    #[test]
    fn unknown_objects_are_adopted_and_expire_like_old_files() {
        let mut state: (Manifest, BTreeMap<String, BucketObject>) = Default::default();
        state.1.insert(
            "legacy.js".into(),
            BucketObject {
                size: 5,
                etag: None,
            },
        );
        state.1.insert(
            LEGACY_MANIFEST_KEY.into(),
            BucketObject {
                size: 5,
                etag: None,
            },
        );
        let plan = deploy(&mut state, &[("index.html", "v1")], 1);
        assert_eq!(plan.adopted, ["legacy.js"]);
        assert_eq!(state.0.files["legacy.js"].deploy, 0);
        assert!(!state.0.files.contains_key(LEGACY_MANIFEST_KEY));
        // Deploy 2: 2 - 0 > 1.
        let plan = deploy(&mut state, &[("index.html", "v1")], 1);
        assert_eq!(plan.expire, ["legacy.js"]);
    }

    #[test]
    fn without_a_listing_retention_still_runs_and_nothing_is_adopted() {
        let mut state = Default::default();
        deploy(&mut state, &[("index.html", "v1"), ("old.js", "o")], 1);
        let (manifest, bucket) = &state;
        assert_eq!(manifest.verified_deploy, 1);
        let local = files_of(&[("index.html", "v2")]);
        let plan = plan_upload(&local, manifest, None, 1);
        assert_eq!(plan.upload, ["index.html"]);
        assert_eq!(plan.stale_kept, ["old.js"]);
        assert!(plan.adopted.is_empty());
        let etags = BTreeMap::from([("index.html".to_owned(), Some("\"e2\"".to_owned()))]);
        let next = next_manifest(manifest, &plan, &local, None, &etags, record(2));
        assert_eq!(next.verified_deploy, 1, "no listing, no verification");
        assert_eq!(next.files["index.html"].etag.as_deref(), Some("\"e2\""));
        assert!(bucket.contains_key("old.js"));
        let plan = plan_upload(&local, &next, None, 1);
        assert_eq!(plan.expire, ["old.js"]);
    }

    #[test]
    fn the_bucket_is_listed_without_a_manifest_after_a_failure_and_periodically() {
        assert!(needs_listing(None, 10));
        let mut manifest = Manifest {
            verified_deploy: 4,
            deploys: vec![record(3), record(4)],
            ..Manifest::default()
        };
        // Deploy 5 is 1 after the last verification.
        assert!(!needs_listing(Some(&manifest), 10));
        assert!(needs_listing(Some(&manifest), 1));
        manifest.deploys.push(record(13));
        assert!(
            needs_listing(Some(&manifest), 10),
            "deploy 14 is 10 after 4"
        );
        manifest.verified_deploy = 0;
        manifest.deploys = vec![record(4)];
        assert!(
            needs_listing(Some(&manifest), 10),
            "the last upload did not finish"
        );
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let mut state = Default::default();
        deploy(&mut state, &[("index.html", "v1")], 1);
        let json = serde_json::to_string_pretty(&state.0).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state.0);
        assert!(json.contains("\"git_sha\": \"sha1\""), "{json}");
    }
}
