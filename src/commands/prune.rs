//! `deploy prune`: the runbook's ENOSPC remedy, made safe. Reclaims the build cache and
//! old commit-tagged images of our own repositories, keeping what runs live, HEAD's tag
//! and the newest N per repository. Volumes (local dev DB/Minio/Redis data) and other
//! images are never touched: an image is ours only under this platform's registry, in a
//! service's repository, tagged with a commit of this repository (see `selection`).

mod selection;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::changes::live;
use crate::checkout::{runtime, Checkout};
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::engine::{Engine, LocalTag};
use crate::model::config;
use crate::model::plan::registry::RegistryEnv;
use crate::model::platform::Platform;
use crate::request::{Globals, PruneRequest};
use crate::ui::output::{emit_stdout_ended, warn, Ending};
use selection::{Scope, SkipReason, Verdict};

#[derive(Debug, Serialize)]
struct PruneReport {
    removed: Vec<String>,
    kept: Vec<Kept>,
    /// Tags of our repository names that are not ours, and why.
    skipped: Vec<Skipped>,
    build_cache_bytes: u64,
    dry_run: bool,
    /// Text output lists each skipped tag (`-v`), not only the counts.
    #[serde(skip)]
    list_skipped: bool,
}

/// A tag named like ours that prune leaves alone: another project's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Skipped {
    reference: String,
    reason: SkipReason,
}

/// A SHA-tagged image prune leaves, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Kept {
    reference: String,
    reason: String,
}

impl Kept {
    fn new(reference: &str, reason: String) -> Self {
        Self {
            reference: reference.to_owned(),
            reason,
        }
    }
}

/// Which local tags to remove: per repository, all of ours but the protected ones and
/// the newest `keep`. `ours` holds each of our tags with its repository.
fn choose(
    ours: &[(LocalTag, String)],
    protected: &BTreeSet<String>,
    keep: usize,
) -> (Vec<String>, Vec<Kept>) {
    let mut by_repository: BTreeMap<&str, Vec<&LocalTag>> = BTreeMap::new();
    for (tag, repository) in ours {
        by_repository.entry(repository).or_default().push(tag);
    }
    let mut remove = Vec::new();
    let mut kept = Vec::new();
    for (_, mut tags) in by_repository {
        tags.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then(b.reference.cmp(&a.reference))
        });
        for (index, tag) in tags.into_iter().enumerate() {
            let sha = image_tag_of(&tag.reference).unwrap_or_default();
            if protected.contains(sha) {
                kept.push(Kept::new(&tag.reference, "live or HEAD".to_owned()));
            } else if index < keep {
                kept.push(Kept::new(
                    &tag.reference,
                    format!("among the newest {keep}"),
                ));
            } else {
                remove.push(tag.reference.clone());
            }
        }
    }
    (remove, kept)
}

/// Every registry this platform pushes to, whichever environment: the registry
/// variables of this process and `registry.host`/`registry.hosts` (the ECR host of an
/// environment comes from its live images, when the live check runs).
fn configured_registries(platform: &Platform, env: &RegistryEnv) -> BTreeSet<String> {
    let config = &platform.config.registry;
    env.global
        .iter()
        .chain(env.per_environment.values())
        .chain(config.host.iter())
        .chain(config.hosts.values())
        .map(|host| host.trim_end_matches('/').to_owned())
        .collect()
}

/// Splits the local tags into ours (with their repository) and skipped ones.
fn sort_out(
    tags: Vec<LocalTag>,
    scope: &Scope,
    is_our_commit: impl Fn(&str) -> bool,
) -> (Vec<(LocalTag, String)>, Vec<Skipped>) {
    let mut ours = Vec::new();
    let mut skipped = Vec::new();
    for tag in tags {
        match scope.judge(&tag.reference, &is_our_commit) {
            Verdict::Ours { repository } => ours.push((tag, repository)),
            Verdict::Skipped(reason) => skipped.push(Skipped {
                reference: tag.reference,
                reason,
            }),
            Verdict::Unrelated => {}
        }
    }
    skipped.sort_by(|a, b| (a.reason, &a.reference).cmp(&(b.reason, &b.reference)));
    (ours, skipped)
}

