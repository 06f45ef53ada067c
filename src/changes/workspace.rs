//! The pnpm workspace graph at a commit, read from the commit's tree (git2 blobs, never
//! the working tree): which workspace packages each directory depends on with
//! `workspace:`, transitively. The globs and `package.json` reading are the SPA
//! builder's ([`crate::spa::inputs`]), over a git tree instead of the disk.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use anyhow::{Context as _, Result};
use git2::{ObjectType, Oid, Repository, Tree};

use crate::spa::inputs::{self, WorkspaceTree};

/// The files of one commit.
///
/// Directory trees are kept once looked up: libgit2 caches no tree over 4 KiB and
/// re-reads, re-hashes and re-parses it on every lookup, and a workspace of a few hundred
/// packages reads `packages/<name>/package.json` through the same big `packages` tree
/// hundreds of times (most of the graph decision's time before this cache).
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    /// Directory path (no trailing `/`) → its tree, `None` when there is none.
    trees: RefCell<HashMap<String, Option<Tree<'r>>>>,
}

impl<'r> GitTree<'r> {
    pub fn at(repo: &'r Repository, commit: Oid) -> Result<Self> {
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .with_context(|| format!("cannot read the tree of commit {commit}"))?;
        Ok(Self {
            repo,
            tree,
            trees: RefCell::new(HashMap::new()),
        })
    }

    fn subtree(&self, dir: &str) -> Option<Tree<'r>> {
        let dir = dir.trim_matches('/');
        if dir.is_empty() {
            return Some(self.tree.clone());
        }
        if let Some(tree) = self.trees.borrow().get(dir) {
            return tree.clone();
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let tree = self.subtree(parent).and_then(|parent| {
            let entry = parent.get_name(name)?;
            self.repo.find_tree(entry.id()).ok()
        });
        self.trees.borrow_mut().insert(dir.to_owned(), tree.clone());
        tree
    }
}

impl GitTree<'_> {
    /// The id of the blob (or tree) at `path`, when there is one.
    pub fn id_of(&self, path: &str) -> Option<Oid> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        Some(self.subtree(dir)?.get_name(name)?.id())
    }
}

impl WorkspaceTree for GitTree<'_> {
    fn read(&self, path: &str) -> Option<String> {
        let blob = self.repo.find_blob(self.id_of(path)?).ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }

    fn subdirs(&self, dir: &str) -> Vec<String> {
        let Some(tree) = self.subtree(dir) else {
            return Vec::new();
        };
        // Git keeps tree entries sorted by name.
        tree.iter()
            .filter(|entry| entry.kind() == Some(ObjectType::Tree))
            .filter_map(|entry| entry.name().ok().map(str::to_owned))
            .collect()
    }
}

/// The workspace packages and their `workspace:` edges at one commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace {
    /// Package name → directory.
    packages: BTreeMap<String, String>,
    /// Directory → names of the workspace packages it depends on.
    edges: BTreeMap<String, Vec<String>>,
}

/// A workspace package reached from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub name: String,
    pub dir: String,
    /// The packages between the start and this one, nearest to this one first (empty
    /// for a direct dependency).
    pub via: Vec<String>,
}

impl Workspace {
    /// Reads the graph from `tree`: every workspace package's edges, and those of
    /// `dirs` (the services and SPAs, whether or not the workspace globs list them).
    pub fn read(tree: &impl WorkspaceTree, dirs: &[&str]) -> Result<Self> {
        let packages = inputs::workspace_packages(tree)?;
        let mut edges = BTreeMap::new();
        for dir in packages
            .values()
            .map(String::as_str)
            .chain(dirs.iter().copied())
        {
            if !edges.contains_key(dir) {
                edges.insert(dir.to_owned(), inputs::workspace_dependencies(tree, dir)?);
            }
        }
        Ok(Self { packages, edges })
    }

    /// The graph at `commit`.
    pub fn at(repo: &Repository, commit: Oid, dirs: &[&str]) -> Result<Self> {
        Self::read(&GitTree::at(repo, commit)?, dirs)
    }

    /// Every workspace package `dir` depends on, directly or not, each by its shortest
    /// chain (breadth first), nearest first.
    pub fn reached_from(&self, dir: &str) -> Vec<Reach> {
        let mut found = Vec::new();
        let mut seen: HashSet<&str> = HashSet::from([dir]);
        let mut queue: VecDeque<(&str, Vec<String>)> = VecDeque::from([(dir, Vec::new())]);
        while let Some((from, via)) = queue.pop_front() {
            for name in self.edges.get(from).into_iter().flatten() {
                // A name no workspace package has: pnpm would fail the install.
                let Some(to) = self.packages.get(name) else {
                    continue;
                };
                if !seen.insert(to.as_str()) {
                    continue;
                }
                found.push(Reach {
                    name: name.clone(),
                    dir: to.clone(),
                    via: via.clone(),
                });
                let mut next = vec![name.clone()];
                next.extend(via.iter().cloned());
                queue.push_back((to.as_str(), next));
            }
        }
        found
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::git::testing::TestRepo;

    const WORKSPACE: &str = "packages:\n  - services/*\n  - packages/*\n  - apps/*\n";

    pub(crate) fn package(name: &str, deps: &[&str]) -> String {
        let mut deps: Vec<String> = deps
            .iter()
            .map(|d| format!("\"{d}\":\"workspace:*\""))
            .collect();
        deps.push("\"zod\":\"^3\"".into());
        format!(
            r#"{{"name":"{name}","dependencies":{{{}}}}}"#,
            deps.join(",")
        )
    }

    #[test]
    fn the_graph_is_read_from_the_commit_not_the_working_tree() {
        let repo = TestRepo::new();
        let commit = repo.commit(&[
            ("pnpm-workspace.yaml", WORKSPACE),
            (
                "services/billing/package.json",
                &package("@p/billing", &["@p/common"]),
            ),
            (
                "packages/common/package.json",
                &package("@p/common", &["@p/events"]),
            ),
            ("packages/events/package.json", &package("@p/events", &[])),
            ("packages/unused/package.json", &package("@p/unused", &[])),
        ]);
        // Uncommitted: an edge the commit does not have.
        std::fs::write(
            repo.dir.path().join("services/billing/package.json"),
            package("@p/billing", &["@p/unused"]),
        )
        .unwrap();
        let graph = Workspace::at(&repo.repo, commit, &["services/billing"]).unwrap();
        assert_eq!(
            graph.reached_from("services/billing"),
            [
                Reach {
                    name: "@p/common".into(),
                    dir: "packages/common".into(),
                    via: vec![],
                },
                Reach {
                    name: "@p/events".into(),
                    dir: "packages/events".into(),
                    via: vec!["@p/common".into()],
                },
            ]
        );
    }

    #[test]
    fn cycles_and_unknown_names_end_the_walk() {
        let repo = TestRepo::new();
        let commit = repo.commit(&[
            ("pnpm-workspace.yaml", WORKSPACE),
            ("packages/a/package.json", &package("a", &["b", "ghost"])),
            ("packages/b/package.json", &package("b", &["a"])),
        ]);
        let graph = Workspace::at(&repo.repo, commit, &[]).unwrap();
        let names: Vec<String> = graph
            .reached_from("packages/a")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["b"]);
    }
}
