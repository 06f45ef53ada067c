//! SPAs (runbook step 2, SPEC §3 step 7): build each with its own command, upload what
//! changed to its S3 bucket (assets first, entry points last, the right Content-Type and
//! Cache-Control, old files kept for a few deploys), then one CloudFront invalidation.
//!
//! Each bucket holds a deploy manifest ([`MANIFEST_KEY`]) written after everything else:
//! our own SHA-256 of every file, the deploy that last shipped it, and the git SHA of
//! every recent deploy ([`deployed_sha`]). See [`manifest`] for why it, and not ETags,
//! decides what changed.

pub mod manifest;
pub mod rules;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use base64::Engine as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::aws;
use crate::config::SpaUploadConfig;
use crate::docker;
use crate::platform::Spa;
use crate::progress::ItemProgress;

use manifest::{BucketObject, DeployRecord, LocalFile, UploadPlan};
pub use manifest::{Manifest, MANIFEST_KEY};
use rules::FileClass;

/// Lines of build output shown when a build fails.
const BUILD_TAIL_LINES: usize = 30;
const MIB: u64 = 1024 * 1024;
/// S3's limit of parts per multipart upload.
const MAX_PARTS: u64 = 10_000;
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
    /// Extra environment for the build.
    pub env: Vec<(String, String)>,
}

