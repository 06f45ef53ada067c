//! fsutil's include set for one DiffCopy: the include patterns the frontend sent plus
//! its follow paths with the symlinks on their way resolved, read from the commit's
//! tree instead of a disk.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use git2::{Repository, Tree};

use crate::docker::committed_files::IncludePattern;
use crate::glob::{Dialect, Glob};
use crate::paths::clean_relative;

/// fsutil's include set: the include patterns plus the follow paths with the symlinks
/// on their way resolved (`FollowLinks`), cleaned and deduplicated; `None` when
/// nothing limits the walk (no patterns, or one of them is the root).
pub(super) fn include_patterns(
    repo: &Repository,
    tree: &Tree<'_>,
    includes: &[String],
    follow_paths: &[String],
) -> Result<Option<Vec<IncludePattern>>> {
    if includes.is_empty() && follow_paths.is_empty() {
        return Ok(None);
    }
    let mut all: BTreeSet<String> = includes.iter().map(|p| clean_relative(p)).collect();
    let mut resolver = SymlinkResolver {
        repo,
        tree,
        resolved: BTreeSet::new(),
    };
    for path in follow_paths {
        resolver.append(&clean_relative(path), 0)?;
    }
    all.extend(resolver.resolved);
    let mut kept: Vec<String> = Vec::new();
    for path in all {
        if path == "." {
            return Ok(None);
        }
        if kept
            .last()
            .is_some_and(|last| path.starts_with(&format!("{last}/")))
        {
            continue;
        }
        kept.push(path);
    }
    Ok(Some(kept.iter().map(|p| IncludePattern::new(p)).collect()))
}

/// fsutil's `symlinkResolver`, reading the commit's tree instead of a disk.
struct SymlinkResolver<'a, 'repo> {
    repo: &'a Repository,
    tree: &'a Tree<'repo>,
    resolved: BTreeSet<String>,
}

impl SymlinkResolver<'_, '_> {
    fn append(&mut self, path: &str, depth: usize) -> Result<()> {
        if depth > 40 {
            return Err(anyhow!("too many levels of symbolic links under {path}"));
        }
        let mut rest = path.to_owned();
        let mut current = String::new();
        loop {
            let (head, tail) = match rest.split_once('/') {
                Some((head, tail)) => (head.to_owned(), tail.to_owned()),
                None => (rest.clone(), String::new()),
            };
            current = if current.is_empty() {
                head
            } else {
                format!("{current}/{head}")
            };
            let targets = self.read_symlink(&current, true)?;
            rest = tail;
            if (rest.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current.clone());
                for target in targets {
                    let next = if rest.is_empty() {
                        target
                    } else {
                        clean_relative(&format!("{target}/{rest}"))
                    };
                    if next != "." && !next.starts_with("..") {
                        self.append(&next, depth + 1)?;
                    }
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The targets (relative to the tree) of the symlink at `path`, or of the symlinks a
    /// wildcard last component matches; empty when there are none.
    fn read_symlink(&self, path: &str, wildcard: bool) -> Result<Vec<String>> {
        let (parent, base) = match path.rsplit_once('/') {
            Some((parent, base)) => (parent, base),
            None => ("", path),
        };
        if wildcard && base.contains(['*', '?', '[', '\\']) {
            let glob = Glob::new(base, Dialect::Docker);
            let Some(dir) = self.subtree(parent) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in dir.iter() {
                if let Some(name) = entry.name().ok().filter(|name| glob.matches(name)) {
                    let full = if parent.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{parent}/{name}")
                    };
                    out.extend(self.read_symlink(&full, false)?);
                }
            }
            return Ok(out);
        }
        let Ok(entry) = self.tree.get_path(Path::new(path)) else {
            return Ok(Vec::new());
        };
        if entry.filemode() != 0o120000 {
            return Ok(Vec::new());
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .with_context(|| format!("cannot read the symlink {path} from git"))?;
        let link = String::from_utf8_lossy(blob.content()).into_owned();
        Ok(vec![if link.starts_with('/') {
            clean_relative(&link)
        } else {
            clean_relative(&format!("{parent}/{link}"))
        }])
    }

    fn subtree(&self, path: &str) -> Option<Tree<'_>> {
        if path.is_empty() {
            return Some(self.tree.clone());
        }
        let entry = self.tree.get_path(Path::new(path)).ok()?;
        entry.to_object(self.repo).ok()?.into_tree().ok()
    }
}
