//! SPAs (runbook step 2, SPEC §3 step 7): build each with its own command, upload what
//! changed to its S3 bucket (assets first, entry points last, the right Content-Type and
//! Cache-Control, old files kept for a few deploys), then one CloudFront invalidation.
//!
//! Each SPA has a deploy manifest written after everything else: our own SHA-256 of
//! every file, the deploy that last shipped it, and the git SHA of every recent deploy
//! ([`deployed_sha`]). It lives in the environment's private bucket
//! ([`ManifestLocation`]), not in the bucket CloudFront serves. See [`manifest`] for
//! why it, and not ETags, decides what changed.

mod bucket;
mod build;
mod cloudfront;
mod files;
pub mod inputs;
pub mod manifest;
pub mod release;
pub mod restore;
pub mod rules;
pub mod sources;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::model::config::SpaUploadConfig;
use crate::model::platform::Spa;
use crate::ui::progress::ItemProgress;

pub use build::{build, SpaBuildFailed};
pub use cloudfront::invalidate;
use manifest::{DeployRecord, LocalFile, UploadPlan};
pub use manifest::{Manifest, LEGACY_MANIFEST_KEY};

const MIB: u64 = 1024 * 1024;
/// User metadata on every uploaded object: our hex SHA-256 of its content.
pub const SHA256_METADATA: &str = "content-sha256";
/// User metadata on uploaded entry points: the git SHA of the deploy that uploaded them.
pub const GIT_SHA_METADATA: &str = "deploy-git-sha";

/// One SPA, resolved: absolute paths, and the bucket and distribution it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaTarget {
    pub name: String,
    /// Absolute; the build runs here.
    pub dir: PathBuf,
    /// Run with `sh -c` in `dir`.
    pub build: String,
    /// Absolute; the build output uploaded to the bucket.
    pub output: PathBuf,
    pub bucket: String,
    pub distribution_id: Option<String>,
    /// Where its upload manifest is kept (the environment's private bucket).
    pub manifest: ManifestLocation,
    /// Extra environment for the build.
    pub env: Vec<(String, String)>,
}

/// Where deploy keeps an SPA's upload manifest: in the environment's private bucket
/// (the one the deploy lock lives in), under a key per SPA and SPA bucket, so that
/// environments sharing a private bucket never share a manifest, and nothing of deploy's
/// bookkeeping is served by CloudFront.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLocation {
    pub bucket: String,
    pub key: String,
}

impl ManifestLocation {
    pub fn new(private_bucket: &str, spa: &str, spa_bucket: &str) -> Self {
        Self {
            bucket: private_bucket.to_owned(),
            key: format!("deploy-spa/{spa}/{spa_bucket}/manifest.json"),
        }
    }

    /// Where older deploys kept it: in the SPA bucket itself.
    pub fn legacy(spa_bucket: &str) -> Self {
        Self {
            bucket: spa_bucket.to_owned(),
            key: LEGACY_MANIFEST_KEY.to_owned(),
        }
    }
}

impl fmt::Display for ManifestLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl SpaTarget {
    /// From the platform's SPA (paths relative to `repo_root`) and the bucket and
    /// distribution found for it (config or terraform outputs).
    pub fn new(
        repo_root: &Path,
        spa: &Spa,
        bucket: String,
        distribution_id: Option<String>,
        private_bucket: &str,
    ) -> Self {
        Self {
            manifest: ManifestLocation::new(private_bucket, &spa.name, &bucket),
            name: spa.name.clone(),
            dir: repo_root.join(&spa.dir),
            build: spa.build.clone(),
            output: repo_root.join(&spa.output),
            bucket,
            distribution_id,
            env: Vec::new(),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub spa: String,
    pub bucket: String,
    pub git_sha: String,
    /// This upload's number in the bucket's manifest: its release.
    pub deploy: u64,
    /// When it went live (RFC 3339, UTC).
    pub time: String,
    /// Keys uploaded, in the order their uploads completed: every other file before
    /// any entry point.
    pub uploaded: Vec<String>,
    /// The entry points among `uploaded`.
    pub entry_points: Vec<String>,
    pub uploaded_bytes: u64,
    /// Files already in the bucket as built.
    pub unchanged: usize,
    /// Files no longer built, still in the bucket for pages already open.
    pub stale_kept: Vec<String>,
    /// Old files whose retention ran out, deleted after the entry points went live.
    pub deleted: Vec<String>,
    /// Objects found in the bucket that no manifest knew; now kept, then deleted, like
    /// old files.
    pub adopted: Vec<String>,
    pub secs: f64,
}

impl fmt::Display for UploadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s3://{} deploy #{} ({}): uploaded {} file(s) ({}), {} unchanged",
            self.bucket,
            self.deploy,
            self.git_sha,
            self.uploaded.len(),
            human_bytes(self.uploaded_bytes),
            self.unchanged
        )?;
        if !self.stale_kept.is_empty() {
            write!(f, ", {} old file(s) kept", self.stale_kept.len())?;
        }
        if !self.deleted.is_empty() {
            write!(f, ", {} old file(s) deleted", self.deleted.len())?;
        }
        if !self.adopted.is_empty() {
            write!(
                f,
                ", {} unknown object(s) adopted for retention",
                self.adopted.len()
            )?;
        }
        write!(f, " in {:.1}s", self.secs)
    }
}

