//! `deploy prune`: the runbook's ENOSPC remedy, made safe. Reclaims the build cache and
//! old SHA-tagged images of our own repositories, keeping what runs live, HEAD's tag and
//! the newest N per repository. Volumes (local dev DB/Minio/Redis data) and images of
//! other repositories are never touched.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::changes::live;
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::engine::{Engine, LocalTag};
use crate::model::config;
use crate::model::platform::{runtime, Checkout};
use crate::request::{Globals, PruneRequest};
use crate::ui::output::{emit_stdout, warn};

#[derive(Debug, Serialize)]
struct PruneReport {
    removed: Vec<String>,
    kept: Vec<Kept>,
    build_cache_bytes: u64,
    dry_run: bool,
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

/// The repository (path after the registry host) and tag of a reference, if the tag
/// looks like a git SHA deploy would have made.
fn sha_tagged(reference: &str) -> Option<(&str, &str)> {
    let tag = image_tag_of(reference)?;
    let name = &reference[..reference.len() - tag.len() - 1];
    crate::git::looks_like_sha(tag.trim_end_matches("-dirty")).then_some((name, tag))
}

/// Which local tags to remove: per repository, all SHA tags but the protected ones and
/// the newest `keep`.
fn choose(
    tags: &[LocalTag],
    repositories: &BTreeSet<String>,
    protected: &BTreeSet<String>,
    keep: usize,
) -> (Vec<String>, Vec<Kept>) {
    let mut by_repository: BTreeMap<&str, Vec<&LocalTag>> = BTreeMap::new();
    for tag in tags {
        let Some((name, _)) = sha_tagged(&tag.reference) else {
            continue;
        };
        let repository = repositories
            .iter()
            .find(|repo| name == repo.as_str() || name.ends_with(&format!("/{repo}")));
        if let Some(repository) = repository {
            by_repository.entry(repository).or_default().push(tag);
        }
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

pub fn run(globals: &Globals, request: &PruneRequest) -> Result<()> {
    let PruneRequest {
        keep,
        dry_run,
        skip_live_check,
        ref var_file,
    } = *request;
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(globals.repo.as_deref())?;
    let workspace = crate::model::plan::workspace_named(&platform, &cwd, var_file.as_deref())?;
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let engine = Engine::connect().await?;
        let mut protected = BTreeSet::from([head.short_sha.clone()]);
        if !skip_live_check {
            let profile = globals.profile.as_deref();
            let survey = async {
                let (environment, _) = super::read_environment(
                    &platform,
                    profile,
                    workspace.as_deref(),
                    platform.config.ecs.cluster.is_some(),
                )
                .await?;
                let cluster = environment.cluster()?.to_owned();
                live::survey(
            &platform,
            &repo,
            &head.sha,
            profile,
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
                }
            }
        }
        let repositories: BTreeSet<String> = platform
            .services
            .iter()
            .map(|s| config::expand(&platform.config.registry.repository, &s.name))
            .collect();
        let tags = engine.local_tags().await?;
        let (remove, kept) = choose(&tags, &repositories, &protected, keep);
        let mut removed = Vec::new();
        let mut build_cache_bytes = 0;
        if !dry_run {
            // Never under a running build of this machine's deploys (see daemon_lock).
            let _alone = DaemonLock::for_prune(&engine).await?;
            for reference in &remove {
                match engine.remove_tag(reference).await {
                    Ok(()) => removed.push(reference.clone()),
                    Err(err) => warn(&format!("{err:#}")),
                }
            }
            build_cache_bytes = engine.prune_build_cache().await?;
        } else {
            removed = remove;
        }
        anyhow::Ok(PruneReport {
            removed,
            kept,
            build_cache_bytes,
            dry_run,
        })
    })?;
    emit_stdout(&report, globals.output)
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
    fn keeps_live_head_and_newest_and_ignores_foreign_images() {
        let tags = vec![
            tag("127.0.0.1:5000/api:aaaaaaa", 1),
            tag("127.0.0.1:5000/api:bbbbbbb", 2),
            tag("127.0.0.1:5000/api:ccccccc", 3),
            tag("127.0.0.1:5000/api:ddddddd", 4),
            tag("127.0.0.1:5000/api:latest", 5),
            tag("127.0.0.1:5000/apix:eeeeeee", 6),
            tag("postgres:15", 7),
            tag("1234.dkr.ecr.us-east-1.amazonaws.com/auth:fffffff", 8),
        ];
        let repositories = BTreeSet::from(["api".to_owned(), "auth".to_owned()]);
        let protected = BTreeSet::from(["aaaaaaa".to_owned()]);
        let (remove, kept) = choose(&tags, &repositories, &protected, 1);
        assert_eq!(
            remove,
            ["127.0.0.1:5000/api:ccccccc", "127.0.0.1:5000/api:bbbbbbb"]
        );
        let kept: Vec<&str> = kept.iter().map(|k| k.reference.as_str()).collect();
        assert!(kept.contains(&"127.0.0.1:5000/api:aaaaaaa"));
        assert!(kept.contains(&"127.0.0.1:5000/api:ddddddd"));
        assert!(kept.contains(&"1234.dkr.ecr.us-east-1.amazonaws.com/auth:fffffff"));
    }

    #[test]
    fn the_report_names_its_fields_in_json_and_reads_as_lines_in_text() {
        let report = PruneReport {
            removed: vec!["r/api:bbbbbbb".into()],
            kept: vec![Kept::new("r/api:aaaaaaa", "live or HEAD".into())],
            build_cache_bytes: 2_500_000,
            dry_run: false,
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "removed": ["r/api:bbbbbbb"],
                "kept": [{"reference": "r/api:aaaaaaa", "reason": "live or HEAD"}],
                "build_cache_bytes": 2_500_000,
                "dry_run": false,
            })
        );
        assert_eq!(
            report.to_string(),
            "removed r/api:bbbbbbb\nkept r/api:aaaaaaa (live or HEAD)\n1 image tag(s) removed; build cache: 2.5 MB reclaimed; volumes untouched\n"
        );
    }
}
