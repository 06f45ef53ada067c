//! Releases in S3: kept by every upload (the record written before the manifest that
//! names it, records no longer kept deleted after), and put back by a restore (entry
//! points from the record, last; then the record of the restore and the manifest).
//! What to keep and what to restore is decided in [`super::release`].

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use serde::Serialize;

use super::bucket;
use super::manifest::{DeployRecord, LocalFile, Manifest};
use super::release::{self, Release, ReleaseFile, RELEASE_VERSION};
use super::{ManifestLocation, SpaTarget, GIT_SHA_METADATA, SHA256_METADATA};
use crate::aws::S3;
use crate::ui::progress::ItemProgress;

impl ManifestLocation {
    /// Where release `number` of this SPA and bucket is kept: beside the manifest.
    pub fn release(&self, number: u64) -> ManifestLocation {
        let dir = self.key.strip_suffix("manifest.json").unwrap_or(&self.key);
        ManifestLocation {
            bucket: self.bucket.clone(),
            key: format!("{dir}releases/{number}.json"),
        }
    }
}

/// The record of an upload: every built file, entry points with their bytes.
pub(super) async fn release_of_upload(
    spa: &SpaTarget,
    record: &DeployRecord,
    local: &[LocalFile],
) -> Result<Release> {
    let mut files = BTreeMap::new();
    for file in local {
        let body = if file.entry_point {
            let bytes = tokio::fs::read(&file.path)
                .await
                .with_context(|| format!("cannot read {}", file.path.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            None
        };
        files.insert(
            file.key.clone(),
            ReleaseFile {
                sha256: file.sha256.clone(),
                size: file.size,
                content_type: file.content_type.clone(),
                cache_control: file.cache_control.clone(),
                body,
            },
        );
    }
    Ok(Release {
        version: RELEASE_VERSION,
        spa: spa.name.clone(),
        number: record.number,
        git_sha: record.git_sha.clone(),
        time: record.time.clone(),
        restored_from: record.restored_from,
        files,
    })
}

pub(super) async fn write_release(s3: &S3, at: &ManifestLocation, release: &Release) -> Result<()> {
    let body = serde_json::to_vec(release).context("cannot encode the release record")?;
    s3.api
        .put_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .body(ByteStream::from(body))
        .content_type("application/json; charset=utf-8")
        .cache_control("no-store")
        .send()
        .await
        .map_err(|err| anyhow!(s3.explain("s3:PutObject", &err)))
        .with_context(|| format!("cannot write the release record {at}"))?;
    Ok(())
}

/// Release `number` of `spa`; `None` when its record is not in the bucket.
pub async fn read_release(s3: &S3, spa: &SpaTarget, number: u64) -> Result<Option<Release>> {
    let at = spa.manifest.release(number);
    let Some(release) =
        bucket::read_json::<Release>(s3, &at, "the release record", "is not a release record")
            .await?
    else {
        return Ok(None);
    };
    if release.version > RELEASE_VERSION {
        bail!(
            "{at} has format version {}, newer than this deploy understands ({RELEASE_VERSION}): use a newer deploy",
            release.version
        );
    }
    Ok(Some(release))
}

/// Deletes the records of releases no longer kept (a failure is only logged: the
/// next upload tries again, and a stray record is never chosen, the manifest decides).
pub(super) async fn drop_releases(s3: &S3, spa: &SpaTarget, numbers: &[u64]) {
    if numbers.is_empty() {
        return;
    }
    let keys: Vec<String> = numbers
        .iter()
        .map(|n| spa.manifest.release(*n).key)
        .collect();
    if let Err(err) = bucket::delete_keys(s3, &spa.manifest.bucket, &keys).await {
        tracing::warn!(spa = %spa.name, error = %format!("{err:#}"), "old release records not deleted");
    }
}

/// The SPA's manifest and its bucket as they are now, for choosing and checking a
/// release to restore (`None`: no manifest, nothing was ever uploaded by deploy).
pub async fn current_state(
    s3: &S3,
    spa: &SpaTarget,
) -> Result<Option<(Manifest, BTreeMap<String, super::manifest::BucketObject>)>> {
    let Some(manifest) = bucket::read_manifest(s3, &spa.manifest).await? else {
        return Ok(None);
    };
    let listing = bucket::list_bucket(s3, &spa.bucket).await?;
    Ok(Some((manifest, listing)))
}

/// The live release of an SPA: its manifest's last deploy (`None`: no manifest).
pub async fn live_release(
    s3: &S3,
    spa_manifest: &ManifestLocation,
) -> Result<Option<DeployRecord>> {
    Ok(bucket::read_manifest(s3, spa_manifest)
        .await?
        .and_then(|manifest| manifest.live().cloned()))
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub spa: String,
    pub bucket: String,
    /// The release put back, and the commit it was built from.
    pub restored: u64,
    pub git_sha: String,
    /// The number the restore got as the live release.
    pub release: u64,
    pub time: String,
    /// Entry points written, in order.
    pub entry_points: Vec<String>,
    /// Files the release serves that were in the bucket already.
    pub unchanged: usize,
    pub secs: f64,
}

/// Puts `release` back in the SPA's bucket. Every other file it serves is there as
/// released (checked by the caller, [`release::missing_files`], under the lock), so
/// only the entry points are written, from the record, after a last check; then the
/// record of the restore (a release of its own) and the manifest naming it.
pub async fn restore(
    s3: &S3,
    spa: &SpaTarget,
    release: &Release,
    keep: u64,
    item: &ItemProgress,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let (previous, listing) = current_state(s3, spa)
        .await?
        .with_context(|| format!("{} has no deploy manifest any more", spa.manifest))?;
    let missing = release::missing_files(release, &previous, &listing);
    if !missing.is_empty() {
        bail!(
            "release #{} of SPA {} needs files s3://{} no longer holds as released: {}",
            release.number,
            spa.name,
            spa.bucket,
            missing.join(", ")
        );
    }
    // As an upload would: a run dying between the entry points and the manifest makes
    // the next upload list the bucket.
    if previous.verified_deploy != 0 {
        let unverified = Manifest {
            verified_deploy: 0,
            ..previous.clone()
        };
        let sha = previous.deployed_sha().unwrap_or_default();
        bucket::write_manifest(s3, &spa.manifest, &unverified, sha).await?;
    }
    let mut etags = BTreeMap::new();
    let mut entry_points = Vec::new();
    for (key, file) in release.files.iter().filter(|(_, f)| f.entry_point()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file.body.as_deref().unwrap_or_default())
            .with_context(|| format!("the release record of {key} is damaged"))?;
        let output = s3
            .api
            .put_object()
            .bucket(&spa.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .content_type(&file.content_type)
            .cache_control(&file.cache_control)
            .metadata(SHA256_METADATA, &file.sha256)
            .metadata(GIT_SHA_METADATA, &release.git_sha)
            .send()
            .await
            .map_err(|err| anyhow!(s3.explain("s3:PutObject", &err)))
            .with_context(|| format!("cannot restore s3://{}/{key}", spa.bucket))?;
        etags.insert(key.clone(), output.e_tag().map(str::to_owned));
        entry_points.push(key.clone());
        item.detail(&format!("restored {key}"));
    }
    let record = DeployRecord {
        number: previous.next_deploy(),
        git_sha: release.git_sha.clone(),
        time: crate::timestamp::rfc3339(crate::timestamp::now_unix()),
        uploaded: entry_points.len(),
        deleted: 0,
        release: true,
        restored_from: Some(release.number),
    };
    let (_, dropped) = super::manifest::kept_after(&previous.deploys, record.number, keep);
    let restored = Release {
        number: record.number,
        time: record.time.clone(),
        restored_from: Some(release.number),
        ..release.clone()
    };
    write_release(s3, &spa.manifest.release(record.number), &restored).await?;
    let next = release::restored_manifest(&previous, release, &etags, record.clone());
    bucket::write_manifest(s3, &spa.manifest, &next, &release.git_sha).await?;
    drop_releases(s3, spa, &dropped).await;
    Ok(RestoreReport {
        spa: spa.name.clone(),
        bucket: spa.bucket.clone(),
        restored: release.number,
        git_sha: release.git_sha.clone(),
        release: record.number,
        time: record.time,
        unchanged: release.files.len() - entry_points.len(),
        entry_points,
        secs: started.elapsed().as_secs_f64(),
    })
}
