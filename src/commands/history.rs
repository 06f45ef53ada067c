//! `deploy history --var-file tfvars/<env>.tfvars`: the environment's runs, newest
//! first, or the lineage of one service (`--service`). Read-only.

use anyhow::{Context as _, Result};

use crate::aws::deploy_lock::{self, LockLocation};
use crate::aws::history::{self, HistoryLocation};
use crate::checkout::{runtime, Checkout};
use crate::error::UsageError;
use crate::model::environment::Environment;
use crate::model::history::{HistoryView, Record};
use crate::model::platform::Platform;
use crate::request::{Globals, HistoryRequest};
use crate::ui::output::emit_stdout;

pub fn run(globals: &Globals, request: &HistoryRequest) -> Result<()> {
    let Checkout { platform, cwd, .. } = Checkout::open(globals.repo.as_deref())?;
    let (_, environment) = crate::planning::environment_of(&platform, &cwd, &request.var_file)?;
    if let Some(service) = &request.service {
        if !platform.services.iter().any(|s| &s.name == service) {
            return Err(UsageError::new(format!(
                "--service {service}: no such service (services: {})",
                platform
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
    }
    let profile = globals.profile.as_deref();
    let view = runtime()?.block_on(async {
        let (records, location, s3) =
            read_records(&platform, profile, &environment, request.limit).await?;
        // A `running` record whose run no longer holds the lock was cut off.
        let lock =
            deploy_lock::read_holder(&s3, &LockLocation::new(&location.bucket, &environment))
                .await
                .unwrap_or(None);
        let holder = lock.as_ref().map(|h| (h.host.as_str(), h.pid));
        anyhow::Ok(HistoryView::new(
            &environment,
            request.service.as_deref(),
            records,
            holder,
        ))
    })?;
    emit_stdout(&view, globals.output)
}

/// The newest `limit` records of `environment`, where they live, and the S3 client.
pub(crate) async fn read_records(
    platform: &Platform,
    profile: Option<&str>,
    environment: &str,
    limit: usize,
) -> Result<(Vec<Record>, HistoryLocation, crate::aws::S3)> {
    let config_suffices =
        platform.config.history.bucket.is_some() || platform.config.lock.bucket.is_some();
    let (resolved, _) =
        super::read_environment(platform, profile, Some(environment), config_suffices).await?;
    let bucket = history_bucket(platform, &resolved).with_context(|| {
        format!(
            "no bucket for the run history of {environment}: set history.bucket or lock.bucket in deploy.toml, add a terraform output {:?}, or use an S3 terraform backend",
            platform.config.terraform.outputs.deploy_lock_bucket
        )
    })?;
    let location = HistoryLocation::new(&bucket, environment);
    let s3 = crate::aws::Aws::load(profile).await.s3();
    let records = history::list(&s3, &location, limit).await?;
    Ok((records, location, s3))
}

/// `history.bucket`, else the environment's private bucket (the lock's).
pub(crate) fn history_bucket(platform: &Platform, environment: &Environment) -> Option<String> {
    platform
        .config
        .history
        .bucket
        .clone()
        .or_else(|| environment.lock_bucket.clone())
        .filter(|bucket| !bucket.is_empty())
}