impl SpaTarget {
    /// From the platform's SPA (paths relative to `repo_root`) and the bucket and
    /// distribution found for it (config or terraform outputs).
    pub fn new(
        repo_root: &Path,
        spa: &Spa,
        bucket: String,
        distribution_id: Option<String>,
    ) -> Self {
        Self {
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

// ---------------------------------------------------------------------------------
// Build

/// A build command that failed: what ran, where, how it ended and its last lines.
#[derive(Debug)]
pub struct SpaBuildFailed {
    pub spa: String,
    pub command: String,
    pub dir: PathBuf,
    pub status: String,
    pub tail: Vec<String>,
}

impl fmt::Display for SpaBuildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the build of SPA {} failed: `{}` (in {}) {}",
            self.spa,
            self.command,
            self.dir.display(),
            self.status
        )?;
        write!(f, "last lines of its output:")?;
        for line in &self.tail {
            write!(f, "\n  | {line}")?;
        }
        if docker::is_out_of_disk(&self.tail.join("\n")) {
            write!(
                f,
                "\nthe disk holding {} is full: free some space and re-run",
                self.dir.display()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpaBuildFailed {}

impl SpaBuildFailed {
    /// An npm/corepack network blip (SPEC §5), worth one more try.
    fn is_transient(&self) -> bool {
        docker::is_transient_build_failure(&docker::BuildFailed {
            service: self.spa.clone(),
            message: self.status.clone(),
            tail: self.tail.clone(),
            log_path: PathBuf::new(),
        })
    }
}

/// Runs the SPA's build command (`sh -c <build>` in its directory), its output captured:
/// on failure the error ([`SpaBuildFailed`]) carries the command, its exit status and
/// the last lines of its output. A transient npm/corepack network error is retried
/// once. Checks that the build left its output directory.
pub async fn build(spa: &SpaTarget, item: &ItemProgress) -> Result<()> {
    item.state(&format!("building: {}", spa.build));
    let started = Instant::now();
    let mut result = run_build(spa, item).await?;
    if let Err(failure) = &result {
        if failure.is_transient() {
            item.state("build hit a transient network error; retrying once");
            result = run_build(spa, item).await?;
        }
    }
    if let Err(failure) = result {
        item.finish("build FAILED");
        return Err(failure.into());
    }
    if !spa.output.is_dir() {
        item.finish("build FAILED");
        bail!(
            "the build of SPA {} (`{}`) succeeded but left no output directory {}",
            spa.name,
            spa.build,
            spa.output.display()
        );
    }
    item.state(&format!("built in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// One run of the build command: `Ok(Err(..))` when the command ran and failed.
async fn run_build(
    spa: &SpaTarget,
    item: &ItemProgress,
) -> Result<std::result::Result<(), SpaBuildFailed>> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&spa.build)
        .current_dir(&spa.dir)
        .envs(spa.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start the build of SPA {}: `sh -c {:?}` in {}",
                spa.name,
                spa.build,
                spa.dir.display()
            )
        })?;
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<String>(64);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let readers = tokio::spawn(async move {
        tokio::join!(
            forward_lines(stdout, lines_tx.clone()),
            forward_lines(stderr, lines_tx)
        );
    });
    let mut tail = VecDeque::with_capacity(BUILD_TAIL_LINES);
    while let Some(line) = lines_rx.recv().await {
        tracing::debug!(spa = %spa.name, "{line}");
        item.detail(&line);
        if tail.len() == BUILD_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let _ = readers.await;
    let status = child
        .wait()
        .await
        .with_context(|| format!("cannot wait for the build of SPA {}", spa.name))?;
    if status.success() {
        return Ok(Ok(()));
    }
    let status = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was stopped ({status})"),
    };
    Ok(Err(SpaBuildFailed {
        spa: spa.name.clone(),
        command: spa.build.clone(),
        dir: spa.dir.clone(),
        status,
        tail: tail.into(),
    }))
}

async fn forward_lines(reader: impl AsyncRead + Unpin, lines: tokio::sync::mpsc::Sender<String>) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
                if lines.send(line).await.is_err() {
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Upload

/// What an upload did.
#[derive(Debug, Clone, Serialize)]
pub struct UploadReport {
    pub spa: String,
    pub bucket: String,
    pub git_sha: String,
    /// This upload's number in the bucket's manifest.
    pub deploy: u64,
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
            "{}: s3://{} deploy #{} ({}): uploaded {} file(s) ({}), {} unchanged",
            self.spa,
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
    s3: &aws_sdk_s3::Client,
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
        let previous = read_manifest(s3, bucket).await?;
        let listing = if manifest::needs_listing(previous.as_ref(), settings.verify_every_deploys) {
            Some(list_bucket(s3, bucket).await?)
        } else {
            None
        };
        Ok::<_, anyhow::Error>((previous, listing))
    };
    let (local, (found, listing)) = tokio::try_join!(scan_output(spa, settings), bucket_state)?;
    let previous = found.clone().unwrap_or_default();
    tracing::debug!(
        spa = %spa.name,
        files = local.len(),
        listed = listing.as_ref().map(BTreeMap::len),
        secs = started.elapsed().as_secs_f64(),
        "compared the build output with the bucket"
    );
    let plan = manifest::plan_upload(
        &local,
        &previous,
        listing.as_ref(),
        settings.retention_deploys,
    );
    let UploadPlan {
        deploy,
        upload: changed,
        unchanged,
        stale_kept,
        expire,
        adopted,
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
            write_manifest(s3, bucket, &unverified, sha).await?;
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
                let etag = put_file(s3, bucket, file, git_sha, settings).await?;
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
    let deleted = delete_keys(s3, bucket, expire).await?;

    let record = DeployRecord {
        number: *deploy,
        git_sha: git_sha.to_owned(),
        time: now_rfc3339(),
        uploaded: uploaded.len(),
        deleted: deleted.len(),
    };
    let next = manifest::next_manifest(
        &previous,
        &plan,
        &local,
        listing.as_ref(),
        &new_etags,
        record,
    );
    write_manifest(s3, bucket, &next, git_sha).await?;
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

/// The git SHA of the latest complete upload to `bucket`, from its manifest; `None`
/// when nothing was ever uploaded by this tool.
pub async fn deployed_sha(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<String>> {
    Ok(read_manifest(s3, bucket)
        .await?
        .and_then(|manifest| manifest.deployed_sha().map(str::to_owned)))
}

/// Lists, hashes and classifies every file under the SPA's output directory.
async fn scan_output(spa: &SpaTarget, settings: &SpaUploadConfig) -> Result<Vec<LocalFile>> {
    let root = spa.output.clone();
    let paths = tokio::task::spawn_blocking(move || list_files(&root))
        .await
        .context("the file listing task failed")??;
    let hashers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut files: Vec<LocalFile> = stream::iter(paths)
        .map(|(key, path)| async move {
            let (size, digest) = tokio::task::spawn_blocking({
                let path = path.clone();
                move || hash_file(&path)
            })
            .await
            .context("the hashing task failed")??;
            let class = rules::classify(&key, settings);
            Ok::<_, anyhow::Error>(LocalFile {
                content_type: rules::content_type(&key),
                cache_control: rules::cache_control(class, settings).to_owned(),
                entry_point: class == FileClass::EntryPoint,
                key,
                path,
                size,
                sha256: hex(&digest),
                sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            })
        })
        .buffer_unordered(hashers.min(settings.concurrency))
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(file) = files.iter().find(|file| file.key == MANIFEST_KEY) {
        bail!(
            "the build output of SPA {} contains {}, the key deploy keeps its manifest under",
            spa.name,
            file.path.display()
        );
    }
    if !files.iter().any(|file| file.entry_point) {
        bail!(
            "the build output of SPA {} ({}) has no entry point (spa_upload.entry_points = {:?}): nothing was uploaded",
            spa.name,
            spa.output.display(),
            settings.entry_points
        );
    }
    Ok(files)
}

/// Every file below `root` as (bucket key, path), following symbolic links.
fn list_files(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            let metadata = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if metadata.is_dir() {
                dirs.push(path);
            } else if metadata.is_file() {
                let relative = path.strip_prefix(root).expect("below the root");
                let parts: Option<Vec<&str>> = relative
                    .components()
                    .map(|component| component.as_os_str().to_str())
                    .collect();
                let key = parts
                    .with_context(|| format!("{} is not a UTF-8 file name", path.display()))?
                    .join("/");
                files.push((key, path));
            }
        }
    }
    Ok(files)
}

/// Size and SHA-256 of a file, read in chunks.
fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((size, hasher.finalize().into()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

async fn list_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<BTreeMap<String, BucketObject>> {
    let mut objects = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            let missing = err
                .as_service_error()
                .is_some_and(|e| e.is_no_such_bucket());
            if missing {
                anyhow!("the bucket s3://{bucket} does not exist in this account/region; was the environment bootstrapped (infra/scripts/bootstrap.sh)?")
            } else {
                anyhow!(aws::explain(&err, None)).context(format!("cannot list s3://{bucket}"))
            }
        })?;
        for object in page.contents() {
            if let Some(key) = object.key() {
                objects.insert(
                    key.to_owned(),
                    BucketObject {
                        size: object.size().unwrap_or_default().max(0) as u64,
                        etag: object.e_tag().map(str::to_owned),
                    },
                );
            }
        }
    }
    Ok(objects)
}

async fn read_manifest(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<Manifest>> {
    let location = format!("s3://{bucket}/{MANIFEST_KEY}");
    let output = match s3
        .get_object()
        .bucket(bucket)
        .key(MANIFEST_KEY)
        .send()
        .await
    {
        Ok(output) => output,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(err) => {
            return Err(anyhow!(aws::explain(&err, None)))
                .with_context(|| format!("cannot read the deploy manifest {location}"))
        }
    };
    let body = output
        .body
        .collect()
        .await
        .with_context(|| format!("cannot read the deploy manifest {location}"))?
        .into_bytes();
    let manifest: Manifest = serde_json::from_slice(&body).with_context(|| {
        format!("{location} is not a deploy manifest; delete it to start over (every file is then uploaded again)")
    })?;
    if manifest.version > manifest::MANIFEST_VERSION {
        bail!(
            "{location} has format version {}, newer than this deploy understands ({}): use a newer deploy",
            manifest.version,
            manifest::MANIFEST_VERSION
        );
    }
    Ok(Some(manifest))
}

async fn write_manifest(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    manifest: &Manifest,
    git_sha: &str,
) -> Result<()> {
    let body = serde_json::to_vec_pretty(manifest).context("cannot encode the deploy manifest")?;
    s3.put_object()
        .bucket(bucket)
        .key(MANIFEST_KEY)
        .body(ByteStream::from(body))
        .content_type("application/json; charset=utf-8")
        .cache_control("no-store")
        .metadata(GIT_SHA_METADATA, git_sha)
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, None)))
        .with_context(|| {
            format!("cannot write the deploy manifest s3://{bucket}/{MANIFEST_KEY} (every file is uploaded; the next run compares against the previous manifest)")
        })?;
    Ok(())
}

/// Uploads one file, streamed from disk; in parts above the multipart threshold.
/// Returns the ETag S3 gave it.
async fn put_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    file: &LocalFile,
    git_sha: &str,
    settings: &SpaUploadConfig,
) -> Result<Option<String>> {
    let location = format!("s3://{bucket}/{}", file.key);
    if file.size > settings.multipart_threshold_mib * MIB {
        return put_multipart(s3, bucket, file, git_sha, settings)
            .await
            .with_context(|| {
                format!(
                    "cannot upload {} to {location} (multipart)",
                    file.path.display()
                )
            });
    }
    let body = ByteStream::from_path(&file.path)
        .await
        .with_context(|| format!("cannot read {}", file.path.display()))?;
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(&file.key)
        .body(body)
        .content_type(&file.content_type)
        .cache_control(&file.cache_control)
        .metadata(SHA256_METADATA, &file.sha256)
        // S3 checks the content against the digest we already have; the SDK then sends
        // the body as is instead of computing a CRC32 into an aws-chunked trailer.
        .checksum_sha256(&file.sha256_base64);
    if file.entry_point {
        request = request.metadata(GIT_SHA_METADATA, git_sha);
    }
    let output = request
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, None)))
        .with_context(|| format!("cannot upload {} to {location}", file.path.display()))?;
    Ok(output.e_tag().map(str::to_owned))
}

