//! `[spa_upload]` of `deploy.toml`: how SPA output goes to S3 and CloudFront.

use serde::{Deserialize, Serialize};

/// `[spa_upload]`: how SPA output goes to S3 and CloudFront (the same for every SPA).
///
/// Patterns (`entry_points`, `immutable`) are matched against the bucket key: `*` is
/// any run of characters but `/`, `**` any run including `/`, `?` one character. A
/// pattern without `/` matches the file name in any directory (`*.html`); one with `/`
/// matches from the top of the output (`assets/**`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpaUploadConfig {
    /// Files uploaded (and hashed) at the same time, per SPA.
    pub concurrency: usize,
    /// Files larger than this many MiB are uploaded in parts (multipart upload).
    pub multipart_threshold_mib: u64,
    /// Size of each part of a multipart upload, in MiB (S3's minimum is 5).
    pub multipart_part_mib: u64,
    /// A file that is no longer in the build output stays in the bucket for this many
    /// later deploys, so that pages already open can still load it, then is deleted.
    pub retention_deploys: u64,
    /// Releases kept restorable by `deploy rollback` and `deploy undo`, newest first:
    /// each keeps its record in the private bucket, and every file it serves stays in
    /// the SPA bucket until it is no longer among them.
    pub releases_kept: u64,
    /// Compare with a full listing of the bucket every this many deploys (and always when
    /// the bucket has no deploy manifest yet, or the last upload did not finish): objects
    /// deleted or changed behind deploy's back are then uploaded again, and objects it
    /// does not know are adopted for retention. In between, the manifest deploy keeps in the bucket is trusted, which
    /// spares the listing (the slowest part of a run with nothing to upload). 1 lists on
    /// every deploy.
    pub verify_every_deploys: u64,
    /// Entry points: uploaded after every other file, with `entry_point_cache_control`.
    pub entry_points: Vec<String>,
    /// Files cached as immutable besides those whose name carries a hex content hash
    /// (`app.3f9a1c2e.js` is detected on its own).
    pub immutable: Vec<String>,
    /// Cache-Control of entry points.
    pub entry_point_cache_control: String,
    /// Cache-Control of content-hashed and `immutable` files.
    pub immutable_cache_control: String,
    /// Cache-Control of every other file.
    pub default_cache_control: String,
    /// Paths of the one CloudFront invalidation made per distribution after an upload.
    pub invalidation_paths: Vec<String>,
    /// Wait up to this many seconds for the invalidation to complete; 0 does not wait.
    pub invalidation_wait_secs: u64,
}

impl Default for SpaUploadConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            multipart_threshold_mib: 8,
            multipart_part_mib: 8,
            retention_deploys: 3,
            releases_kept: 5,
            verify_every_deploys: 10,
            entry_points: vec!["*.html".into()],
            immutable: Vec::new(),
            entry_point_cache_control: "no-cache".into(),
            immutable_cache_control: "public, max-age=31536000, immutable".into(),
            default_cache_control: "public, max-age=300".into(),
            // SPEC §5: both, so that neither URL of the app serves a stale index.html.
            invalidation_paths: vec!["/".into(), "/index.html".into()],
            invalidation_wait_secs: 0,
        }
    }
}

impl SpaUploadConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("spa_upload.concurrency must be at least 1".into());
        }
        if self.multipart_threshold_mib == 0 {
            return Err("spa_upload.multipart_threshold_mib must be at least 1".into());
        }
        if !(5..=5120).contains(&self.multipart_part_mib) {
            return Err(
                "spa_upload.multipart_part_mib must be between 5 and 5120 (S3's part size limits)"
                    .into(),
            );
        }
        if self.retention_deploys == 0 {
            return Err("spa_upload.retention_deploys must be at least 1: a file is never deleted by the deploy that stops shipping it".into());
        }
        if self.releases_kept == 0 {
            return Err(
                "spa_upload.releases_kept must be at least 1: the live release is always kept"
                    .into(),
            );
        }
        if self.verify_every_deploys == 0 {
            return Err(
                "spa_upload.verify_every_deploys must be at least 1 (1: every deploy)".into(),
            );
        }
        if self.entry_points.is_empty() {
            return Err("spa_upload.entry_points must name at least one pattern".into());
        }
        for (key, patterns) in [
            ("spa_upload.entry_points", &self.entry_points),
            ("spa_upload.immutable", &self.immutable),
        ] {
            if patterns.iter().any(|pattern| pattern.trim().is_empty()) {
                return Err(format!("{key} must not contain an empty pattern"));
            }
        }
        for (key, value) in [
            (
                "spa_upload.entry_point_cache_control",
                &self.entry_point_cache_control,
            ),
            (
                "spa_upload.immutable_cache_control",
                &self.immutable_cache_control,
            ),
            (
                "spa_upload.default_cache_control",
                &self.default_cache_control,
            ),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{key} must not be empty"));
            }
        }
        if self.invalidation_paths.is_empty() {
            return Err("spa_upload.invalidation_paths must name at least one path".into());
        }
        if let Some(path) = self
            .invalidation_paths
            .iter()
            .find(|path| !path.starts_with('/'))
        {
            return Err(format!(
                "spa_upload.invalidation_paths: {path:?} must start with /"
            ));
        }
        Ok(())
    }
}
