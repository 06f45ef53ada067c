//! The S3 side of an SPA upload: the bucket listing, the deploy manifest, streamed
//! and multipart uploads, and deletes. Every error names the bucket and key.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};

use super::manifest::{self, BucketObject, LocalFile, Manifest};
use super::{ManifestLocation, GIT_SHA_METADATA, MIB, SHA256_METADATA};
use crate::aws::S3;
use crate::model::config::SpaUploadConfig;

/// S3's limit of parts per multipart upload.
const MAX_PARTS: u64 = 10_000;

pub(super) async fn list_bucket(s3: &S3, bucket: &str) -> Result<BTreeMap<String, BucketObject>> {
    let mut objects = BTreeMap::new();
    let mut pages = s3
        .api
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            let missing = err
                .as_service_error()
                .is_some_and(|e| e.is_no_such_bucket());
            if missing {
                anyhow!("the bucket s3://{bucket} does not exist in this account/region; was the environment bootstrapped (infra/scripts/bootstrap.sh)?")
            } else {
                anyhow!(s3.explain("s3:ListObjectsV2", &err)).context(format!("cannot list s3://{bucket}"))
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

/// The JSON object at `at`, read as a `T`; `None` when the bucket has no such key.
/// `what` names the object in errors ("the deploy manifest", "the release record"), and
/// `not_one` says what to do when the object is not a `T`.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    s3: &S3,
    at: &ManifestLocation,
    what: &str,
    not_one: &str,
) -> Result<Option<T>> {
    let output = match s3
        .api
        .get_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .send()
        .await
    {
        Ok(output) => output,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(err) => {
            return Err(anyhow!(s3.explain("s3:GetObject", &err)))
                .with_context(|| format!("cannot read {what} {at}"))
        }
    };
    let body = output
        .body
        .collect()
        .await
        .with_context(|| format!("cannot read {what} {at}"))?
        .into_bytes();
    let value = serde_json::from_slice(&body).with_context(|| format!("{at} {not_one}"))?;
    Ok(Some(value))
}

pub(super) async fn read_manifest(s3: &S3, at: &ManifestLocation) -> Result<Option<Manifest>> {
    let location = at.to_string();
    let Some(manifest) = read_json::<Manifest>(
        s3,
        at,
        "the deploy manifest",
        "is not a deploy manifest; delete it to start over (every file is then uploaded again)",
    )
    .await?
    else {
        return Ok(None);
    };
    if manifest.version > manifest::MANIFEST_VERSION {
        bail!(
            "{location} has format version {}, newer than this deploy understands ({}): use a newer deploy",
            manifest.version,
            manifest::MANIFEST_VERSION
        );
    }
    Ok(Some(manifest))
}

pub(super) async fn write_manifest(
    s3: &S3,
    at: &ManifestLocation,
    manifest: &Manifest,
    git_sha: &str,
) -> Result<()> {
    let body = serde_json::to_vec_pretty(manifest).context("cannot encode the deploy manifest")?;
    s3.api.put_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .body(ByteStream::from(body))
        .content_type("application/json; charset=utf-8")
        .cache_control("no-store")
        .metadata(GIT_SHA_METADATA, git_sha)
        .send()
        .await
        .map_err(|err| anyhow!(s3.explain("s3:PutObject", &err)))
        .with_context(|| {
            format!("cannot write the deploy manifest {at} (every file is uploaded; the next run compares against the previous manifest)")
        })?;
    Ok(())
}

/// Uploads one file, streamed from disk; in parts above the multipart threshold.
/// Returns the ETag S3 gave it.
pub(super) async fn put_file(
    s3: &S3,
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
        .api
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
        .map_err(|err| anyhow!(s3.explain("s3:PutObject", &err)))
        .with_context(|| format!("cannot upload {} to {location}", file.path.display()))?;
    Ok(output.e_tag().map(str::to_owned))
}

pub(super) async fn put_multipart(
    s3: &S3,
    bucket: &str,
    file: &LocalFile,
    git_sha: &str,
    settings: &SpaUploadConfig,
) -> Result<Option<String>> {
    let mut request = s3
        .api
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
        .map_err(|err| anyhow!(s3.explain("s3:CreateMultipartUpload", &err)))
        .context("CreateMultipartUpload failed")?;
    let upload_id = created
        .upload_id()
        .context("CreateMultipartUpload returned no upload id")?
        .to_owned();
    let result = upload_parts(s3, bucket, file, &upload_id, settings).await;
    if result.is_err() {
        // Parts of an unfinished upload are stored (and billed) until aborted.
        let _ = s3
            .api
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&file.key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

pub(super) async fn upload_parts(
    s3: &S3,
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
            .api
            .upload_part()
            .bucket(bucket)
            .key(&file.key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(length as i64)
            .body(body)
            .send()
            .await
            .map_err(|err| anyhow!(s3.explain("s3:UploadPart", &err)))
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
        .api
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
        .map_err(|err| anyhow!(s3.explain("s3:CompleteMultipartUpload", &err)))
        .context("CompleteMultipartUpload failed")?;
    Ok(completed.e_tag().map(str::to_owned))
}

/// Deletes `keys` (DeleteObjects, 1,000 a call); returns the keys deleted.
pub(super) async fn delete_keys(s3: &S3, bucket: &str, keys: &[String]) -> Result<Vec<String>> {
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
            .api.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|err| anyhow!(s3.explain("s3:DeleteObjects", &err)))
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