async fn put_multipart(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    file: &LocalFile,
    git_sha: &str,
    settings: &SpaUploadConfig,
) -> Result<Option<String>> {
    let mut request = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&file.key)
        .content_type(&file.content_type)
        .cache_control(&file.cache_control)
        .metadata(SHA256_METADATA, &file.sha256)
        // The SDK checksums every part (CRC32); naming the algorithm here makes S3
        // combine them into a checksum of the whole object.
        .checksum_algorithm(ChecksumAlgorithm::Crc32);
    if file.entry_point {
        request = request.metadata(GIT_SHA_METADATA, git_sha);
    }
    let created = request
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, None)))
        .context("CreateMultipartUpload failed")?;
    let upload_id = created
        .upload_id()
        .context("CreateMultipartUpload returned no upload id")?
        .to_owned();
    let result = upload_parts(s3, bucket, file, &upload_id, settings).await;
    if result.is_err() {
        // Parts of an unfinished upload are stored (and billed) until aborted.
        let _ = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&file.key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

async fn upload_parts(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    file: &LocalFile,
    upload_id: &str,
    settings: &SpaUploadConfig,
) -> Result<Option<String>> {
    // Parts grow when the file would need more than S3's 10,000.
    let part_size = (settings.multipart_part_mib * MIB).max(file.size.div_ceil(MAX_PARTS));
    let mut parts = Vec::new();
    let mut offset = 0;
    let mut number = 1;
    while offset < file.size {
        let length = part_size.min(file.size - offset);
        let body = ByteStream::read_from()
            .path(&file.path)
            .offset(offset)
            .length(Length::Exact(length))
            .build()
            .await
            .with_context(|| format!("cannot read {}", file.path.display()))?;
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(&file.key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(length as i64)
            .body(body)
            .send()
            .await
            .map_err(|err| anyhow!(aws::explain(&err, None)))
            .with_context(|| format!("UploadPart {number} failed"))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                .build(),
        );
        offset += length;
        number += 1;
    }
    let completed = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(&file.key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, None)))
        .context("CompleteMultipartUpload failed")?;
    Ok(completed.e_tag().map(str::to_owned))
}

