//! Registry-to-registry copy of one image: its manifest (or manifest list with its
//! platform manifests), config and layer blobs. Blobs stream from the source's GET into
//! the target's upload with bounded memory (never whole, never on disk); blobs the target
//! has are not sent; on one registry they are mounted across repositories. Each step is
//! retried on transient failures, as a push is; at the end the target's digest must be
//! the source's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use hyper::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::client::{self, RegistryClient};
use super::failure::is_transient;
use super::manifest::{self, BlobRef, Content, Manifest};

/// Attempts per step (a blob, a manifest): the first and four retries with backoff, as
/// for a push.
pub const ATTEMPTS: u32 = 5;

/// Blobs of one image copied at once.
const BLOB_CONCURRENCY: usize = 4;

/// An image's place: a registry and a repository in it.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub registry: &'a RegistryClient,
    pub repository: &'a str,
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry.host, self.repository)
    }
}

/// What one copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// The digest of the manifest copied (the same on both sides).
    pub digest: String,
    /// Manifests written (1, or a list and its platform manifests).
    pub manifests: usize,
    /// Blobs uploaded, and their bytes.
    pub blobs_sent: usize,
    pub bytes_sent: u64,
    /// Blobs the target had already (not sent).
    pub blobs_present: usize,
    /// Blobs mounted from the source repository (same registry; not sent).
    pub blobs_mounted: usize,
}

/// The target ended with other bytes than the source's: nothing may be rolled.
#[derive(Debug, thiserror::Error)]
#[error("after the copy {target} is {found}, not the source's {expected}")]
pub struct DigestMismatch {
    pub target: String,
    pub expected: String,
    pub found: String,
}

/// Fetches the manifest `reference` (a tag or a digest) of `place`.
pub async fn fetch_manifest(place: Place<'_>, reference: &str) -> Result<Option<Manifest>> {
    fetch_manifest_within(place, reference, ATTEMPTS).await
}

/// [`fetch_manifest`] with at most `attempts` tries of a transient failure.
pub async fn fetch_manifest_within(
    place: Place<'_>,
    reference: &str,
    attempts: u32,
) -> Result<Option<Manifest>> {
    retried_within(
        attempts,
        &format!("reading {place}:{reference}"),
        |_| async {
            let url = place
                .registry
                .url(&format!("{}/manifests/{reference}", place.repository));
            let response = place
                .registry
                .send(Method::GET, &url, &[("accept", manifest::ACCEPT)], None)
                .await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Ok(None),
                _ => bail!("GET {url}: {}", client::error_text(response).await),
            }
            let content_type = client::header(&response, "content-type");
            let served_digest = client::header(&response, "docker-content-digest");
            let bytes = client::read_limited(response, manifest::MAX_MANIFEST_BYTES).await?;
            let manifest = Manifest::parse(bytes, content_type.as_deref())
                .with_context(|| format!("cannot read the manifest of {place}:{reference}"))?;
            if let Some(served) = served_digest.filter(|d| manifest::is_digest(d)) {
                if served != manifest.digest {
                    bail!(
                    "{place}:{reference}: the registry says {served} but the bytes it sent are {}",
                    manifest.digest
                );
                }
            }
            if reference.starts_with("sha256:") && reference != manifest.digest {
                bail!(
                    "{place}@{reference}: the registry sent bytes whose digest is {}",
                    manifest.digest
                );
            }
            Ok(Some(manifest))
        },
    )
    .await
}

/// The digest of `reference` in `place`, `None` when there is no such manifest.
pub async fn digest_of(place: Place<'_>, reference: &str) -> Result<Option<String>> {
    Ok(fetch_manifest(place, reference).await?.map(|m| m.digest))
}

