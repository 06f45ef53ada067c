//! `deploy status`: what runs now against HEAD, read-only.

use std::fmt;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::LiveImage;
use crate::changes::live::{self, Survey};
use crate::checkout::{runtime, Checkout};
use crate::model::plan::services::validate_service_names;
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
    /// Per service: the digest of what runs, in the registry its image names.
    digests: Vec<ServiceDigest>,
    /// `--compare`: the other environment's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared_with: Option<String>,
}

#[derive(Serialize)]
struct ServiceDigest {
    service: String,
    digest: Option<String>,
    /// Why the digest could not be read (the registry did not answer, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// `--compare`: what the other environment runs, and whether it is the same bytes
    /// (`None`: cannot tell, one of the digests is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    other: Option<OtherImage>,
}

#[derive(Serialize)]
struct OtherImage {
    tag: Option<String>,
    digest: Option<String>,
    same: Option<bool>,
}

/// The digest each running image has in the registry its reference names, asked with
/// the ECR credentials of `aws`'s account, side by side under one deadline
/// ([`crate::aws::ecr::image_digests`]); a registry that cannot be asked leaves `None`
/// and the reason.
async fn digests_of<'a>(
    images: impl Iterator<Item = (&'a str, &'a LiveImage)>,
    aws: &crate::aws::Aws,
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut found = Vec::new();
    // (index in `found`, the image reference) of the images running.
    let mut running: Vec<(usize, &str)> = Vec::new();
    for (service, live) in images {
        if let LiveImage::Running { image, .. } = live {
            running.push((found.len(), image.as_str()));
        }
        found.push((service.to_owned(), None, None));
    }
    let references: Vec<&str> = running.iter().map(|(_, image)| *image).collect();
    let answers = crate::aws::ecr::image_digests(aws, &references).await;
    for ((index, _), answer) in running.into_iter().zip(answers) {
        match answer {
            Ok(digest) => found[index].1 = Some(digest),
            Err(reason) => found[index].2 = Some(reason),
        }
    }
    found
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
    /// The live release: its number in the SPA's manifest (`None`: none kept).
    release: Option<u64>,
    /// A restored release: the one it put back.
    restored_from: Option<u64>,
    /// When the live release went live (RFC 3339, UTC).
    live_since: Option<String>,
    /// Whether HEAD's build would differ from what is live, and why.
    changed: bool,
    reason: String,
}

impl SpaStatus {
    /// `#4 = #1 since 2026-12-06T20:50:00Z` (a restore), `#3 since …`, `-`.
    fn release_text(&self) -> String {
        let since = self
            .live_since
            .as_deref()
            .map_or(String::new(), |t| format!(" since {t}"));
        match (self.release, self.restored_from) {
            (Some(number), Some(from)) => format!("#{number} = #{from}{since}"),
            (Some(number), None) => format!("#{number}{since}"),
            (None, _) => "-".to_owned(),
        }
    }
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
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([
        ("--profile", profile),
        ("--compare-profile", request.compare_profile.as_deref()),
    ])?;
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(globals.repo.as_deref())?;
    let workspace = crate::planning::workspace_named(&platform, &cwd, request.var_file.as_deref())?;
    let compared = compared_workspace(&platform, &cwd, request, workspace.as_deref())?;
    let platform = crate::planning::platform_in(&platform, workspace.as_deref())?;
    // `--services`: these services only, and no SPAs (as `rollback --services`).
    let named = request
        .services
        .as_deref()
        .map(|names| validate_service_names(&platform, names))
        .transpose()?;
    let runtime = runtime()?;
    let (survey, spas, digests, compared_with) = runtime.block_on(async {
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
        let environment =
            crate::checkout::read_environment(&platform, workspace.as_deref(), &outputs)?;
        let cluster = environment.cluster()?.to_owned();
        let aws = contexts.get(profile).await;
        let mut survey = live::survey(
            &platform,
            &repo,
            &head.sha,
            &aws,
            cluster,
            platform.config.changes.mode,
        )
        .await?;
        if let Some(named) = &named {
            survey.services.retain(|s| named.contains(&s.name));
        }
        let s3 = aws.s3();
        let mut spas = Vec::new();
        for spa in platform.spas.iter().filter(|_| named.is_none()) {
            let bucket = environment.spa(&spa.name).bucket;
            let mut live = None;
            let deployed_sha = match &bucket {
                Some(bucket) => {
                    let manifest = environment.lock_bucket.as_deref().map(|private| {
                        crate::spa::ManifestLocation::new(private, &spa.name, bucket)
                    });
                    if let Some(manifest) = &manifest {
                        live = crate::spa::restore::live_release(&s3, manifest)
                            .await?
                            .filter(|d| d.release);
                    }
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
                release: live.as_ref().map(|d| d.number),
                restored_from: live.as_ref().and_then(|d| d.restored_from),
                live_since: live.map(|d| d.time),
                changed,
                reason,
            });
        }
        let mut digests: Vec<ServiceDigest> = digests_of(
            survey.services.iter().map(|s| (s.name.as_str(), &s.live)),
            &aws,
        )
        .await
        .into_iter()
        .map(|(service, digest, error)| ServiceDigest {
            service,
            digest,
            error,
            other: None,
        })
        .collect();
        let mut compared_with = None;
        if let Some(other_workspace) = compared {
            let other = crate::planning::platform_in(&platform, Some(&other_workspace))?;
            let other_workspace = Some(other_workspace);
            let other_profile = request.compare_profile.as_deref().or(profile);
            let (other_env, _) = crate::changes::environment::read_environment(
                &other,
                other_profile,
                other_workspace.as_deref(),
                other.config.ecs.cluster.is_some(),
            )
            .await?;
            let other_aws = contexts.get(other_profile).await;
            let other_live = live::fetch(&other, &other_aws, other_env.cluster()?).await?;
            let other_digests = digests_of(
                other_live.iter().map(|(name, live)| (name.as_str(), live)),
                &other_aws,
            )
            .await;
            for entry in &mut digests {
                let tag = match other_live.get(&entry.service) {
                    Some(LiveImage::Running { image, .. }) => {
                        crate::aws::ecs::image_tag_of(image).map(str::to_owned)
                    }
                    _ => None,
                };
                let digest = other_digests
                    .iter()
                    .find(|(name, _, _)| name == &entry.service)
                    .and_then(|(_, digest, _)| digest.clone());
                let same = match (&entry.digest, &digest) {
                    (Some(here), Some(there)) => Some(here == there),
                    _ => None,
                };
                entry.other = Some(OtherImage { tag, digest, same });
            }
            compared_with = other_workspace;
        }
        anyhow::Ok((survey, spas, digests, compared_with))
    })?;
    let status = Status {
        survey,
        head_short: head.short_sha,
        spas,
        digests,
        compared_with,
    };
    emit_stdout(&status, globals.output)
}

