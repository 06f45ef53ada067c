//! One environment as the pipeline and the commands read it: `deploy.toml` over its
//! terraform outputs, and its run history (the records `deploy history` lists and
//! `deploy undo` reads).

use anyhow::Result;

use crate::aws::history::{self, HistoryLocation};
use crate::changes::live;
use crate::model::environment::{Environment, Outputs};
use crate::model::history::Record;
use crate::model::platform::Platform;

/// The environment of `workspace` (the selected one when `None`). Its terraform
/// outputs are read unless `config_suffices` (deploy.toml names what the caller
/// needs); they are returned when read, for a caller that needs them again.
pub async fn read_environment(
    platform: &Platform,
    profile: Option<&str>,
    workspace: Option<&str>,
    config_suffices: bool,
) -> Result<(Environment, Option<Outputs>)> {
    let outputs = if config_suffices {
        None
    } else {
        Some(
            live::terraform_of(platform, profile, workspace)
                .outputs()
                .await?,
        )
    };
    let environment = crate::checkout::read_environment(
        platform,
        workspace,
        outputs.as_ref().unwrap_or(&Outputs::new()),
    )?;
    Ok((environment, outputs))
}

/// The newest `limit` records of `environment`, where they live, and the S3 client
/// (of `aws`, whose profile also reads the terraform outputs).
pub async fn read_records(
    platform: &Platform,
    aws: &crate::aws::Aws,
    environment: &str,
    limit: usize,
) -> Result<(Vec<Record>, HistoryLocation, crate::aws::S3)> {
    let profile = aws.profile.as_deref();
    let config_suffices =
        platform.config.history.bucket.is_some() || platform.config.lock.bucket.is_some();
    let (resolved, _) =
        read_environment(platform, profile, Some(environment), config_suffices).await?;
    let bucket = required_history_bucket(platform, &resolved, environment)?;
    let location = HistoryLocation::new(&bucket, environment);
    let s3 = aws.s3();
    let records = history::list(&s3, &location, limit).await?;
    Ok((records, location, s3))
}

/// [`history_bucket`], or the usage error (exit 2: a setting missing, not a failure,
/// error.rs) that says how to name one for `environment`.
pub fn required_history_bucket(
    platform: &Platform,
    resolved: &Environment,
    environment: &str,
) -> Result<String> {
    history_bucket(platform, resolved).ok_or_else(|| {
        crate::error::UsageError::new(format!(
            "no bucket for the run history of {environment}: {}, add a terraform output {:?}, or use an S3 terraform backend",
            crate::model::config::set_in_config("history.bucket or lock.bucket"),
            platform.config.terraform.outputs.deploy_lock_bucket
        ))
        .into()
    })
}

/// `history.bucket`, else the environment's private bucket (the lock's).
pub fn history_bucket(platform: &Platform, environment: &Environment) -> Option<String> {
    platform
        .config
        .history
        .bucket
        .clone()
        .or_else(|| environment.lock_bucket.clone())
        .filter(|bucket| !bucket.is_empty())
}
