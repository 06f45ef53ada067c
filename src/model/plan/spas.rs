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
    if let Some(unknown) = ask
        .named
        .iter()
        .flatten()
        .find(|name| !platform.spas.iter().any(|spa| &spa.name == *name))
    {
        let known: Vec<&str> = platform.spas.iter().map(|s| s.name.as_str()).collect();
        return Err(UsageError::new(format!(
            "--spas {unknown}: no such SPA (this checkout has {})",
            known.join(", ")
        ))
        .into());
    }
    let services_only = ask.services_named && ask.named.is_none() && mode == Mode::Rollback;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Head;
    use super::*;
    use crate::planning::tests::fixture;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn context(sources: &[(&str, SpaSource)]) -> Context<'static> {
        Context {
            head: Head {
                sha: SHA.to_owned(),
                short_sha: SHA[..7].to_owned(),
                branch: Some("main".into()),
            },
            uncommitted: Vec::new(),
            cwd: Path::new("."),
            registry_env: Default::default(),
            rollback_to: None,
            spa_sources: sources
                .iter()
                .map(|(name, source)| (name.to_string(), source.clone()))
                .collect(),
        }
    }

    fn clean() -> Context<'static> {
        context(&[
            ("admin-ui", SpaSource::Dirty(Vec::new())),
            ("simulator", SpaSource::Dirty(Vec::new())),
        ])
    }

    fn shown(steps: &[SpaStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{} {:?} {} {}", s.name, s.action, s.recorded_sha, s.reason))
            .collect()
    }

    #[test]
    fn each_mode_and_flag_decides_whether_spas_build() {
        let platform = fixture();
        let skip = |reason: &str| {
            vec![
                format!("admin-ui Skip {SHA} {reason}"),
                format!("simulator Skip {SHA} {reason}"),
            ]
        };
        let built = vec![
            format!("admin-ui Deploy {SHA} built and uploaded"),
            format!("simulator Deploy {SHA} built and uploaded"),
        ];
        let graph = SpaAsk {
            graph: true,
            ..SpaAsk::default()
        };
        let skipping = SpaAsk {
            skip: true,
            ..SpaAsk::default()
        };
        let cases = [
            (Mode::Full, SpaAsk::default(), built.clone()),
            (Mode::Services, SpaAsk::default(), built.clone()),
            (Mode::Changed, graph, built),
            (Mode::Full, skipping, skip("--skip-spas")),
            (
                Mode::Changed,
                SpaAsk::default(),
                skip("--changed covers backend services only; deploy SPAs with a full deploy"),
            ),
            (
                Mode::Promote,
                SpaAsk::default(),
                skip("not promoted: an SPA build embeds its environment's settings; deploy SPAs to this environment with a normal deploy (`deploy --var-file <its tfvars>`)"),
            ),
        ];
        for (mode, ask, expected) in cases {
            let steps = plan_spas(&platform, &ask, mode, &clean()).unwrap();
            assert_eq!(shown(&steps), expected, "{mode:?} {ask:?}");
        }
        // A skipped SPA needs nothing of the working tree.
        let unread = context(&[]);
        let steps = plan_spas(&platform, &SpaAsk::default(), Mode::Promote, &unread).unwrap();
        assert!(steps.iter().all(|s| s.action == Action::Skip));
    }

    #[test]
    fn what_the_working_tree_holds_refuses_or_marks_the_build() {
        let platform = fixture();
        let dirty = context(&[
            (
                "admin-ui",
                SpaSource::Dirty(vec!["apps/admin-ui/x.ts".into()]),
            ),
            ("simulator", SpaSource::Dirty(Vec::new())),
        ]);
        let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &dirty).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
        assert!(
            err.to_string()
                .contains("  SPA admin-ui:\n    apps/admin-ui/x.ts\nAn upload"),
            "{err}"
        );
        let allowed = SpaAsk {
            allow_dirty: true,
            ..SpaAsk::default()
        };
        let steps = plan_spas(&platform, &allowed, Mode::Full, &dirty).unwrap();
        assert_eq!(
            shown(&steps[..1]),
            [format!(
                "admin-ui Deploy {SHA}-dirty built from the working tree with 1 uncommitted path(s) (--allow-dirty-spas): recorded as 0123456-dirty"
            )]
        );
        assert_eq!(steps[0].dirty, ["apps/admin-ui/x.ts"]);
        // No directory (or not read at all): a usage error naming where dir was set.
        for missing in [context(&[("admin-ui", SpaSource::NoDir)]), context(&[])] {
            let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &missing).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
            assert!(
                err.to_string()
                    .starts_with("SPA admin-ui has no directory "),
                "{err}"
            );
        }
        let unreadable = context(&[(
            "admin-ui",
            SpaSource::Unreadable("cannot parse apps/admin-ui/package.json".into()),
        )]);
        let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &unreadable).unwrap_err();
        assert_eq!(err.to_string(), "cannot parse apps/admin-ui/package.json");
    }

    #[test]
    fn a_restore_checks_each_spa_unless_left_out() {
        let platform = fixture();
        let mut rollback = clean();
        rollback.rollback_to = Some(Head {
            sha: "f".repeat(40),
            short_sha: "fffffff".into(),
            branch: None,
        });
        let actions = |ask: &SpaAsk, mode: Mode| -> Vec<Action> {
            plan_spas(&platform, ask, mode, &rollback)
                .unwrap()
                .iter()
                .map(|s| s.action)
                .collect()
        };
        let named = |names: &[&str]| SpaAsk {
            named: Some(names.iter().map(|n| n.to_string()).collect()),
            ..SpaAsk::default()
        };
        let services = SpaAsk {
            services_named: true,
            ..SpaAsk::default()
        };
        let cases = [
            (
                SpaAsk::default(),
                Mode::Rollback,
                [Action::Check, Action::Check],
            ),
            (
                named(&["simulator"]),
                Mode::Rollback,
                [Action::Skip, Action::Check],
            ),
            (
                services.clone(),
                Mode::Rollback,
                [Action::Skip, Action::Skip],
            ),
            (services, Mode::Undo, [Action::Check, Action::Check]),
        ];
        for (ask, mode, expected) in cases {
            assert_eq!(actions(&ask, mode), expected, "{ask:?} {mode:?}");
        }
        let steps = plan_spas(&platform, &SpaAsk::default(), Mode::Rollback, &rollback).unwrap();
        assert_eq!(
            steps[0].reason,
            "its kept release of fffffff, or the newest before it"
        );
        let err = plan_spas(&platform, &named(&["nope"]), Mode::Undo, &rollback).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--spas nope: no such SPA (this checkout has admin-ui, simulator)"
        );
    }
}
