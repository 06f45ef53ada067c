//! `deploy status`: what runs now against HEAD, read-only.

use std::fmt;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::LiveImage;
use crate::changes::live::{self, Survey};
use crate::model::environment::Environment;
use crate::model::platform::{runtime, Checkout};
use crate::request::{Globals, StatusRequest};
use crate::ui::output::emit_stdout;
use crate::ui::style::{Cell, Tone};
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

pub fn run(globals: &Globals, request: &StatusRequest) -> Result<()> {
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(globals.repo.as_deref())?;
    let workspace =
        crate::model::plan::workspace_named(&platform, &cwd, request.var_file.as_deref())?;
    let runtime = runtime()?;
    let profile = globals.profile.as_deref();
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
        let environment = Environment::read(&platform, workspace.as_deref(), &outputs)?;
        let cluster = environment.cluster()?.to_owned();
        let survey = live::survey(
            &platform,
            &repo,
            &head.sha,
            profile,
            cluster,
            platform.config.changes.mode,
        )
        .await?;
        let s3 = crate::aws::Aws::load(profile).await.s3();
        let mut spas = Vec::new();
        for spa in &platform.spas {
            let bucket = environment.spa(&spa.name).bucket;
            let deployed_sha = match &bucket {
                Some(bucket) => {
                    let manifest = environment.lock_bucket.as_deref().map(|private| {
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
    emit_stdout(&status, globals.output)
}

/// The tone of an ECS deployment's rollout state (`COMPLETED`, `IN_PROGRESS`,
/// `FAILED`; `PRIMARY` from older ECS answers without one).
fn rollout_tone(state: Option<&str>) -> Tone {
    match state {
        Some("COMPLETED") => Tone::Done,
        Some("IN_PROGRESS" | "PRIMARY") => Tone::Pending,
        Some("FAILED") => Tone::Failed,
        None => Tone::Skipped,
        Some(_) => Tone::Plain,
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HEAD {} — ECS cluster {}",
            self.head_short, self.survey.cluster
        )?;
        writeln!(f)?;
        let rows: Vec<[Cell; 5]> = self
            .survey
            .services
            .iter()
            .map(|s| {
                let (live, rollout) = match &s.live {
                    LiveImage::Missing { .. } => (Cell::none(), Cell::plain("missing")),
                    LiveImage::NoContainer { .. } => (Cell::plain("?"), Cell::none()),
                    LiveImage::Running {
                        image,
                        rollout_state,
                        running,
                        desired,
                        deployments,
                        ..
                    } => (
                        Cell::plain(crate::aws::ecs::image_tag_of(image).unwrap_or(image)),
                        Cell::new(
                            format!(
                                "{} {running}/{desired} running{}",
                                rollout_state.as_deref().unwrap_or("-"),
                                if *deployments > 1 {
                                    format!(", {deployments} deployments")
                                } else {
                                    String::new()
                                }
                            ),
                            rollout_tone(rollout_state.as_deref()),
                        ),
                    ),
                };
                let changed = match s.action {
                    crate::model::plan::Action::Skip => Cell::plain("no"),
                    _ => Cell::new("yes", Tone::Done),
                };
                [
                    Cell::plain(&s.name),
                    live,
                    changed,
                    rollout,
                    Cell::plain(&s.reason),
                ]
            })
            .collect();
        write_table(f, ["SERVICE", "LIVE TAG", "CHANGED", "ECS", "WHY"], &rows)?;
        if self.spas.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        let rows: Vec<[Cell; 5]> = self
            .spas
            .iter()
            .map(|spa| {
                [
                    Cell::plain(&spa.name),
                    spa.bucket.as_deref().map_or_else(Cell::none, Cell::plain),
                    spa.deployed_short
                        .as_deref()
                        .map_or_else(Cell::none, Cell::plain),
                    if spa.changed {
                        Cell::new("yes", Tone::Done)
                    } else {
                        Cell::plain("no")
                    },
                    Cell::plain(&spa.reason),
                ]
            })
            .collect();
        write_table(f, ["SPA", "BUCKET", "DEPLOYED", "CHANGED", "WHY"], &rows)
    }
}
