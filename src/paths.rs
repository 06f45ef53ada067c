//! Paths as git and Docker name them: `/`-separated, relative to a root, cleaned the way
//! Go's `path.Clean` cleans them (the daemon, BuildKit and fsutil are Go). The one
//! normaliser behind `.dockerignore` rules, `COPY` sources, the build context's include
//! patterns and every configured directory looked up in a commit's tree.

use std::path::{Component, Path};

/// Go's `path.Clean`: `.` and empty parts dropped, `..` folded into its parent (kept
/// at the start of a relative path, dropped at the root of an absolute one), `.` for
/// nothing.
pub fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// [`clean`] of `path` read as relative (a leading `/` dropped): fsutil's include
/// patterns and follow paths.
pub fn clean_relative(path: &str) -> String {
    clean(path.trim_start_matches('/'))
}

/// [`clean`] of a path inside a root it cannot leave (a build context): a leading `/`
/// is the root, and `..` at the root stays there. Relative, `.` for the root itself.
pub fn clean_in_root(path: &str) -> String {
    let rooted = clean(&format!("/{path}"));
    match rooted.trim_start_matches('/') {
        "" => ".".to_owned(),
        inside => inside.to_owned(),
    }
}

/// A relative path as git names it in a tree: its plain components joined by `/`
/// (`./infra/docker/` is `infra/docker`; the root is the empty string).
pub fn git_path(path: &Path) -> String {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_behaves_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("/a/b"), "/a/b");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("../a/../../b"), "../../b");
        assert_eq!(clean("/../a"), "/a");
    }

    #[test]
    fn a_relative_clean_drops_the_leading_slash_and_keeps_climbing() {
        assert_eq!(clean_relative("/a//b/./c/"), "a/b/c");
        assert_eq!(clean_relative("/../a"), "../a");
        assert_eq!(clean_relative("a/.."), ".");
        assert_eq!(clean_relative("/"), ".");
    }

    #[test]
    fn a_clean_in_a_root_never_leaves_it() {
        assert_eq!(clean_in_root("/app/src/"), "app/src");
        assert_eq!(clean_in_root("../../etc/passwd"), "etc/passwd");
        assert_eq!(clean_in_root("a/../../b"), "b");
        assert_eq!(clean_in_root("/"), ".");
        assert_eq!(clean_in_root("."), ".");
    }

    #[test]
    fn git_paths_are_plain_components_joined_by_slashes() {
        assert_eq!(git_path(Path::new("./infra/docker/")), "infra/docker");
        assert_eq!(git_path(Path::new("apps/admin-ui")), "apps/admin-ui");
        assert_eq!(git_path(Path::new(".")), "");
    }
}
