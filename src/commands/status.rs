//! `deploy status` (what runs now against HEAD, read-only) and `deploy unlock`.

use std::fmt;
use std::io::Write;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::LiveImage;
use crate::changes::live::{self, Survey};
use crate::cli::{Cli, OutputFormat};
use crate::model::platform::{runtime, Checkout};
use crate::ui::table::write_table;

#[derive(Serialize)]
struct Status {
    #[serde(flatten)]
    survey: Survey,
    head_short: String,
    spas: Vec<SpaStatus>,
}

#[derive(Serialize)]
struct SpaStatus {
    name: String,
    bucket: Option<String>,
    /// The git SHA recorded by the last upload, if any (`<sha>-dirty`: a build of
    /// uncommitted files).
    deployed_sha: Option<String>,
    /// The same, abbreviated as image tags are (`git rev-parse --short`).
    deployed_short: Option<String>,
    /// Whether HEAD's build would differ from what is live, and why.
    changed: bool,
    reason: String,
}

/// Whether the SPA live as `deployed` differs from HEAD's, and why: the deployed SHA read
/// as `--changed` reads a live image tag, the diff taken over the SPA's inputs.
fn spa_change(
    repo: &crate::git::Repo,
    head: &str,
    deployed: Option<&str>,
    inputs: Vec<String>,
) -> Result<(bool, String)> {
    use crate::changes::diff::{resolve_tag, DiffCache, LiveBase};
    let Some(deployed) = deployed else {
        return Ok((true, "never deployed".into()));
    };
    let head = git2::Oid::from_str(head).context("HEAD is not a commit id")?;
    Ok(match resolve_tag(repo.git(), deployed) {
        LiveBase::Dirty(_) => (
            true,
            "a build of uncommitted files (-dirty): never a diff base".into(),
        ),
        LiveBase::NotASha(sha) => (true, format!("deployed {sha:?} is not a git SHA")),
        LiveBase::UnknownCommit(sha) => (
            true,
            format!(
                "deployed commit {sha} is not in local history: `git fetch origin` would fix it"
            ),
        ),
        LiveBase::Commit(base) if base == head => (false, "deployed SHA is HEAD".into()),
        LiveBase::Commit(base) => {
            let mut diffs = DiffCache::new(repo.git(), head, inputs);
            match diffs.changed_paths_since(base)? {
                [] => (false, "unchanged since the deployed SHA".into()),
                [path] => (true, format!("{path} changed")),
                [path, rest @ ..] => (true, format!("{path} and {} more changed", rest.len())),
            }
        }
    })
}

/// A recorded SHA as `status` shows image tags: `git rev-parse --short`, keeping a
/// `-dirty` suffix; the first 7 characters when the commit is not in local history.
fn abbreviate(repo: &crate::git::Repo, sha: &str) -> String {
    let (commit, suffix) = match sha.strip_suffix("-dirty") {
        Some(commit) => (commit, "-dirty"),
        None => (sha, ""),
    };
    let short = repo
        .commit(commit)
        .map(|found| found.short_sha)
        .unwrap_or_else(|_| commit.chars().take(7).collect());
    format!("{short}{suffix}")
}

