//! Change detection for `--changed` (git2, no subprocess): resolve a live image tag to
//! a commit, diff that commit's tree against HEAD's, and say per service whether (and
//! why) it must be deployed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use git2::{DiffOptions, ErrorCode, Oid, Repository};

/// Why a live tag cannot be used as a diff base, or which commit it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveBase {
    Commit(Oid),
    /// Not something a SHA could be (`latest`, `v1.2`, digest-only).
    NotASha(String),
    /// A build of uncommitted code (`<sha>-dirty`): never a diff base.
    Dirty(String),
    /// Looks like a SHA but the local history does not have it (shallow clone, or not
    /// fetched).
    UnknownCommit(String),
}

/// Resolves a live tag against the local repository.
pub fn resolve_tag(repo: &Repository, tag: &str) -> LiveBase {
    if tag.ends_with("-dirty") || tag.contains("dirty") {
        return LiveBase::Dirty(tag.to_owned());
    }
    if !crate::git::looks_like_sha(tag) {
        return LiveBase::NotASha(tag.to_owned());
    }
    match repo
        .revparse_single(tag)
        .and_then(|object| object.peel_to_commit())
    {
        Ok(commit) => LiveBase::Commit(commit.id()),
        Err(err) if err.code() == ErrorCode::Ambiguous => LiveBase::UnknownCommit(tag.to_owned()),
        Err(_) => LiveBase::UnknownCommit(tag.to_owned()),
    }
}

/// The paths a service's image depends on.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub service_dir: &'a Path,
    pub shared_packages: &'a [std::path::PathBuf],
    pub build_inputs: &'a [std::path::PathBuf],
}

/// Why a service changed: the first matching paths, most specific reason first.
pub fn reason_for(changed: &[String], inputs: &Inputs<'_>) -> Option<String> {
    let under = |dir: &Path, path: &str| {
        let dir = dir.to_string_lossy();
        let dir = dir.trim_end_matches('/');
        path == dir || path.starts_with(&format!("{dir}/"))
    };
    for input in inputs.build_inputs {
        if let Some(path) = changed.iter().find(|p| under(input, p)) {
            let kind = if path.ends_with("pnpm-lock.yaml") {
                "lockfile"
            } else {
                "build input"
            };
            return Some(format!("{kind} {path} changed"));
        }
    }
    for package in inputs.shared_packages {
        if changed.iter().any(|p| under(package, p)) {
            return Some(format!("shared package {} changed", package.display()));
        }
    }
    let own: Vec<&String> = changed
        .iter()
        .filter(|p| under(inputs.service_dir, p))
        .collect();
    match own.len() {
        0 => None,
        1 => Some(format!("{} changed", own[0])),
        n => Some(format!("{} and {} more changed", own[0], n - 1)),
    }
}

/// Every path that differs between `base` and `head` (renames count for both sides).
/// Computed once per distinct base and reused for every service on it.
pub struct DiffCache<'r> {
    repo: &'r Repository,
    head: Oid,
    /// Only paths under these matter (every service's inputs): the diff skips the rest.
    pathspecs: Vec<String>,
    by_base: HashMap<Oid, Vec<String>>,
}

impl<'r> DiffCache<'r> {
    pub fn new(repo: &'r Repository, head: Oid, pathspecs: Vec<String>) -> Self {
        Self {
            repo,
            head,
            pathspecs,
            by_base: HashMap::new(),
        }
    }

    /// The repository the live tags are resolved in.
    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    /// The commit every diff ends at.
    pub fn head(&self) -> Oid {
        self.head
    }

    pub fn changed_paths_since(&mut self, base: Oid) -> Result<&[String]> {
        if !self.by_base.contains_key(&base) {
            let paths = diff_paths(self.repo, base, self.head, &self.pathspecs)?;
            self.by_base.insert(base, paths);
        }
        Ok(&self.by_base[&base])
    }
}