/// Copies `source:tag` to `target:tag`, then reads `target:tag` back: its digest must
/// be the source's ([`DigestMismatch`] otherwise).
pub async fn copy_image(
    source: Place<'_>,
    target: Place<'_>,
    tag: &str,
    on_progress: &(dyn Fn(&str) + Sync),
) -> Result<CopyReport> {
    let manifest = fetch_manifest(source, tag)
        .await?
        .with_context(|| format!("{source}:{tag} does not exist"))?;
    let report = Mutex::new(CopyReport {
        digest: manifest.digest.clone(),
        ..CopyReport::default()
    });
    let sent = AtomicU64::new(0);
    let counters = Counters {
        report: &report,
        bytes: &sent,
    };
    match &manifest.content {
        Content::Image { blobs } => {
            copy_blobs(source, target, blobs, &counters, on_progress).await?
        }
        Content::Index { manifests } => {
            for child_digest in manifests {
                let child = fetch_manifest(source, child_digest)
                    .await?
                    .with_context(|| {
                        format!(
                            "{source}@{child_digest} (a platform manifest of {tag}) does not exist"
                        )
                    })?;
                if let Content::Image { blobs } = &child.content {
                    copy_blobs(source, target, blobs, &counters, on_progress).await?;
                } else {
                    bail!("{source}@{child_digest}: a manifest list inside a manifest list is not copied");
                }
                put_manifest(target, child_digest, &child).await?;
                lock(&report).manifests += 1;
            }
        }
    }
    on_progress(&format!("writing the manifest {}", manifest.digest));
    put_manifest(target, tag, &manifest).await?;
    let mut report = lock(&report).clone();
    report.manifests += 1;
    report.bytes_sent = sent.load(Ordering::Relaxed);
    // The proof: what the target serves under the tag now.
    let found = digest_of(target, tag)
        .await?
        .with_context(|| format!("{target}:{tag} is missing right after it was written"))?;
    if found != manifest.digest {
        return Err(DigestMismatch {
            target: format!("{target}:{tag}"),
            expected: manifest.digest,
            found,
        }
        .into());
    }
    Ok(report)
}

struct Counters<'a> {
    report: &'a Mutex<CopyReport>,
    bytes: &'a AtomicU64,
}

fn lock(report: &Mutex<CopyReport>) -> std::sync::MutexGuard<'_, CopyReport> {
    report
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How one blob reached the target.
enum BlobOutcome {
    Present,
    Mounted,
    Sent(u64),
}

