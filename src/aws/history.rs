//! The run records in S3: written at the start of a run and rewritten at its end,
//! listed newest first by `deploy history` and `deploy undo`.

use anyhow::{anyhow, Context as _, Result};
use aws_sdk_s3::primitives::ByteStream;

use crate::aws::S3;
use crate::model::history::{self, Record};

/// An environment's records: `s3://<bucket>/deploy-history/<env>/`.
#[derive(Debug, Clone)]
pub struct HistoryLocation {
    pub bucket: String,
    pub environment: String,
}

impl HistoryLocation {
    pub fn new(bucket: &str, environment: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            environment: environment.to_owned(),
        }
    }

    pub fn prefix(&self) -> String {
        history::prefix(&self.environment)
    }
}

/// Writes (or rewrites) `record`.
pub async fn write(s3: &S3, bucket: &str, record: &Record) -> Result<()> {
    let key = record.key();
    let body = serde_json::to_vec_pretty(record)?;
    s3.api
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| anyhow!(s3.explain("s3:PutObject", &err)))
        .with_context(|| format!("cannot write the run record s3://{bucket}/{key}"))?;
    Ok(())
}

/// The newest `limit` records, newest first. A record that does not parse (written by
/// a newer deploy, or damaged) is skipped with a warning rather than hiding the rest.
pub async fn list(s3: &S3, location: &HistoryLocation, limit: usize) -> Result<Vec<Record>> {
    let prefix = location.prefix();
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .api
            .list_objects_v2()
            .bucket(&location.bucket)
            .prefix(&prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|err| anyhow!(s3.explain("s3:ListObjectsV2", &err)))
            .with_context(|| {
                format!(
                    "cannot list the run records in s3://{}/{prefix}",
                    location.bucket
                )
            })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|object| object.key())
                .filter(|key| key.ends_with(".json"))
                .map(str::to_owned),
        );
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    // The keys start with the UTC time: newest first is reverse key order.
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.truncate(limit);
    let mut records = Vec::with_capacity(keys.len());
    for key in keys {
        let object = s3
            .api
            .get_object()
            .bucket(&location.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|err| anyhow!(s3.explain("s3:GetObject", &err)))
            .with_context(|| format!("cannot read s3://{}/{key}", location.bucket))?;
        let bytes = object
            .body
            .collect()
            .await
            .with_context(|| format!("cannot read s3://{}/{key}", location.bucket))?
            .into_bytes();
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(record) => records.push(record),
            Err(err) => crate::ui::output::warn(&format!(
                "skipping the run record s3://{}/{key}: it does not parse ({err})",
                location.bucket
            )),
        }
    }
    Ok(records)
}