pub fn run(globals: &Globals, request: &PruneRequest) -> Result<()> {
    let PruneRequest {
        keep,
        dry_run,
        skip_live_check,
        ref var_file,
    } = *request;
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([("--profile", profile)])?;
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(globals.repo.as_deref())?;
    let workspace = crate::planning::workspace_named(&platform, &cwd, var_file.as_deref())?;
    let platform = crate::planning::platform_in(&platform, workspace.as_deref())?;
    let runtime = runtime()?;
    let (report, outcome) = runtime.block_on(async {
        let engine = Engine::connect().await?;
        let mut protected = BTreeSet::from([head.short_sha.clone()]);
        let mut live_images = Vec::new();
        if !skip_live_check {
            let survey = async {
                let (environment, _) = crate::changes::environment::read_environment(
                    &platform,
                    profile,
                    workspace.as_deref(),
                    platform.config.ecs.cluster.is_some(),
                )
                .await?;
                let cluster = environment.cluster()?.to_owned();
                let aws = contexts.get(profile).await;
                live::survey(
            &platform,
            &repo,
            &head.sha,
            &aws,
            cluster,
            platform.config.changes.mode,
        )
        .await
            }
                .await
                .context("cannot read which tags run live (prune never removes a live image); fix the AWS access, or pass --skip-live-check to keep only HEAD and the newest N")?;
            for service in survey.services {
                if let LiveImage::Running { image, .. } = service.live {
                    if let Some(tag) = image_tag_of(&image) {
                        protected.insert(tag.to_owned());
                    }
                    live_images.push(image);
                }
            }
        }
        let mut scope = Scope {
            registries: configured_registries(&platform, &crate::planning::registry_env()),
            repositories: platform
                .services
                .iter()
                .map(|s| config::expand(&platform.config.registry.repository, &s.name))
                .collect(),
        };
        scope.add_registries_of(&live_images);
        let tags = engine.local_tags().await?;
        let (ours, skipped) = sort_out(tags, &scope, |sha| repo.has_commit(sha));
        let (remove, kept) = choose(&ours, &protected, keep);
        let mut removed = Vec::new();
        let mut build_cache_bytes = 0;
        // A failed build cache prune ends the command, after the report of the tags removed.
        let mut outcome = Ok(());
        if !dry_run {
            // Never under a running build of this machine's deploys (see daemon_lock).
            let _alone = DaemonLock::for_prune(&engine).await?;
            for reference in &remove {
                match engine.remove_tag(reference).await {
                    Ok(()) => removed.push(reference.clone()),
                    Err(err) => warn(&format!("{err:#}")),
                }
            }
            match engine.prune_build_cache().await {
                Ok(bytes) => build_cache_bytes = bytes,
                Err(err) => outcome = Err(err),
            }
        } else {
            removed = remove;
        }
        let report = PruneReport {
            removed,
            kept,
            skipped,
            build_cache_bytes,
            dry_run,
            list_skipped: globals.verbose > 0,
        };
        anyhow::Ok((report, outcome))
    })?;
    let ending = Ending::of(&outcome, globals.verbose, None);
    emit_stdout_ended(&report, globals.output, &ending)?;
    outcome
}