/// Uploads `spa.output` to `spa.bucket`: only what changed, every other file before the
/// entry points, files that left the build kept for `retention_deploys` deploys, then
/// the manifest recording `git_sha`. Nothing is uploaded unless the output has an entry
/// point. On an error, what was uploaded stays; the manifest is not written, so the
/// next run compares against the previous one and uploads again whatever differs.
pub async fn upload(
    s3: &crate::aws::S3,
    spa: &SpaTarget,
    git_sha: &str,
    settings: &SpaUploadConfig,
    item: &ItemProgress,
) -> Result<UploadReport> {
    let started = Instant::now();
    let bucket = spa.bucket.as_str();
    item.state("comparing the build output with the bucket");
    // Hashing runs while the bucket is read.
    let bucket_state = async {
        let (previous, legacy) = read_manifest_or_legacy(s3, &spa.manifest, bucket).await?;
        let listing = if manifest::needs_listing(previous.as_ref(), settings.verify_every_deploys) {
            Some(bucket::list_bucket(s3, bucket).await?)
        } else {
            None
        };
        Ok::<_, anyhow::Error>((previous, legacy, listing))
    };
    let (local, (found, legacy, listing)) =
        tokio::try_join!(files::scan_output(spa, settings), bucket_state)?;
    let previous = found.clone().unwrap_or_default();
    tracing::debug!(
        spa = %spa.name,
        files = local.len(),
        listed = listing.as_ref().map(BTreeMap::len),
        secs = started.elapsed().as_secs_f64(),
        "compared the build output with the bucket"
    );
    let retention = manifest::Retention {
        deploys: settings.retention_deploys,
        releases: settings.releases_kept,
    };
    let plan = manifest::plan_upload(&local, &previous, listing.as_ref(), retention);
    let UploadPlan {
        deploy,
        upload: changed,
        unchanged,
        stale_kept,
        expire,
        adopted,
        dropped_releases,
    } = &plan;

    let by_key: BTreeMap<&str, &LocalFile> =
        local.iter().map(|file| (file.key.as_str(), file)).collect();
    let (entry_points, assets): (Vec<&LocalFile>, Vec<&LocalFile>) = changed
        .iter()
        .map(|key| by_key[key.as_str()])
        .partition(|file| file.entry_point);
    // A run that dies half-way leaves the bucket unlike its manifest (say, a new
    // index.html under a manifest that still lists the old one, which a rollback would
    // then take for unchanged). So before the first write, the manifest is marked
    // unverified, and the next run lists the bucket whatever verify_every_deploys says.
    if let Some(found) = &found {
        let writes = !changed.is_empty() || !expire.is_empty();
        if writes && found.verified_deploy != 0 {
            let unverified = Manifest {
                verified_deploy: 0,
                ..found.clone()
            };
            let sha = found.deployed_sha().unwrap_or_default();
            bucket::write_manifest(s3, &spa.manifest, &unverified, sha).await?;
        }
    }

    let total = changed.len();
    let mut uploaded = Vec::with_capacity(total);
    let mut new_etags = BTreeMap::new();
    let mut uploaded_bytes = 0;

    // Every other file first, so that a new entry point never names an asset that is not
    // there yet; entry points only once all of them are in.
    for (phase, files) in [("file", assets), ("entry point", entry_points)] {
        let mut done = stream::iter(files)
            .map(|file| async move {
                let etag = bucket::put_file(s3, bucket, file, git_sha, settings).await?;
                Ok::<_, anyhow::Error>((file, etag))
            })
            .buffer_unordered(settings.concurrency);
        while let Some((file, etag)) = done.try_next().await? {
            uploaded.push(file.key.clone());
            uploaded_bytes += file.size;
            new_etags.insert(file.key.clone(), etag);
            item.detail(&format!(
                "uploaded {}/{total} ({phase}): {}",
                uploaded.len(),
                file.key
            ));
        }
    }

    tracing::debug!(
        spa = %spa.name,
        uploaded = uploaded.len(),
        secs = started.elapsed().as_secs_f64(),
        "uploads done"
    );

    // Old files go only now: the new entry points are live and no longer name them.
    let deleted = bucket::delete_keys(s3, bucket, expire).await?;

    let record = DeployRecord {
        number: *deploy,
        git_sha: git_sha.to_owned(),
        time: crate::timestamp::rfc3339(crate::timestamp::now_unix()),
        uploaded: uploaded.len(),
        deleted: deleted.len(),
        release: true,
        restored_from: None,
    };
    // The release record goes before the manifest that names it.
    let release = restore::release_of_upload(spa, &record, &local).await?;
    restore::write_release(s3, &spa.manifest.release(record.number), &release).await?;
    let time = record.time.clone();
    let next = manifest::next_manifest(
        &previous,
        &plan,
        &local,
        listing.as_ref(),
        &new_etags,
        record,
    );
    bucket::write_manifest(s3, &spa.manifest, &next, git_sha).await?;
    // Migration: the manifest an older deploy left in the served bucket goes only now,
    // once its successor is written (a failure before leaves it to be read again).
    let legacy_listed = listing
        .as_ref()
        .is_some_and(|listing| listing.contains_key(LEGACY_MANIFEST_KEY));
    if legacy || legacy_listed {
        bucket::delete_keys(s3, bucket, &[LEGACY_MANIFEST_KEY.to_owned()]).await?;
        tracing::info!(spa = %spa.name, manifest = %spa.manifest, "moved the manifest out of the SPA bucket");
    }
    restore::drop_releases(s3, spa, dropped_releases).await;
    tracing::debug!(
        spa = %spa.name,
        deleted = deleted.len(),
        secs = started.elapsed().as_secs_f64(),
        "manifest written"
    );

    let entry_points = uploaded
        .iter()
        .filter(|key| {
            by_key
                .get(key.as_str())
                .is_some_and(|file| file.entry_point)
        })
        .cloned()
        .collect();
    let report = UploadReport {
        spa: spa.name.clone(),
        bucket: bucket.to_owned(),
        git_sha: git_sha.to_owned(),
        deploy: *deploy,
        time,
        uploaded,
        entry_points,
        uploaded_bytes,
        unchanged: unchanged.len(),
        stale_kept: stale_kept.clone(),
        deleted,
        adopted: adopted.clone(),
        secs: started.elapsed().as_secs_f64(),
    };
    item.state(&format!(
        "uploaded {} file(s), {} unchanged",
        report.uploaded.len(),
        report.unchanged
    ));
    Ok(report)
}

