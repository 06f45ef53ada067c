//! `--changed` in graph mode (`[changes] mode = "graph"`): what changed between the
//! live commit and HEAD, charged to exactly the services and SPAs that depend on it
//! through the pnpm workspace graph and the lockfile's importers, with the chain that
//! says why. Pure over two git trees: no AWS, no working tree.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use git2::{Oid, Repository};

use crate::changes::diff;
use crate::changes::lockfile::{self, Lockfile};
use crate::changes::workspace::{GitTree, Reach, Workspace};
use crate::glob::{Dialect, Glob};
use crate::model::plan::Cause;
use crate::spa::inputs::WorkspaceTree as _;

/// The lockfile, at the workspace root; compared by importer, never fanned out.
pub const LOCKFILE: &str = "pnpm-lock.yaml";

/// What is decided: a service or an SPA.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Its name, the last link of a chain (`billing`).
    pub name: &'a str,
    /// Its directory (`services/billing`).
    pub dir: &'a str,
    /// Files whose change deploys it whatever the graph says (the Dockerfile, root
    /// workspace files).
    pub fan_out: &'a [String],
    /// Extra input globs (`[changes] inputs`).
    pub inputs: &'a [&'a str],
}

/// Compares HEAD with each distinct live commit once, for every subject on it.
pub struct GraphCache<'r> {
    repo: &'r Repository,
    head: Oid,
    /// Every subject's directory: their edges are read whether or not the workspace
    /// globs list them.
    dirs: Vec<String>,
    ignore: Vec<Glob>,
    head_side: Option<Side>,
    by_base: HashMap<Oid, Base>,
    /// Lockfiles parsed before, by blob id; `None`: parse every time.
    lockfiles: Option<lockfile::Cache>,
}

/// One commit's graph and lockfile; an `Err` is why it cannot be used.
struct Side {
    workspace: Result<Workspace, String>,
    /// Parsed only when some base's lockfile differs from HEAD's (parsing a large
    /// lockfile is most of the decision's time), so `None` means "not needed".
    lockfile: Option<Result<Lockfile, String>>,
}

struct Base {
    /// Changed paths, less the ignored ones.
    changed: Vec<String>,
    /// Its lockfile is read when, and only when, it changed since (then HEAD's is too).
    before: Side,
}

impl<'r> GraphCache<'r> {
    pub fn new(repo: &'r Repository, head: Oid, dirs: Vec<String>, ignore: &[String]) -> Self {
        Self {
            repo,
            head,
            dirs,
            ignore: ignore
                .iter()
                .map(|g| Glob::new(g, Dialect::Simple))
                .collect(),
            head_side: None,
            by_base: HashMap::new(),
            lockfiles: None,
        }
    }

    /// Keeps parsed lockfiles in `cache` and reads them from it.
    pub fn with_lockfile_cache(mut self, cache: lockfile::Cache) -> Self {
        self.lockfiles = Some(cache);
        self
    }