pub(crate) fn diff_paths(
    repo: &Repository,
    base: Oid,
    head: Oid,
    pathspecs: &[String],
) -> Result<Vec<String>> {
    let tree = |oid: Oid| {
        repo.find_commit(oid)
            .and_then(|c| c.tree())
            .with_context(|| format!("cannot read the tree of commit {oid}"))
    };
    let (old, new) = (tree(base)?, tree(head)?);
    let mut options = DiffOptions::new();
    options.include_typechange(true);
    for pathspec in pathspecs {
        options.pathspec(pathspec);
    }
    let diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut options))
        .with_context(|| format!("cannot diff {base}..{head}"))?;
    let paths: std::collections::BTreeSet<String> = diff
        .deltas()
        .flat_map(|delta| [delta.old_file().path(), delta.new_file().path()])
        .flatten()
        .filter_map(|path| path.to_str().map(str::to_owned))
        .collect();
    Ok(paths.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn inputs<'a>(dir: &'a Path, shared: &'a [PathBuf], build: &'a [PathBuf]) -> Inputs<'a> {
        Inputs {
            service_dir: dir,
            shared_packages: shared,
            build_inputs: build,
        }
    }

    #[test]
    fn reasons_name_the_path_and_its_kind() {
        let shared = [PathBuf::from("packages/common")];
        let build = [
            PathBuf::from("pnpm-lock.yaml"),
            PathBuf::from("infra/docker/.npmrc"),
        ];
        let dir = PathBuf::from("services/api");
        let i = inputs(&dir, &shared, &build);
        let changed = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            reason_for(&changed(&["pnpm-lock.yaml"]), &i).unwrap(),
            "lockfile pnpm-lock.yaml changed"
        );
        assert_eq!(
            reason_for(&changed(&["infra/docker/.npmrc"]), &i).unwrap(),
            "build input infra/docker/.npmrc changed"
        );
        assert_eq!(
            reason_for(&changed(&["packages/common/src/index.ts"]), &i).unwrap(),
            "shared package packages/common changed"
        );
        assert_eq!(
            reason_for(&changed(&["services/api/a.ts", "services/api/b.ts"]), &i).unwrap(),
            "services/api/a.ts and 1 more changed"
        );
        // services/ap is not services/api; docs and slack-agent never count.
        assert_eq!(
            reason_for(
                &changed(&["services/apix/a.ts", "docs/x.md", "services/slack-agent/a"]),
                &i
            ),
            None
        );
    }

    #[test]
    fn the_diff_lists_each_changed_path_once_and_only_under_the_pathspecs() {
        let test_repo = crate::git::testing::TestRepo::new();
        let repo = &test_repo.repo;
        let base = test_repo.commit(&[
            ("services/api/a.ts", "1"),
            ("services/apix/b.ts", "1"),
            ("docs/x.md", "1"),
        ]);
        let head = test_repo.commit(&[
            ("services/api/a.ts", "2"),
            ("services/apix/b.ts", "2"),
            ("docs/x.md", "2"),
        ]);
        let mut cache = DiffCache::new(
            repo,
            head,
            vec!["services/api".into(), "pnpm-lock.yaml".into()],
        );
        assert_eq!(
            cache.changed_paths_since(base).unwrap(),
            ["services/api/a.ts"]
        );
        let mut everything = DiffCache::new(repo, head, Vec::new());
        assert_eq!(
            everything.changed_paths_since(base).unwrap(),
            ["docs/x.md", "services/api/a.ts", "services/apix/b.ts"]
        );
    }

    #[test]
    fn tags_that_cannot_be_a_base() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        assert_eq!(
            resolve_tag(&repo, "latest"),
            LiveBase::NotASha("latest".into())
        );
        assert_eq!(
            resolve_tag(&repo, "abc1234-dirty"),
            LiveBase::Dirty("abc1234-dirty".into())
        );
        assert_eq!(
            resolve_tag(&repo, "abc1234"),
            LiveBase::UnknownCommit("abc1234".into())
        );
        assert_eq!(
            resolve_tag(&repo, "abc12"),
            LiveBase::NotASha("abc12".into())
        );
    }
}
