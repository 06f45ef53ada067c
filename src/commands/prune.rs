//! `deploy prune`: the runbook's ENOSPC remedy, made safe. Reclaims the build cache and
//! old SHA-tagged images of our own repositories, keeping what runs live, HEAD's tag and
//! the newest N per repository. Volumes (local dev DB/Minio/Redis data) and images of
//! other repositories are never touched.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::changes::live;
use crate::cli::{Cli, OutputFormat};
use crate::docker::daemon_lock::DaemonLock;
use crate::docker::engine::{Engine, LocalTag};
use crate::model::config;
use crate::model::platform::{runtime, Checkout};

#[derive(Debug, Serialize)]
struct PruneReport {
    removed: Vec<String>,
    kept: Vec<(String, String)>,
    build_cache_bytes: u64,
    dry_run: bool,
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
) -> (Vec<String>, Vec<(String, String)>) {
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
                kept.push((tag.reference.clone(), "live or HEAD".to_owned()));
            } else if index < keep {
                kept.push((tag.reference.clone(), format!("among the newest {keep}")));
            } else {
                remove.push(tag.reference.clone());
            }
        }
    }
    (remove, kept)
}

pub fn run(
    cli: &Cli,
    keep: usize,
    dry_run: bool,
    skip_live_check: bool,
    var_file: Option<&std::path::Path>,
) -> Result<()> {
    let Checkout {
        repo,
        platform,
        head,
        cwd,
    } = Checkout::open(cli.repo.as_deref())?;
    let workspace = crate::model::plan::workspace_named(&platform, &cwd, var_file)?;
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let engine = Engine::connect().await?;
        let mut protected = BTreeSet::from([head.short_sha.clone()]);
        if !skip_live_check {
            let profile = cli.profile.as_deref();
            let survey = async {
                let terraform = live::terraform_of(&platform, profile, workspace.as_deref());
                let cluster = live::resolve_cluster(&platform, &terraform).await?;
                live::survey(&platform, &repo, &head.sha, profile, cluster).await
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
                    Err(err) => eprintln!("warning: {err:#}"),
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
    let json = serde_json::to_string_pretty(&report)?;
    let mut stdout = std::io::stdout().lock();
    use std::io::Write;
    let written: std::io::Result<()> = (|| {
        match cli.output {
            OutputFormat::Json => writeln!(stdout, "{json}")?,
            OutputFormat::Text => {
                let verb = if report.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                for reference in &report.removed {
                    writeln!(stdout, "{verb} {reference}")?;
                }
                for (reference, why) in &report.kept {
                    writeln!(stdout, "kept {reference} ({why})")?;
                }
                if report.dry_run {
                    writeln!(
                        stdout,
                        "dry run: nothing removed; the build cache would be pruned too"
                    )?;
                } else {
                    writeln!(
                    stdout,
                    "{} image tag(s) removed; build cache: {:.1} MB reclaimed; volumes untouched",
                    report.removed.len(),
                    report.build_cache_bytes as f64 / 1e6
                )?;
                }
            }
        }
        Ok(())
    })();
    written.context(crate::error::WritingStdout)
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
        let kept: Vec<&str> = kept.iter().map(|(r, _)| r.as_str()).collect();
        assert!(kept.contains(&"127.0.0.1:5000/api:aaaaaaa"));
        assert!(kept.contains(&"127.0.0.1:5000/api:ddddddd"));
        assert!(kept.contains(&"1234.dkr.ecr.us-east-1.amazonaws.com/auth:fffffff"));
    }
}