    /// Why `subject` must deploy since `base`, or `None` when nothing it depends on
    /// changed.
    pub fn cause(&mut self, base: Oid, subject: &Subject<'_>) -> Result<Option<Cause>> {
        if self.head_side.is_none() {
            self.head_side = Some(Side {
                workspace: self.workspace(self.head)?,
                lockfile: None,
            });
        }
        if !self.by_base.contains_key(&base) {
            let changed: Vec<String> = diff::diff_paths(self.repo, base, self.head, &[])?
                .into_iter()
                .filter(|path| !self.ignore.iter().any(|glob| glob.matches(path)))
                .collect();
            let lockfile_changed = changed.iter().any(|p| p == LOCKFILE);
            let head_lockfile = lockfile_changed && self.head_lockfile_unread();
            let wanted = [(base, lockfile_changed), (self.head, head_lockfile)];
            // Each lockfile wanted: its blob id and text (git2's repository stays on this
            // thread).
            let sources = wanted
                .into_iter()
                .filter(|(_, wanted)| *wanted)
                .map(|(commit, _)| {
                    let tree = GitTree::at(self.repo, commit)?;
                    Ok((commit, tree.id_of(LOCKFILE), tree.read(LOCKFILE)))
                })
                .collect::<Result<Vec<_>>>()?;
            // The lockfiles load from the cache (by blob id) or parse on threads of their
            // own while this one reads the graph: on a large lockfile each parse is as long
            // as the rest of the decision. A lockfile parsed now comes back with its blob
            // id, to be kept.
            let cache = self.lockfiles.as_ref();
            let (workspace, lockfiles) = std::thread::scope(|scope| {
                let parses: Vec<_> = sources
                    .into_iter()
                    .map(|(commit, blob, text)| {
                        scope.spawn(move || {
                            match blob.zip(cache).and_then(|(blob, cache)| cache.load(blob)) {
                                Some(cached) => (None, Ok(cached)),
                                None => (blob, parse_lockfile(text, commit)),
                            }
                        })
                    })
                    .collect();
                let workspace = self.workspace(base);
                let lockfiles: Vec<_> = parses
                    .into_iter()
                    .map(|parse| {
                        parse
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect();
                (workspace, lockfiles)
            });
            if let Some(cache) = cache {
                for (blob, lockfile) in &lockfiles {
                    if let (Some(blob), Ok(lockfile)) = (blob, lockfile) {
                        cache.store(*blob, lockfile);
                    }
                }
            }
            let mut lockfiles: Vec<_> = lockfiles.into_iter().map(|(_, parsed)| parsed).collect();
            let before = Side {
                workspace: workspace?,
                lockfile: lockfile_changed.then(|| lockfiles.remove(0)),
            };
            if head_lockfile {
                if let Some(head) = &mut self.head_side {
                    head.lockfile = Some(lockfiles.remove(0));
                }
            }
            self.by_base.insert(base, Base { changed, before });
        }
        let after = self.head_side.as_ref().expect("read above");
        Ok(cause_of(&self.by_base[&base], after, subject))
    }

    fn head_lockfile_unread(&self) -> bool {
        self.head_side
            .as_ref()
            .is_some_and(|head| head.lockfile.is_none())
    }

    /// The graph at `commit`; the inner `Err` says why it cannot be used.
    fn workspace(&self, commit: Oid) -> Result<Result<Workspace, String>> {
        let tree = GitTree::at(self.repo, commit)?;
        let dirs: Vec<&str> = self.dirs.iter().map(String::as_str).collect();
        Ok(Workspace::read(&tree, &dirs).map_err(|err| {
            format!(
                "cannot read the workspace graph at {} ({err:#})",
                short(commit)
            )
        }))
    }
}

fn short(commit: Oid) -> String {
    commit.to_string()[..7].to_owned()
}

/// The lockfile at a commit, from its text; `Err` says why it cannot be compared by
/// importer.
fn parse_lockfile(text: Option<String>, commit: Oid) -> Result<Lockfile, String> {
    match text {
        Some(text) => Lockfile::parse(&text).map_err(|unusable| unusable.0),
        None => Err(format!("{} has no {LOCKFILE}", short(commit))),
    }
}

fn under(dir: &str, path: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The most specific reason first: a fan-out file, a graph or lockfile that cannot be
/// read, an extra input, the subject's own files, a workspace package it reaches, and
/// last its lockfile closure.
fn cause_of(base: &Base, after: &Side, subject: &Subject<'_>) -> Option<Cause> {
    let changed = &base.changed;
    if let Some(path) = changed.iter().find(|p| subject.fan_out.contains(p)) {
        return Some(Cause::BuildInput { path: path.clone() });
    }
    let (before_graph, after_graph) = match (&base.before.workspace, &after.workspace) {
        (Ok(before), Ok(after)) => (before, after),
        (Err(reason), _) | (_, Err(reason)) => {
            return Some(Cause::GraphFallback {
                reason: reason.clone(),
            })
        }
    };
    // Both lockfiles are read exactly when the lockfile changed since `base`.
    let lockfiles = match (&base.before.lockfile, &after.lockfile) {
        (Some(Ok(before)), Some(Ok(after))) => match before.global_change(after) {
            Some(key) => {
                return Some(Cause::LockfileFallback {
                    reason: format!("{LOCKFILE}: {key} changed"),
                })
            }
            None => Some((before, after)),
        },
        (Some(Err(reason)), _) | (Some(_), Some(Err(reason))) => {
            return Some(Cause::LockfileFallback {
                reason: reason.clone(),
            })
        }
        (None, _) | (Some(_), None) => None,
    };
    for glob_text in subject.inputs {
        let glob = Glob::new(glob_text, Dialect::Simple);
        if let Some(path) = changed.iter().find(|p| glob.matches(p)) {
            return Some(Cause::ExtraInput {
                path: path.clone(),
                glob: (*glob_text).to_owned(),
            });
        }
    }
    let own: Vec<&String> = changed.iter().filter(|p| under(subject.dir, p)).collect();
    if let Some(first) = own.first() {
        return Some(Cause::Own {
            path: (*first).clone(),
            more: own.len() - 1,
        });
    }
    // The graph at both ends: an edge added at HEAD and one removed since both count.
    let mut reached: Vec<Reach> = after_graph.reached_from(subject.dir);
    let seen: BTreeSet<String> = reached.iter().map(|r| r.dir.clone()).collect();
    reached.extend(
        before_graph
            .reached_from(subject.dir)
            .into_iter()
            .filter(|r| !seen.contains(&r.dir)),
    );
    let chain = |reach: &Reach| {
        let mut chain = vec![reach.name.clone()];
        chain.extend(reach.via.iter().cloned());
        chain.push(subject.name.to_owned());
        chain
    };
    for reach in &reached {
        if let Some(path) = changed.iter().find(|p| under(&reach.dir, p)) {
            return Some(Cause::Package {
                path: path.clone(),
                chain: chain(reach),
            });
        }
    }
    let (before, after) = lockfiles?;
    let importers = std::iter::once((subject.dir, None)).chain(
        reached
            .iter()
            .map(|r| (r.dir.as_str(), Some(r.name.clone()))),
    );
    for (dir, through) in importers {
        let bump = lockfile::direct_change(before, after, dir)
            .or_else(|| lockfile::closure_change(&before.closure(dir), &after.closure(dir)));
        if let Some(bump) = bump {
            return Some(Cause::Lockfile {
                package: bump.name,
                from: bump.from,
                to: bump.to,
                through,
            });
        }
        if before.importer_changed(after, dir) {
            return Some(Cause::Importer {
                importer: dir.to_owned(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests;
