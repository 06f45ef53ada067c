//! What an SPA is built from (SPEC §4: the SHA recorded for an upload is the commit whose
//! files were uploaded): its own directory, the workspace packages its package.json
//! names with `workspace:` (and theirs, transitively), and the workspace's own files
//! (lockfile, root package.json, pnpm-workspace.yaml). An uncommitted path among them
//! makes the build differ from HEAD.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result};

/// Files of the workspace itself that every SPA build reads.
const WORKSPACE_FILES: [&str; 3] = ["pnpm-lock.yaml", "package.json", "pnpm-workspace.yaml"];

/// A tree of workspace files: the working tree ([`Worktree`]) for an SPA build, or a
/// commit's tree for `--changed` in graph mode (implemented by the change detection).
pub trait WorkspaceTree {
    /// The text of a file (relative, `/`-separated), `None` when there is none.
    fn read(&self, path: &str) -> Option<String>;
    /// Names of the subdirectories of `dir` (`""` is the root), sorted.
    fn subdirs(&self, dir: &str) -> Vec<String>;
}

/// The working tree at a repository root.
pub struct Worktree<'a>(pub &'a Path);

impl WorkspaceTree for Worktree<'_> {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }

    fn subdirs(&self, dir: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.0.join(dir)) else {
            return Vec::new();
        };
        let mut dirs: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        dirs
    }
}

/// The SPA's inputs, as paths relative to `root` (`/`-separated): `spa_dir`, the
/// directories of the workspace packages it depends on, and the workspace files.
pub fn spa_inputs(root: &Path, spa_dir: &Path) -> Result<Vec<String>> {
    let tree = Worktree(root);
    let packages = workspace_packages(&tree)?;
    let mut inputs: BTreeSet<String> = WORKSPACE_FILES.iter().map(|f| f.to_string()).collect();
    let own = crate::paths::git_path(spa_dir);
    inputs.insert(own.clone());
    let mut queue = vec![own];
    while let Some(dir) = queue.pop() {
        for name in workspace_dependencies(&tree, &dir)? {
            // A name no workspace package has: pnpm fails the install, so the build
            // cannot have read it.
            if let Some(dir) = packages.get(&name) {
                if inputs.insert(dir.clone()) {
                    queue.push(dir.clone());
                }
            }
        }
    }
    Ok(inputs.into_iter().collect())
}

