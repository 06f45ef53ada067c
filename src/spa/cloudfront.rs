//! CloudFront after an SPA upload: one invalidation per distribution, optionally waited
//! for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::aws::CloudFront;

/// Creates one invalidation of `paths` on the distribution and returns its id. With
/// `wait`, polls until it completes (CloudFront says `Completed`, moto `COMPLETED`; the
/// SDK's own waiter only knows the first) or the time is up, which is an error.
pub async fn invalidate(
    cloudfront: &CloudFront,
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
        .api
        .create_invalidation()
        .distribution_id(distribution_id)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|err| anyhow!(cloudfront.explain("cloudfront:CreateInvalidation", &err)))
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
    cloudfront: &CloudFront,
    distribution_id: &str,
    id: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let mut interval = Duration::from_millis(500);
    loop {
        let output = cloudfront
            .api
            .get_invalidation()
            .distribution_id(distribution_id)
            .id(id)
            .send()
            .await
            .map_err(|err| anyhow!(cloudfront.explain("cloudfront:GetInvalidation", &err)))
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

    #[test]
    fn caller_references_are_unique() {
        assert_ne!(caller_reference(), caller_reference());
    }
}