/// The git SHA of the latest complete upload to `bucket` (`<sha>-dirty` for a build of
/// uncommitted files), from its manifest at `manifest` or, not migrated yet, in the
/// bucket itself; `None` when nothing was ever uploaded by this tool.
pub async fn deployed_sha(
    s3: &crate::aws::S3,
    manifest: Option<&ManifestLocation>,
    bucket: &str,
) -> Result<Option<String>> {
    let found = match manifest {
        Some(at) => read_manifest_or_legacy(s3, at, bucket).await?.0,
        None => bucket::read_manifest(s3, &ManifestLocation::legacy(bucket)).await?,
    };
    Ok(found.and_then(|manifest| manifest.deployed_sha().map(str::to_owned)))
}

/// The manifest at `at`; else the one an older deploy kept in the SPA bucket (then
/// `true`: it is to be moved).
async fn read_manifest_or_legacy(
    s3: &crate::aws::S3,
    at: &ManifestLocation,
    spa_bucket: &str,
) -> Result<(Option<Manifest>, bool)> {
    if let Some(manifest) = bucket::read_manifest(s3, at).await? {
        return Ok((Some(manifest), false));
    }
    let legacy = bucket::read_manifest(s3, &ManifestLocation::legacy(spa_bucket)).await?;
    let found = legacy.is_some();
    Ok((legacy, found))
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;

    #[test]
    fn spa_upload_config_defaults_and_validation() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.spa_upload, SpaUploadConfig::default());
        assert_eq!(config.spa_upload.retention_deploys, 3);
        assert_eq!(config.spa_upload.multipart_threshold_mib, 8);
        let config = Config::parse(
            "[spa_upload]\nretention_deploys = 1\nimmutable = [\"assets/**\"]\ninvalidation_paths = [\"/*\"]\n",
        )
        .unwrap();
        assert_eq!(config.spa_upload.retention_deploys, 1);
        assert_eq!(config.spa_upload.invalidation_paths, ["/*"]);
        for (text, key) in [
            ("retention_deploys = 0", "spa_upload.retention_deploys"),
            ("concurrency = 0", "spa_upload.concurrency"),
            ("multipart_part_mib = 4", "spa_upload.multipart_part_mib"),
            (
                "invalidation_paths = [\"index.html\"]",
                "spa_upload.invalidation_paths",
            ),
            ("entry_points = []", "spa_upload.entry_points"),
            (
                "verify_every_deploys = 0",
                "spa_upload.verify_every_deploys",
            ),
            (
                "default_cache_control = \"\"",
                "spa_upload.default_cache_control",
            ),
        ] {
            let err = Config::parse(&format!("[spa_upload]\n{text}\n")).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = Config::parse("[spa_upload]\nretention = 2\n").unwrap_err();
        assert!(err.contains("unknown field `retention`"), "{err}");
    }
}
