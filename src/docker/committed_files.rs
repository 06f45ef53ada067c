//! What both ways of sending a build context read besides the commit's tree: the
//! include patterns as fsutil matches them (the paths a Dockerfile's `COPY` sources
//! read), and the work-tree file that holds a committed blob exactly, streamed instead
//! of loaded whole from git.

use std::path::Path;

use git2::{ObjectType, Oid};

use crate::glob::{Dialect, Glob};

/// Files at least this big are streamed from the work tree when it holds exactly the
/// committed content (checked by hashing it), rather than loaded whole from git.
pub(crate) const STREAM_FROM_WORK_TREE: u64 = 1024 * 1024;

/// An include pattern as fsutil matches it (`matchPrefix`): against a path with fewer
/// components, only the pattern's first components, and then only as the way in.
pub(crate) struct IncludePattern {
    /// `prefixes[k]`: the pattern's first `k + 1` components.
    prefixes: Vec<Glob>,
}

impl IncludePattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let parts: Vec<&str> = pattern.split('/').collect();
        let prefixes = (1..=parts.len())
            .map(|n| Glob::new(&parts[..n].join("/"), Dialect::Docker))
            .collect();
        Self { prefixes }
    }

    /// `Some(false)`: `path` is the pattern; `Some(true)`: it is on the way to it
    /// (partial); `None`: neither.
    fn matches(&self, path: &str) -> Option<bool> {
        let depth = path.matches('/').count();
        let glob = self.prefixes.get(depth)?;
        glob.matches(path)
            .then_some(depth + 1 < self.prefixes.len())
    }
}

/// How a path stands against the include patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Included {
    No,
    /// A directory on the way to something included.
    OnTheWay,
    Yes,
}

pub(crate) fn included(patterns: &[IncludePattern], path: &str) -> Included {
    let mut result = Included::No;
    for pattern in patterns {
        match pattern.matches(path) {
            Some(false) => return Included::Yes,
            Some(true) => result = Included::OnTheWay,
            None => {}
        }
    }
    result
}

/// The work-tree file, if it holds exactly blob `oid` (same size, same git hash):
/// then it can be streamed, and memory does not grow with the file.
pub(crate) fn committed_file_in_work_tree(
    path: &Path,
    oid: Oid,
    size: u64,
) -> Option<std::fs::File> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() != size {
        return None;
    }
    if Oid::hash_file(ObjectType::Blob, path).ok()? != oid {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    // Changed between hashing and opening? Then trust git instead.
    (file.metadata().ok()?.len() == size).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_pattern_prefixes_match_as_fsutil_does() {
        let pattern = IncludePattern::new("service[s]/api/src");
        assert_eq!(pattern.matches("services"), Some(true));
        assert_eq!(pattern.matches("services/api"), Some(true));
        assert_eq!(pattern.matches("services/api/src"), Some(false));
        assert_eq!(pattern.matches("services/auth"), None);
        assert_eq!(pattern.matches("services/api/src/x"), None);
    }
}
