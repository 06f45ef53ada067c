//! The SPAs' half of `status`: the release live in each bucket against HEAD.

use anyhow::{Context as _, Result};
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct SpaStatus {
    pub(super) name: String,
    pub(super) bucket: Option<String>,
    /// The git SHA recorded by the last upload, if any (`<sha>-dirty`: a build of
    /// uncommitted files).
    pub(super) deployed_sha: Option<String>,
    /// The same, abbreviated as image tags are (`git rev-parse --short`).
    pub(super) deployed_short: Option<String>,
    /// The live release: its number in the SPA's manifest (`None`: none kept).
    pub(super) release: Option<u64>,
    /// A restored release: the one it put back.
    pub(super) restored_from: Option<u64>,
    /// When the live release went live (RFC 3339, UTC).
    pub(super) live_since: Option<String>,
    /// Whether HEAD's build would differ from what is live, and why.
    pub(super) changed: bool,
    pub(super) reason: String,
}

impl SpaStatus {
    /// `#4 = #1 since 2026-12-06T20:50:00Z` (a restore), `#3 since …`, `-`.
    pub(super) fn release_text(&self) -> String {
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
pub(super) fn spa_change(
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
pub(super) fn abbreviate(repo: &crate::git::Repo, sha: &str) -> String {
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