/// The uncommitted paths that are inside `inputs` (a directory input covers everything
/// below it).
pub fn dirty_inputs(uncommitted: &[String], inputs: &[String]) -> Vec<String> {
    uncommitted
        .iter()
        .filter(|path| {
            inputs.iter().any(|input| {
                path.as_str() == input
                    || path
                        .strip_prefix(input.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
        .cloned()
        .collect()
}

/// Names of the `workspace:` dependencies (any kind) in `dir/package.json`.
pub fn workspace_dependencies(tree: &impl WorkspaceTree, dir: &str) -> Result<Vec<String>> {
    let path = join(dir, "package.json");
    let Some(text) = tree.read(&path) else {
        return Ok(Vec::new());
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))?;
    let mut names = Vec::new();
    for kind in [
        "dependencies",
        "devDependencies",
        "peerDependencies",
        "optionalDependencies",
    ] {
        if let Some(map) = json[kind].as_object() {
            names.extend(
                map.iter()
                    .filter(|(_, spec)| spec.as_str().is_some_and(|s| s.starts_with("workspace:")))
                    .map(|(name, _)| name.clone()),
            );
        }
    }
    Ok(names)
}

/// Package name → directory (relative to the root) of every package the
/// `pnpm-workspace.yaml` globs match.
pub fn workspace_packages(tree: &impl WorkspaceTree) -> Result<BTreeMap<String, String>> {
    let Some(text) = tree.read("pnpm-workspace.yaml") else {
        return Ok(BTreeMap::new());
    };
    let mut packages = BTreeMap::new();
    for pattern in workspace_globs(&text) {
        if pattern.starts_with('!') {
            continue;
        }
        for dir in expand(tree, &pattern) {
            let manifest = join(&dir, "package.json");
            let Some(text) = tree.read(&manifest) else {
                continue;
            };
            let json: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{manifest} is not JSON"))?;
            if let Some(name) = json["name"].as_str() {
                packages.insert(name.to_owned(), dir);
            }
        }
    }
    Ok(packages)
}

/// The entries of the `packages:` list of a pnpm-workspace.yaml (the only key it has
/// that matters here; a line-based read, as the file is a flat list of globs).
fn workspace_globs(yaml: &str) -> Vec<String> {
    let mut globs = Vec::new();
    let mut in_packages = false;
    for line in yaml.lines() {
        let content = line.split(" #").next().unwrap_or_default().trim_end();
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if !content.starts_with([' ', '\t', '-']) {
            in_packages = content.trim() == "packages:";
            continue;
        }
        if let Some(item) = content.trim().strip_prefix('-').filter(|_| in_packages) {
            let item = item.trim().trim_matches(['"', '\'']);
            if !item.is_empty() {
                globs.push(item.trim_end_matches('/').to_owned());
            }
        }
    }
    globs
}

/// The directories a workspace glob names: `*` within one path segment, `**` any depth
/// (never into `node_modules` or hidden directories).
fn expand(tree: &impl WorkspaceTree, pattern: &str) -> Vec<String> {
    let mut dirs = vec![String::new()];
    for segment in pattern.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut next = Vec::new();
        for dir in &dirs {
            if segment == "**" {
                next.push(dir.clone());
                next.extend(descendants(tree, dir));
            } else if segment.contains(['*', '?']) {
                next.extend(subdirs(tree, dir).into_iter().filter(|sub| {
                    let name = sub.rsplit('/').next().unwrap_or(sub);
                    super::rules::pattern_matches(segment, name)
                }));
            } else if tree.subdirs(dir).iter().any(|name| name == segment) {
                next.push(join(dir, segment));
            }
        }
        dirs = next;
    }
    dirs
}

/// The subdirectories of `dir` a workspace glob may enter, as paths from the root.
fn subdirs(tree: &impl WorkspaceTree, dir: &str) -> Vec<String> {
    tree.subdirs(dir)
        .into_iter()
        .filter(|name| name != "node_modules" && !name.starts_with('.'))
        .map(|name| join(dir, &name))
        .collect()
}

fn descendants(tree: &impl WorkspaceTree, dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = subdirs(tree, dir);
    while let Some(next) = stack.pop() {
        stack.extend(subdirs(tree, &next));
        found.push(next);
    }
    found
}

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn inputs_follow_workspace_dependencies_transitively() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "pnpm-workspace.yaml",
            "# the workspace\npackages:\n  - \"apps/*\"\n  - 'packages/*' # shared\n  - libs/**\n  - \"!**/test/**\"\nother:\n  - services/*\n",
        );
        write(
            root,
            "apps/admin-ui/package.json",
            r#"{"name":"@p/admin-ui","dependencies":{"@p/ui":"workspace:*","react":"^18"},"devDependencies":{"@p/tsconfig":"workspace:^"}}"#,
        );
        write(
            root,
            "packages/ui/package.json",
            r#"{"name":"@p/ui","dependencies":{"@p/tokens":"workspace:*"}}"#,
        );
        write(
            root,
            "libs/deep/tokens/package.json",
            r#"{"name":"@p/tokens"}"#,
        );
        write(
            root,
            "packages/tsconfig/package.json",
            r#"{"name":"@p/tsconfig"}"#,
        );
        write(
            root,
            "packages/events/package.json",
            r#"{"name":"@p/events"}"#,
        );
        // Not in the workspace globs (only under another key).
        write(root, "services/api/package.json", r#"{"name":"@p/ui-api"}"#);
        let inputs = spa_inputs(root, Path::new("apps/admin-ui")).unwrap();
        assert_eq!(
            inputs,
            [
                "apps/admin-ui",
                "libs/deep/tokens",
                "package.json",
                "packages/tsconfig",
                "packages/ui",
                "pnpm-lock.yaml",
                "pnpm-workspace.yaml",
            ]
        );
    }

    #[test]
    fn an_spa_without_workspace_dependencies_has_its_dir_and_the_workspace_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "apps/sim/package.json", r#"{"name":"sim"}"#);
        let inputs = spa_inputs(dir.path(), Path::new("apps/sim")).unwrap();
        assert_eq!(
            inputs,
            [
                "apps/sim",
                "package.json",
                "pnpm-lock.yaml",
                "pnpm-workspace.yaml"
            ]
        );
    }

    #[test]
    fn dirty_inputs_match_whole_path_segments() {
        let inputs: Vec<String> = ["apps/admin-ui", "packages/ui", "pnpm-lock.yaml"]
            .map(String::from)
            .to_vec();
        let uncommitted: Vec<String> = [
            "apps/admin-ui-legacy/x.js",
            "apps/admin-ui/src/app.js",
            "apps/simulator/src/app.js",
            "packages/ui",
            "packages/uikit/index.ts",
            "pnpm-lock.yaml",
            "services/api/pnpm-lock.yaml",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            dirty_inputs(&uncommitted, &inputs),
            ["apps/admin-ui/src/app.js", "packages/ui", "pnpm-lock.yaml"]
        );
    }
}