/// The environment `--compare` names, checked before anything is read: its tfvars file
/// exists, and it is not the environment `--var-file` names.
fn compared_workspace(
    platform: &crate::model::platform::Platform,
    cwd: &std::path::Path,
    request: &StatusRequest,
    workspace: Option<&str>,
) -> Result<Option<String>> {
    let Some(file) = &request.compare else {
        return Ok(None);
    };
    let (_, other) = crate::planning::environment_named_by(platform, cwd, file, "--compare")?;
    if workspace == Some(other.as_str()) {
        return Err(crate::error::UsageError::new(format!(
            "--compare {} names the environment --var-file names ({other}): compare with another environment's tfvars file",
            file.display()
        ))
        .into());
    }
    Ok(Some(other))
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// A table whose column count is known only at run time.
fn write_rows(f: &mut fmt::Formatter<'_>, headers: &[&str], rows: &[Vec<Cell>]) -> fmt::Result {
    match headers.len() {
        6 => write_table(
            f,
            <[&str; 6]>::try_from(headers).map_err(|_| fmt::Error)?,
            &rows
                .iter()
                .map(|row| <[Cell; 6]>::try_from(row.clone()).map_err(|_| fmt::Error))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        7 => write_table(
            f,
            <[&str; 7]>::try_from(headers).map_err(|_| fmt::Error)?,
            &rows
                .iter()
                .map(|row| <[Cell; 7]>::try_from(row.clone()).map_err(|_| fmt::Error))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => Err(fmt::Error),
    }
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
        let rows: Vec<Vec<Cell>> = self
            .survey
            .services
            .iter()
            .map(|s| {
                let digest = self.digests.iter().find(|d| d.service == s.name);
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
                let digest_cell = match digest.and_then(|d| d.digest.as_deref()) {
                    Some(digest) => Cell::plain(short_digest(digest)),
                    None if digest.is_some_and(|d| d.error.is_some()) => Cell::plain("?"),
                    None => Cell::none(),
                };
                let mut row = vec![Cell::plain(&s.name), live, digest_cell];
                if self.compared_with.is_some() {
                    let other = digest.and_then(|d| d.other.as_ref());
                    row.push(match other {
                        Some(OtherImage {
                            same: Some(true), ..
                        }) => Cell::new("same bytes", Tone::Done),
                        Some(OtherImage {
                            same: Some(false),
                            tag,
                            digest,
                        }) => Cell::new(
                            format!(
                                "differs (:{} {})",
                                tag.as_deref().unwrap_or("?"),
                                short_digest(digest.as_deref().unwrap_or("?"))
                            ),
                            Tone::Pending,
                        ),
                        _ => Cell::plain("cannot tell"),
                    });
                }
                row.extend([changed, rollout, Cell::plain(&s.reason)]);
                row
            })
            .collect();
        let compare_header = self
            .compared_with
            .as_deref()
            .map(|other| format!("VS {}", other.to_uppercase()));
        let mut headers = vec!["SERVICE", "LIVE TAG", "DIGEST"];
        if let Some(header) = &compare_header {
            headers.push(header);
        }
        headers.extend(["CHANGED", "ECS", "WHY"]);
        write_rows(f, &headers, &rows)?;
        if self.spas.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        let rows: Vec<[Cell; 6]> = self
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
                    Cell::plain(spa.release_text()),
                    Cell::plain(&spa.reason),
                ]
            })
            .collect();
        write_table(
            f,
            ["SPA", "BUCKET", "DEPLOYED", "CHANGED", "RELEASE", "WHY"],
            &rows,
        )
    }
}