/// Deletes `keys` (DeleteObjects, 1,000 a call); returns the keys deleted.
async fn delete_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[String],
) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for chunk in keys.chunks(1000) {
        let objects = chunk
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .context("cannot name the objects to delete")?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .context("cannot name the objects to delete")?;
        let output = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|err| anyhow!(aws::explain(&err, None)))
            .with_context(|| {
                format!(
                    "cannot delete {} old file(s) from s3://{bucket} (the new files are live; the next run deletes them)",
                    chunk.len()
                )
            })?;
        if let Some(error) = output.errors().first() {
            bail!(
                "cannot delete s3://{bucket}/{}: {} {} (the new files are live; the next run deletes it)",
                error.key().unwrap_or("?"),
                error.code().unwrap_or("error"),
                error.message().unwrap_or_default()
            );
        }
        deleted.extend(chunk.iter().cloned());
    }
    Ok(deleted)
}

fn now_rfc3339() -> String {
    DateTime::from(SystemTime::now())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
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

// ---------------------------------------------------------------------------------
// CloudFront

/// Creates one invalidation of `paths` on the distribution and returns its id. With
/// `wait`, polls until it completes (CloudFront says `Completed`, moto `COMPLETED`; the
/// SDK's own waiter only knows the first) or the time is up, which is an error.
pub async fn invalidate(
    cloudfront: &aws_sdk_cloudfront::Client,
    distribution_id: &str,
    paths: &[String],
    wait: Option<Duration>,
) -> Result<String> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let what =
        || format!("cannot invalidate {paths:?} on CloudFront distribution {distribution_id}");
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(paths.len() as i32)
                .set_items(Some(paths.to_vec()))
                .build()
                .with_context(what)?,
        )
        .caller_reference(caller_reference())
        .build()
        .with_context(what)?;
    let created = cloudfront
        .create_invalidation()
        .distribution_id(distribution_id)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, None)))
        .with_context(what)?;
    let id = created
        .invalidation()
        .map(|invalidation| invalidation.id().to_owned())
        .with_context(|| {
            format!("CloudFront returned no invalidation id for distribution {distribution_id}")
        })?;
    if let Some(timeout) = wait {
        wait_for_invalidation(cloudfront, distribution_id, &id, timeout).await?;
    }
    Ok(id)
}