pub fn run(cli: &Cli, var_file: Option<&std::path::Path>) -> Result<()> {
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(cli.repo.as_deref())?;
    let workspace = crate::model::plan::workspace_named(&platform, &cwd, var_file)?;
    let runtime = runtime()?;
    let profile = cli.profile.as_deref();
    let (survey, spas) = runtime.block_on(async {
        // Read once: they name the cluster and the SPA buckets.
        let outputs = match live::terraform_of(&platform, profile, workspace.as_deref())
            .outputs()
            .await
        {
            Ok(outputs) => outputs,
            // With ecs.cluster set, status works without terraform (no SPA buckets).
            Err(_) if platform.config.ecs.cluster.is_some() => Default::default(),
            Err(err) => return Err(err),
        };
        let cluster = live::cluster_from(&platform, &outputs)?;
        let survey = live::survey(&platform, &repo, &head.sha, profile, cluster).await?;
        let s3 = crate::aws::s3(&crate::aws::load(profile).await);
        let private_bucket = crate::aws::deploy_lock::private_bucket(&platform, &outputs);
        let mut spas = Vec::new();
        for spa in &platform.spas {
            let bucket = spa.bucket.clone().or_else(|| {
                outputs
                    .get(&platform.config.terraform.outputs.spa_buckets)
                    .and_then(|m| m.get(&spa.name))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            let deployed_sha = match &bucket {
                Some(bucket) => {
                    let manifest = private_bucket.as_deref().map(|private| {
                        crate::spa::ManifestLocation::new(private, &spa.name, bucket)
                    });
                    crate::spa::deployed_sha(&s3, manifest.as_ref(), bucket).await?
                }
                None => None,
            };
            let inputs = crate::spa::inputs::spa_inputs(&platform.root, &spa.dir)?;
            let (changed, reason) = spa_change(&repo, &head.sha, deployed_sha.as_deref(), inputs)?;
            spas.push(SpaStatus {
                name: spa.name.clone(),
                bucket,
                deployed_short: deployed_sha.as_deref().map(|sha| abbreviate(&repo, sha)),
                deployed_sha,
                changed,
                reason,
            });
        }
        anyhow::Ok((survey, spas))
    })?;
    let status = Status {
        survey,
        head_short: head.short_sha,
        spas,
    };
    let mut stdout = std::io::stdout().lock();
    match cli.output {
        OutputFormat::Text => write!(stdout, "{status}"),
        OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&status)?),
    }
    .context(crate::error::WritingStdout)
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HEAD {} — ECS cluster {}",
            self.head_short, self.survey.cluster
        )?;
        writeln!(f)?;
        let rows: Vec<[String; 5]> = self
            .survey
            .services
            .iter()
            .map(|s| {
                let (live, rollout) = match &s.live {
                    LiveImage::Missing { .. } => ("-".to_owned(), "missing".to_owned()),
                    LiveImage::NoContainer { .. } => ("?".to_owned(), "-".to_owned()),
                    LiveImage::Running {
                        image,
                        rollout_state,
                        running,
                        desired,
                        deployments,
                        ..
                    } => (
                        crate::aws::ecs::image_tag_of(image)
                            .unwrap_or(image)
                            .to_owned(),
                        format!(
                            "{} {running}/{desired} running{}",
                            rollout_state.as_deref().unwrap_or("-"),
                            if *deployments > 1 {
                                format!(", {deployments} deployments")
                            } else {
                                String::new()
                            }
                        ),
                    ),
                };
                let changed = match s.action {
                    crate::model::plan::Action::Skip => "no",
                    _ => "yes",
                };
                [
                    s.name.clone(),
                    live,
                    changed.to_owned(),
                    rollout,
                    s.reason.clone(),
                ]
            })
            .collect();
        write_table(f, ["SERVICE", "LIVE TAG", "CHANGED", "ECS", "WHY"], &rows)?;
        if self.spas.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        let rows: Vec<[String; 5]> = self
            .spas
            .iter()
            .map(|spa| {
                [
                    spa.name.clone(),
                    spa.bucket.clone().unwrap_or_else(|| "-".into()),
                    spa.deployed_short.clone().unwrap_or_else(|| "-".into()),
                    if spa.changed { "yes" } else { "no" }.to_owned(),
                    spa.reason.clone(),
                ]
            })
            .collect();
        write_table(f, ["SPA", "BUCKET", "DEPLOYED", "CHANGED", "WHY"], &rows)
    }
}

/// `deploy unlock --var-file tfvars/<env>.tfvars`: deletes the environment's deploy lock
/// and says who held it.
pub fn unlock(cli: &Cli, var_file: &std::path::Path) -> Result<()> {
    let Checkout { platform, cwd, .. } = Checkout::open(cli.repo.as_deref())?;
    let (_, environment) = crate::model::plan::environment_of(&platform, &cwd, var_file)?;
    let profile = cli.profile.as_deref();
    runtime()?.block_on(async {
        let outputs = match &platform.config.lock.bucket {
            Some(_) => Default::default(),
            // The environment's own state, whichever workspace is selected.
            None => {
                live::terraform_of(&platform, profile, Some(&environment))
                    .outputs()
                    .await?
            }
        };
        let bucket = crate::aws::deploy_lock::private_bucket(&platform, &outputs);
        let bucket = crate::aws::deploy_lock::ensure_bucket_named(
            bucket,
            &platform.config.terraform.outputs.deploy_lock_bucket,
        )?;
        let location = crate::aws::deploy_lock::LockLocation::new(&bucket, &environment);
        let s3 = crate::aws::s3(&crate::aws::load(profile).await);
        let holder = crate::aws::deploy_lock::break_lock(&s3, &location, profile).await?;
        let mut stdout = std::io::stdout().lock();
        if cli.output == OutputFormat::Json {
            let report = serde_json::json!({
                "environment": environment,
                "lock": format!("s3://{}/{}", location.bucket, location.key),
                "broken": holder.is_some(),
                "holder": holder.map(|h| serde_json::json!({
                    "user": h.user,
                    "host": h.host,
                    "pid": h.pid,
                    "since": h.since,
                    "git_sha": h.git_sha,
                    "command": h.command,
                })),
            });
            return writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)
                .context(crate::error::WritingStdout);
        }
        match holder {
            Some(holder) => writeln!(
                stdout,
                "broke the deploy lock of {environment}, held by {holder}"
            ),
            None => writeln!(
                stdout,
                "no deploy lock held for {environment} (s3://{}/{})",
                location.bucket, location.key
            ),
        }
        .context(crate::error::WritingStdout)
    })
}