impl std::fmt::Display for PruneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for reference in &self.removed {
            writeln!(f, "{verb} {reference}")?;
        }
        for kept in &self.kept {
            writeln!(f, "kept {} ({})", kept.reference, kept.reason)?;
        }
        if self.list_skipped {
            for skipped in &self.skipped {
                writeln!(
                    f,
                    "skipped {} ({}: not this project's)",
                    skipped.reference,
                    skipped.reason.describe()
                )?;
            }
        }
        if !self.skipped.is_empty() {
            let mut counts: BTreeMap<SkipReason, usize> = BTreeMap::new();
            for skipped in &self.skipped {
                *counts.entry(skipped.reason).or_default() += 1;
            }
            let counts: Vec<String> = counts
                .iter()
                .map(|(reason, count)| format!("{count} {}", reason.describe()))
                .collect();
            writeln!(
                f,
                "skipped {} image tag(s) named like ours that are not this project's ({}){}",
                self.skipped.len(),
                counts.join(", "),
                if self.list_skipped {
                    ""
                } else {
                    "; -v lists them"
                }
            )?;
        }
        if self.dry_run {
            writeln!(
                f,
                "dry run: nothing removed; the build cache would be pruned too"
            )
        } else {
            writeln!(
                f,
                "{} image tag(s) removed; build cache: {:.1} MB reclaimed; volumes untouched",
                self.removed.len(),
                self.build_cache_bytes as f64 / 1e6
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(reference: &str, created: i64) -> LocalTag {
        LocalTag {
            reference: reference.into(),
            image_id: format!("sha256:{created}"),
            created,
            size: 1,
        }
    }

    #[test]
    fn keeps_live_head_and_newest_and_skips_what_is_not_ours() {
        let tags = vec![
            tag("127.0.0.1:5000/api:aaaaaaa", 1),
            tag("127.0.0.1:5000/api:bbbbbbb", 2),
            tag("127.0.0.1:5000/api:ccccccc", 3),
            tag("127.0.0.1:5000/api:ddddddd", 4),
            tag("127.0.0.1:5000/api:latest", 5),
            tag("127.0.0.1:5000/apix:eeeeeee", 6),
            tag("postgres:15", 7),
            tag("127.0.0.1:5001/api:0000000", 8),
            tag("127.0.0.1:5000/api:9999999", 9),
        ];
        let scope = Scope {
            registries: BTreeSet::from(["127.0.0.1:5000".to_owned()]),
            repositories: BTreeSet::from(["api".to_owned(), "auth".to_owned()]),
        };
        let our_commits = ["aaaaaaa", "bbbbbbb", "ccccccc", "ddddddd", "0000000"];
        let (ours, skipped) = sort_out(tags, &scope, |sha| our_commits.contains(&sha));
        let protected = BTreeSet::from(["aaaaaaa".to_owned()]);
        let (remove, kept) = choose(&ours, &protected, 1);
        assert_eq!(
            remove,
            ["127.0.0.1:5000/api:ccccccc", "127.0.0.1:5000/api:bbbbbbb"]
        );
        let kept: Vec<&str> = kept.iter().map(|k| k.reference.as_str()).collect();
        assert_eq!(
            kept,
            ["127.0.0.1:5000/api:ddddddd", "127.0.0.1:5000/api:aaaaaaa"]
        );
        let skipped: Vec<(&str, SkipReason)> = skipped
            .iter()
            .map(|s| (s.reference.as_str(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                ("127.0.0.1:5001/api:0000000", SkipReason::OtherRegistry),
                ("127.0.0.1:5000/api:latest", SkipReason::NotACommitTag),
                (
                    "127.0.0.1:5000/api:9999999",
                    SkipReason::NotACommitOfThisRepository
                ),
            ]
        );
    }

    #[test]
    fn every_configured_registry_is_ours() {
        let mut platform = crate::planning::tests::fixture();
        platform.config.registry.host = Some("registry.example/".into());
        platform.config.registry.hosts =
            [("prod".to_owned(), "prod.example:5000".to_owned())].into();
        let env = RegistryEnv::from_vars([
            ("DEPLOY_REGISTRY".to_owned(), "127.0.0.1:5000".to_owned()),
            ("DEPLOY_REGISTRY_QA".to_owned(), "qa.example".to_owned()),
        ]);
        assert_eq!(
            configured_registries(&platform, &env),
            BTreeSet::from(
                [
                    "127.0.0.1:5000",
                    "qa.example",
                    "registry.example",
                    "prod.example:5000"
                ]
                .map(str::to_owned)
            )
        );
    }

    #[test]
    fn the_report_names_its_fields_in_json_and_reads_as_lines_in_text() {
        let mut report = PruneReport {
            removed: vec!["r/api:bbbbbbb".into()],
            kept: vec![Kept::new("r/api:aaaaaaa", "live or HEAD".into())],
            skipped: vec![
                Skipped {
                    reference: "other/api:ccccccc".into(),
                    reason: SkipReason::OtherRegistry,
                },
                Skipped {
                    reference: "r/api:latest".into(),
                    reason: SkipReason::NotACommitTag,
                },
            ],
            build_cache_bytes: 2_500_000,
            dry_run: false,
            list_skipped: false,
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "removed": ["r/api:bbbbbbb"],
                "kept": [{"reference": "r/api:aaaaaaa", "reason": "live or HEAD"}],
                "skipped": [
                    {"reference": "other/api:ccccccc", "reason": "other_registry"},
                    {"reference": "r/api:latest", "reason": "not_a_commit_tag"},
                ],
                "build_cache_bytes": 2_500_000,
                "dry_run": false,
            })
        );
        assert_eq!(
            report.to_string(),
            "removed r/api:bbbbbbb\nkept r/api:aaaaaaa (live or HEAD)\nskipped 2 image tag(s) named like ours that are not this project's (1 under another registry host, 1 tag is not a commit id); -v lists them\n1 image tag(s) removed; build cache: 2.5 MB reclaimed; volumes untouched\n"
        );
        report.list_skipped = true;
        assert!(report.to_string().contains(
            "skipped other/api:ccccccc (under another registry host: not this project's)\n"
        ));
    }
}