/// Unique per call: CloudFront treats a repeated reference as the same request.
fn caller_reference() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "deploy-{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn wait_for_invalidation(
    cloudfront: &aws_sdk_cloudfront::Client,
    distribution_id: &str,
    id: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let mut interval = Duration::from_millis(500);
    loop {
        let output = cloudfront
            .get_invalidation()
            .distribution_id(distribution_id)
            .id(id)
            .send()
            .await
            .map_err(|err| anyhow!(aws::explain(&err, None)))
            .with_context(|| {
                format!(
                    "cannot read invalidation {id} of CloudFront distribution {distribution_id}"
                )
            })?;
        let status = output
            .invalidation()
            .map(|invalidation| invalidation.status().to_owned())
            .unwrap_or_default();
        if status.eq_ignore_ascii_case("completed") {
            return Ok(());
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            bail!(
                "invalidation {id} of CloudFront distribution {distribution_id} is still {status} after {}s; it carries on by itself (aws cloudfront get-invalidation --distribution-id {distribution_id} --id {id})",
                elapsed.as_secs()
            );
        }
        tokio::time::sleep(interval.min(timeout - elapsed)).await;
        interval = (interval * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn hashes_are_hex_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        let (size, digest) = hash_file(&path).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            hex(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn output_files_are_listed_as_slash_separated_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assets/deep")).unwrap();
        for file in ["index.html", "assets/a.js", "assets/deep/b.css"] {
            std::fs::write(dir.path().join(file), file).unwrap();
        }
        let mut keys: Vec<String> = list_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["assets/a.js", "assets/deep/b.css", "index.html"]);
    }

    fn target(dir: &Path, build: &str) -> SpaTarget {
        SpaTarget {
            name: "admin-ui".into(),
            dir: dir.to_path_buf(),
            build: build.into(),
            output: dir.join("dist"),
            bucket: "bucket".into(),
            distribution_id: None,
            env: vec![("SPA_GREETING".into(), "hello".into())],
        }
    }

    #[tokio::test]
    async fn a_failed_build_names_the_command_status_and_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let spa = target(
            dir.path(),
            "for i in $(seq 1 40); do echo line $i; done; sleep 0.2; echo oops >&2; exit 3",
        );
        let progress = crate::progress::Progress::new(true);
        let err = build(&spa, &progress.item("admin-ui")).await.unwrap_err();
        let failure = err.downcast_ref::<SpaBuildFailed>().expect("typed failure");
        assert_eq!(failure.status, "exited with status 3");
        assert_eq!(failure.tail.len(), BUILD_TAIL_LINES);
        assert!(failure.tail.contains(&"oops".to_owned()));
        assert!(!failure.tail.contains(&"line 1".to_owned()));
        let message = err.to_string();
        assert!(
            message.contains("the build of SPA admin-ui failed"),
            "{message}"
        );
        assert!(message.contains("exit 3"), "{message}");
    }

    #[tokio::test]
    async fn a_build_without_output_is_an_error_and_env_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let progress = crate::progress::Progress::new(true);
        let spa = target(dir.path(), "test \"$SPA_GREETING\" = hello");
        let err = build(&spa, &progress.item("admin-ui")).await.unwrap_err();
        assert!(
            err.to_string().contains("left no output directory"),
            "{err}"
        );
        let spa = target(dir.path(), "test \"$SPA_GREETING\" = hello && mkdir dist");
        build(&spa, &progress.item("admin-ui")).await.unwrap();
    }

    #[test]
    fn out_of_disk_is_recognised() {
        let failure = SpaBuildFailed {
            spa: "admin-ui".into(),
            command: "pnpm build".into(),
            dir: "/repo/apps/admin-ui".into(),
            status: "exited with status 1".into(),
            tail: vec!["ERR_PNPM_ENOSPC  ENOSPC: no space left on device".into()],
        };
        assert!(failure.to_string().contains("is full"), "{failure}");
        assert!(!failure.is_transient());
    }

    #[test]
    fn caller_references_are_unique() {
        assert_ne!(caller_reference(), caller_reference());
    }

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
