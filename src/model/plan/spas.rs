//! The SPA half of the plan: which SPAs build and upload, and the refusal of an SPA
//! built from uncommitted inputs (SPEC §4). Pure: what the working tree holds of each
//! SPA is read before the plan ([`SpaSources`], by `spa::sources`).

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};

use super::{Action, Context, Mode, SpaStep};
use crate::error::UsageError;
use crate::model::platform::Platform;

/// What the operator asked of the SPAs: the request's SPA flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaAsk {
    /// `--skip-spas`.
    pub skip: bool,
    /// `--allow-dirty-spas`.
    pub allow_dirty: bool,
    /// `rollback`/`undo --spas a,b`, as typed.
    pub named: Option<Vec<String>>,
    /// `--services` names the services.
    pub services_named: bool,
    /// `--changed` decides in graph mode (which decides SPAs too).
    pub graph: bool,
}

/// What the working tree holds of one SPA, read before the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaSource {
    /// Its directory does not exist.
    NoDir,
    /// The uncommitted paths among what it builds from (empty: none).
    Dirty(Vec<String>),
    /// What it builds from could not be read, and why (`{:#}` of the error).
    Unreadable(String),
}

/// Per SPA name: what the working tree holds of it.
pub type SpaSources = BTreeMap<String, SpaSource>;

pub(crate) fn plan_spas(
    platform: &Platform,
    ask: &SpaAsk,
    mode: Mode,
    context: &Context<'_>,
) -> Result<Vec<SpaStep>> {
    if matches!(mode, Mode::Rollback | Mode::Undo) {
        return plan_restores(platform, ask, mode, context);
    }
    let skip_reason = if mode == Mode::Promote {
        Some("not promoted: an SPA build embeds its environment's settings; deploy SPAs to this environment with a normal deploy (`deploy --var-file <its tfvars>`)")
    } else if ask.skip {
        Some("--skip-spas")
    } else if mode == Mode::Changed && !ask.graph {
        // Runbook: "--changed covers backend services only (it skips SPAs)". Graph
        // mode decides SPAs too, from the SHA their bucket records (deploy/changed.rs).
        Some("--changed covers backend services only; deploy SPAs with a full deploy")
    } else {
        None
    };
    let outputs = &platform.config.terraform.outputs;
    platform
        .spas
        .iter()
        .map(|spa| {
            // SPAs are built from the working tree, not the commit (unlike images): an
            // uncommitted input would be uploaded under a SHA that does not have it.
            let dirty = match (skip_reason, context.spa_sources.get(&spa.name)) {
                (Some(_), _) => Vec::new(),
                (None, Some(SpaSource::Dirty(dirty))) => dirty.clone(),
                (None, Some(SpaSource::Unreadable(why))) => return Err(anyhow!("{why}")),
                (None, Some(SpaSource::NoDir) | None) => {
                    return Err(UsageError::new(format!(
                        "SPA {} has no directory {} ({}); set its dir in deploy.toml or pass --skip-spas",
                        spa.name,
                        platform.root.join(&spa.dir).display(),
                        platform.origin(&format!("spas.{}.dir", spa.name))
                    ))
                    .into())
                }
            };
            let (reason, recorded_sha) = match skip_reason {
                Some(reason) => (reason.to_owned(), context.head.sha.clone()),
                None if dirty.is_empty() => {
                    ("built and uploaded".to_owned(), context.head.sha.clone())
                }
                None => (
                    format!(
                        "built from the working tree with {} uncommitted path(s) (--allow-dirty-spas): recorded as {}-dirty",
                        dirty.len(),
                        context.head.short_sha
                    ),
                    format!("{}-dirty", context.head.sha),
                ),
            };
            Ok(SpaStep {
                name: spa.name.clone(),
                action: if skip_reason.is_some() {
                    Action::Skip
                } else {
                    Action::Deploy
                },
                reason,
                cause: None,
                build: spa.build.clone(),
                output: spa.output.clone(),
                bucket: spa.bucket.clone().unwrap_or_else(|| {
                    format!(
                        "terraform output {}[\"{}\"]",
                        outputs.spa_buckets, spa.name
                    )
                }),
                dirty,
                recorded_sha,
                restore: None,
            })
        })
        .collect::<Result<Vec<SpaStep>>>()
        .and_then(|steps| refuse_dirty_spas(steps, ask))
}

