//! The git repository being deployed: its root, HEAD and working-tree state (git2).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{ErrorClass, ErrorCode, Repository, StatusOptions};
use serde::Serialize;

use crate::error::UsageError;

/// The repository a run deploys from, opened once.
pub struct Repo {
    repo: Repository,
    root: PathBuf,
}

/// What HEAD points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Full commit id.
    pub sha: String,
    /// The image tag: exactly what `git rev-parse --short HEAD` prints.
    pub short_sha: String,
    /// Branch name, or `None` on a detached HEAD.
    pub branch: Option<String>,
}

impl Repo {
    /// Finds the repository containing `start` (any subdirectory works).
    pub fn discover(start: &Path) -> Result<Self> {
        let repo = Repository::discover(start).map_err(|err| discover_error(start, err))?;
        let root = repo
            .workdir()
            .ok_or_else(|| {
                UsageError::new(format!(
                    "{} is a bare git repository; run deploy from a checkout",
                    repo.path().display()
                ))
            })?
            .to_path_buf();
        // Repository::workdir keeps a trailing slash; strip it for display.
        let root = root.components().collect::<PathBuf>();
        Ok(Self { repo, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The underlying repository, for change detection.
    pub fn git(&self) -> &Repository {
        &self.repo
    }

    /// The `.git` directory (deploy keeps its build logs under `deploy/` there).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// HEAD's commit, short id and branch. A repository without commits is a usage error.
    pub fn head(&self) -> Result<Head> {
        let head = match self.repo.head() {
            Ok(head) => head,
            Err(err) if err.code() == ErrorCode::UnbornBranch || err.code() == ErrorCode::NotFound => {
                return Err(UsageError::new(format!(
                    "the repository at {} has no commits yet; commit the code you want live, then deploy",
                    self.root.display()
                ))
                .into())
            }
            Err(err) => return Err(err).context("cannot read HEAD"),
        };
        let commit = head
            .peel_to_commit()
            .context("HEAD does not point at a commit")?;
        let short = commit
            .as_object()
            .short_id()
            .context("cannot abbreviate the HEAD commit id")?;
        let branch = if head.is_branch() {
            head.shorthand().ok().map(str::to_owned)
        } else {
            None
        };
        Ok(Head {
            sha: commit.id().to_string(),
            short_sha: short.as_str().unwrap_or_default().to_owned(),
            branch,
        })
    }

    /// The commit a revision names (`a1b2c3d`, a full SHA, a tag, `HEAD~2`), as the
    /// image tag a deploy of it got. A revision the repository does not know is a usage
    /// error.
    pub fn commit(&self, revision: &str) -> Result<Head> {
        let unknown = |detail: String| {
            UsageError::new(format!(
                "{revision:?} is not a commit in {} ({detail}); give a SHA from `git log` (run `git fetch` if it was made elsewhere)",
                self.root.display()
            ))
        };
        let object = self
            .repo
            .revparse_single(revision)
            .map_err(|err| unknown(err.message().to_owned()))?;
        let commit = object.peel_to_commit().map_err(|_| {
            unknown(format!(
                "it names a {}",
                object.kind().map_or("non-commit", |k| k.str())
            ))
        })?;
        let short = commit
            .as_object()
            .short_id()
            .context("cannot abbreviate the commit id")?;
        Ok(Head {
            sha: commit.id().to_string(),
            short_sha: short.as_str().unwrap_or_default().to_owned(),
            branch: None,
        })
    }

    /// Paths with uncommitted changes (tracked files modified, staged, deleted or
    /// renamed, and untracked files that are not ignored), relative to the root.
    pub fn uncommitted_paths(&self) -> Result<Vec<String>> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut options))
            .context("cannot read the working tree status")?;
        let mut paths: Vec<String> = statuses
            .iter()
            .filter(|entry| !entry.status().is_ignored())
            .filter_map(|entry| entry.path().ok().map(str::to_owned))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

fn discover_error(start: &Path, err: git2::Error) -> anyhow::Error {
    match (err.class(), err.code()) {
        (_, ErrorCode::NotFound) => UsageError::new(format!(
            "{} is not inside a git repository; run deploy from a checkout of the platform (or pass --repo DIR)",
            start.display()
        ))
        .into(),
        (ErrorClass::Config, _) | (_, ErrorCode::Owner) => UsageError::new(format!(
            "git refuses to open the repository at {}: {}; if you trust it, run `git config --global --add safe.directory <path>`",
            start.display(),
            err.message()
        ))
        .into(),
        _ => anyhow::Error::new(err).context(format!("cannot open the git repository at {}", start.display())),
    }
}
