//! `deploy unlock --var-file tfvars/<env>.tfvars`: deletes the environment's deploy lock
//! (when the run holding it is gone) and says who held it.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use crate::aws::deploy_lock::{self, Holder, LockLocation};
use crate::checkout::{runtime, Checkout};
use crate::request::{Globals, UnlockRequest};
use crate::ui::output::emit_stdout;

#[derive(Debug, Serialize)]
struct UnlockReport {
    environment: String,
    /// `s3://bucket/key`.
    lock: String,
    broken: bool,
    holder: Option<HolderReport>,
}

/// Who held the lock, without the run's private token.
#[derive(Debug, Serialize)]
struct HolderReport {
    user: String,
    host: String,
    pid: u32,
    since: u64,
    git_sha: String,
    command: String,
    #[serde(skip)]
    said: String,
}

impl From<Holder> for HolderReport {
    fn from(holder: Holder) -> Self {
        Self {
            said: holder.to_string(),
            user: holder.user,
            host: holder.host,
            pid: holder.pid,
            since: holder.since,
            git_sha: holder.git_sha,
            command: holder.command,
        }
    }
}

impl fmt::Display for UnlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.holder {
            Some(holder) => writeln!(
                f,
                "broke the deploy lock of {}, held by {}",
                self.environment, holder.said
            ),
            None => writeln!(
                f,
                "no deploy lock held for {} ({})",
                self.environment, self.lock
            ),
        }
    }
}

pub fn run(globals: &Globals, request: &UnlockRequest) -> Result<()> {
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([("--profile", profile)])?;
    let Checkout { platform, cwd, .. } = Checkout::open(globals.repo.as_deref())?;
    let (var_file, environment) =
        crate::planning::environment_of(&platform, &cwd, &request.var_file)?;
    crate::planning::warn_about_env_tables(&platform, &var_file, &environment);
    let platform = crate::planning::platform_in(&platform, Some(&environment))?;
    let report = runtime()?.block_on(async {
        // The environment's own state, whichever workspace is selected.
        let (resolved, _) = crate::changes::environment::read_environment(
            &platform,
            profile,
            Some(&environment),
            platform.config.lock.bucket.is_some(),
        )
        .await?;
        let bucket = deploy_lock::ensure_bucket_named(
            resolved.lock_bucket,
            &platform.config.terraform.outputs.deploy_lock_bucket,
        )?;
        let location = LockLocation::new(&bucket, &environment);
        let s3 = contexts.get(profile).await.s3();
        let holder = deploy_lock::break_lock(&s3, &location).await?;
        anyhow::Ok(UnlockReport {
            lock: format!("s3://{}/{}", location.bucket, location.key),
            environment: environment.clone(),
            broken: holder.is_some(),
            holder: holder.map(HolderReport::from),
        })
    })?;
    emit_stdout(&report, globals.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_holder_and_never_its_token() {
        let holder = Holder {
            user: "ana".into(),
            host: "laptop".into(),
            pid: 4242,
            since: 1_700_000_000,
            git_sha: "abc1234".into(),
            command: "deploy --var-file tfvars/sandbox.tfvars".into(),
            token: "secret-token".into(),
            pid_space: Some("boot:ns".into()),
        };
        let said = holder.to_string();
        let report = UnlockReport {
            environment: "sandbox".into(),
            lock: "s3://ops/deploy-lock/sandbox.json".into(),
            broken: true,
            holder: Some(holder.into()),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "environment": "sandbox",
                "lock": "s3://ops/deploy-lock/sandbox.json",
                "broken": true,
                "holder": {
                    "user": "ana",
                    "host": "laptop",
                    "pid": 4242,
                    "since": 1_700_000_000,
                    "git_sha": "abc1234",
                    "command": "deploy --var-file tfvars/sandbox.tfvars",
                },
            })
        );
        assert_eq!(
            report.to_string(),
            format!("broke the deploy lock of sandbox, held by {said}\n")
        );
        let free = UnlockReport {
            holder: None,
            broken: false,
            ..report
        };
        assert_eq!(
            free.to_string(),
            "no deploy lock held for sandbox (s3://ops/deploy-lock/sandbox.json)\n"
        );
    }
}