/// `deploy rollback`, `deploy undo`: every SPA to be checked against its kept releases
/// (`deploy::spa_restore` decides, from the manifests), unless `--skip-spas`, `--spas`
/// leaves it out, or a rollback names `--services` alone.
fn plan_restores(
    platform: &Platform,
    ask: &SpaAsk,
    mode: Mode,
    context: &Context<'_>,
) -> Result<Vec<SpaStep>> {
    // Every unknown name at once, so that one run tells the whole mistake.
    let unknown: Vec<&str> = ask
        .named
        .iter()
        .flatten()
        .filter(|name| !platform.spas.iter().any(|spa| &spa.name == *name))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = platform.spas.iter().map(|s| s.name.as_str()).collect();
        let noun = if unknown.len() == 1 { "SPA" } else { "SPAs" };
        return Err(UsageError::new(format!(
            "--spas {}: no such {noun} (this checkout has {})",
            unknown.join(","),
            known.join(", ")
        ))
        .into());
    }
    let services_only =
        ask.services_named && ask.named.is_none() && matches!(mode, Mode::Rollback | Mode::Undo);
    let target = context
        .rollback_to
        .as_ref()
        .map_or("the commit", |head| head.short_sha.as_str());
    let steps = platform.spas.iter().map(|spa| {
        let left_out = ask
            .named
            .as_ref()
            .is_some_and(|names| !names.contains(&spa.name));
        let (action, reason) = if ask.skip {
            (Action::Skip, "--skip-spas".to_owned())
        } else if left_out {
            (Action::Skip, "not named by --spas".to_owned())
        } else if services_only {
            (
                Action::Skip,
                "--services names services only: add --spas to restore SPAs too".to_owned(),
            )
        } else if mode == Mode::Rollback {
            (
                Action::Check,
                format!("its kept release of {target}, or the newest before it"),
            )
        } else {
            (
                Action::Check,
                "back to its release before the undone run, if that run changed it".to_owned(),
            )
        };
        SpaStep {
            name: spa.name.clone(),
            action,
            reason,
            cause: None,
            build: spa.build.clone(),
            output: spa.output.clone(),
            bucket: spa.bucket.clone().unwrap_or_else(|| {
                format!(
                    "terraform output {}[\"{}\"]",
                    platform.config.terraform.outputs.spa_buckets, spa.name
                )
            }),
            dirty: Vec::new(),
            recorded_sha: context.head.sha.clone(),
            restore: None,
        }
    });
    Ok(steps.collect())
}

/// Without `--allow-dirty-spas`, an SPA whose inputs differ from HEAD stops the run
/// here, before anything is built (exit 2), naming the paths.
fn refuse_dirty_spas(steps: Vec<SpaStep>, ask: &SpaAsk) -> Result<Vec<SpaStep>> {
    if ask.allow_dirty {
        return Ok(steps);
    }
    let dirty: Vec<String> = steps
        .iter()
        .filter(|step| !step.dirty.is_empty())
        .map(|step| {
            let paths: Vec<String> = step.dirty.iter().map(|p| format!("    {p}")).collect();
            format!("  SPA {}:\n{}", step.name, paths.join("\n"))
        })
        .collect();
    if dirty.is_empty() {
        return Ok(steps);
    }
    Err(UsageError::new(format!(
        "SPAs are built from the working tree, and these uncommitted paths are among what they build from:\n{}\nAn upload would be recorded as a commit that does not contain them. Commit or stash them, pass --skip-spas, or pass --allow-dirty-spas to upload them recorded as <sha>-dirty. Nothing was touched",
        dirty.join("\n")
    ))
    .into())
}