async fn copy_blobs(
    source: Place<'_>,
    target: Place<'_>,
    blobs: &[BlobRef],
    counters: &Counters<'_>,
    on_progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let mut results = futures_util::stream::iter(blobs.iter().cloned())
        .map(|blob| async move {
            let outcome = retried(&format!("copying blob {} to {target}", blob.digest), |_| {
                copy_blob(source, target, &blob, counters.bytes)
            })
            .await?;
            if let BlobOutcome::Sent(bytes) = outcome {
                on_progress(&format!("sent {} ({bytes} bytes)", short(&blob.digest)));
            }
            Ok::<_, anyhow::Error>(outcome)
        })
        .buffer_unordered(BLOB_CONCURRENCY);
    let mut first_error = None;
    while let Some(result) = results.next().await {
        match result {
            Ok(outcome) => {
                let mut report = lock(counters.report);
                match outcome {
                    BlobOutcome::Present => report.blobs_present += 1,
                    BlobOutcome::Mounted => report.blobs_mounted += 1,
                    BlobOutcome::Sent(_) => report.blobs_sent += 1,
                }
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

async fn copy_blob(
    source: Place<'_>,
    target: Place<'_>,
    blob: &BlobRef,
    sent_total: &AtomicU64,
) -> Result<BlobOutcome> {
    let digest = &blob.digest;
    let registry = target.registry;
    let head = registry
        .send(
            Method::HEAD,
            &registry.url(&format!("{}/blobs/{digest}", target.repository)),
            &[],
            None,
        )
        .await?;
    match head.status() {
        StatusCode::OK => return Ok(BlobOutcome::Present),
        StatusCode::NOT_FOUND => {}
        status => bail!("HEAD {target} blob {digest}: HTTP {status}"),
    }
    // One registry: ask it to mount the blob from the source repository.
    let same_registry = source.registry.host == registry.host;
    let start_url = if same_registry {
        registry.url(&format!(
            "{}/blobs/uploads/?mount={digest}&from={}",
            target.repository, source.repository
        ))
    } else {
        registry.url(&format!("{}/blobs/uploads/", target.repository))
    };
    let started = registry
        .send(Method::POST, &start_url, &[("content-length", "0")], None)
        .await?;
    let status = started.status();
    if status == StatusCode::CREATED && same_registry {
        return Ok(BlobOutcome::Mounted);
    }
    if status != StatusCode::ACCEPTED {
        bail!(
            "POST {}: {}",
            client::shown(&start_url),
            client::error_text(started).await
        );
    }
    let location = client::header(&started, "location")
        .with_context(|| format!("POST {}: no upload location", client::shown(&start_url)))?;

    // The source's bytes, streamed: hashed and counted as they pass.
    let blob_url = source
        .registry
        .url(&format!("{}/blobs/{digest}", source.repository));
    let response = source
        .registry
        .send(Method::GET, &blob_url, &[], None)
        .await?;
    if response.status() != StatusCode::OK {
        bail!("GET {blob_url}: {}", client::error_text(response).await);
    }
    let length = client::header(&response, "content-length");
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let counted = Arc::new(AtomicU64::new(0));
    let (hash_in, count_in) = (hasher.clone(), counted.clone());
    let body = response
        .into_body()
        .map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                if let Ok(mut hash) = hash_in.lock() {
                    hash.update(data);
                }
                count_in.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            frame
        })
        .map_err(|err| Box::new(err) as client::BoxError)
        .boxed();
    let mut headers = vec![("content-type", "application/octet-stream")];
    if let Some(length) = &length {
        headers.push(("content-length", length));
    }
    let upload_url = registry.absolute(&location);
    let patched = registry
        .send(Method::PATCH, &upload_url, &headers, Some(body))
        .await?;
    if patched.status() != StatusCode::ACCEPTED && patched.status() != StatusCode::NO_CONTENT {
        bail!(
            "PATCH {target} blob {digest}: {}",
            client::error_text(patched).await
        );
    }
    let location = client::header(&patched, "location").unwrap_or(location);
    let streamed = hex_digest(&hasher);
    if &streamed != digest {
        bail!("the source served {streamed} for the blob {digest} of {source}: not copied");
    }
    let separator = if location.contains('?') { '&' } else { '?' };
    let finish_url = format!("{}{separator}digest={digest}", registry.absolute(&location));
    let finished = registry
        .send(
            Method::PUT,
            &finish_url,
            &[("content-length", "0")],
            Some(client::empty()),
        )
        .await?;
    if finished.status() != StatusCode::CREATED {
        bail!(
            "PUT {target} blob {digest}: {}",
            client::error_text(finished).await
        );
    }
    let bytes = counted.load(Ordering::Relaxed);
    sent_total.fetch_add(bytes, Ordering::Relaxed);
    Ok(BlobOutcome::Sent(bytes))
}

fn hex_digest(hasher: &Mutex<Sha256>) -> String {
    let hash = hasher
        .lock()
        .map(|h| h.clone().finalize())
        .unwrap_or_default();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes `manifest` as `reference` (a tag, or its own digest) in `target`.
async fn put_manifest(target: Place<'_>, reference: &str, manifest: &Manifest) -> Result<()> {
    retried(&format!("writing {target}:{reference}"), |_| async {
        let url = target
            .registry
            .url(&format!("{}/manifests/{reference}", target.repository));
        let length = manifest.bytes.len().to_string();
        let response = target
            .registry
            .send(
                Method::PUT,
                &url,
                &[
                    ("content-type", manifest.media_type.as_str()),
                    ("content-length", length.as_str()),
                ],
                Some(client::full(manifest.bytes.clone())),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            bail!("PUT {url}: {}", client::error_text(response).await);
        }
        if let Some(written) = client::header(&response, "docker-content-digest") {
            if written != manifest.digest {
                return Err(DigestMismatch {
                    target: format!("{target}:{reference}"),
                    expected: manifest.digest.clone(),
                    found: written,
                }
                .into());
            }
        }
        Ok(())
    })
    .await
}

/// Runs `step` until it succeeds, fails for good, or [`ATTEMPTS`] transient failures
/// in a row (1 s, 2 s, 4 s, 8 s apart).
async fn retried<T, F, Fut>(what: &str, step: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    retried_within(ATTEMPTS, what, step).await
}

/// [`retried`] with at most `attempts` tries. A retry is logged at debug only: the
/// failure that ends the step is its caller's one message (an error, or one warning
/// per registry for the digest readers).
async fn retried_within<T, F, Fut>(attempts: u32, what: &str, mut step: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match step(attempt).await {
            Ok(value) => return Ok(value),
            Err(err) if attempt < attempts && is_transient(&err) => {
                let wait = Duration::from_secs(1 << (attempt - 1));
                tracing::debug!(%what, attempt, error = %format!("{err:#}"), "registry step failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(err) if is_transient(&err) => {
                return Err(err.context(format!("{what}: failed {attempt} time(s)")))
            }
            Err(err) => return Err(err.context(what.to_owned())),
        }
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
