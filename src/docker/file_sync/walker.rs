//! The walk of one DiffCopy: a stat per entry of the commit's tree in `filepath.Walk`
//! order, filtered by the include patterns and the `.dockerignore`, with a directory
//! announced only before the first entry inside it that is.

use anyhow::{Context as _, Result};
use bollard::fsutil::types::Stat;
use git2::{ObjectType, Oid, Repository, Tree};

use super::FileRef;
use crate::docker::committed_files::{included, IncludePattern, Included};
use crate::docker::dockerignore::{DockerIgnore, ParentMatches};

/// Go's `os.ModeDir` and `os.ModeSymlink`: fsutil's `Stat.mode` is a Go `FileMode`.
pub(super) const GO_MODE_DIR: u32 = 1 << 31;
pub(super) const GO_MODE_SYMLINK: u32 = 1 << 27;
/// 1980-01-01: the mtime of directories, and the start of files' derived mtimes.
pub(super) const EPOCH_1980: i64 = 315_532_800;

/// A directory entered but not announced yet: it is announced before the first entry
/// inside it that is, so that no directory arrives empty where the CLI's would not.
struct PendingDir {
    path: String,
    sent: bool,
}

pub(super) struct Walker<'a> {
    repo: &'a Repository,
    includes: Option<&'a [IncludePattern]>,
    excludes: &'a DockerIgnore,
    pending: Vec<PendingDir>,
    emit: &'a mut dyn FnMut(Stat, Option<FileRef>) -> Result<()>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        includes: Option<&'a [IncludePattern]>,
        excludes: &'a DockerIgnore,
        emit: &'a mut dyn FnMut(Stat, Option<FileRef>) -> Result<()>,
    ) -> Self {
        Self {
            repo,
            includes,
            excludes,
            pending: Vec::new(),
            emit,
        }
    }

    /// Walks `tree` (at `prefix`, `""` or ending in `/`). `all_included`: an include
    /// pattern matched a directory above, so everything beneath is included.
    pub(super) fn walk(
        &mut self,
        tree: &Tree<'_>,
        prefix: &str,
        all_included: bool,
        parent_matches: Option<&ParentMatches>,
    ) -> Result<()> {
        // filepath.Walk's order: names sorted bytewise (git sorts a directory as if its
        // name ended in `/`, so `a.txt` would come before `a/`).
        let mut entries: Vec<git2::TreeEntry<'_>> = tree.iter().collect();
        entries.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
        for entry in entries {
            let Ok(name) = entry.name() else { continue };
            let path = format!("{prefix}{name}");
            let is_dir = match entry.kind() {
                Some(ObjectType::Tree) => true,
                Some(ObjectType::Blob) => false,
                // Submodules (commits) are not part of a docker context.
                _ => continue,
            };
            let inclusion = match (all_included, self.includes) {
                (true, _) | (_, None) => Included::Yes,
                (false, Some(patterns)) => included(patterns, &path),
            };
            if inclusion == Included::No || (inclusion == Included::OnTheWay && !is_dir) {
                continue;
            }
            let (excluded, matches) = self.excludes.excludes(&path, parent_matches);
            if is_dir {
                if excluded && !self.excludes.may_reinclude_under(&path) {
                    continue;
                }
                let subtree = entry
                    .to_object(self.repo)
                    .and_then(|object| object.peel_to_tree())
                    .with_context(|| format!("cannot read {path} from git"))?;
                self.pending.push(PendingDir {
                    path: path.clone(),
                    sent: false,
                });
                if !excluded && inclusion == Included::Yes {
                    self.send_pending()?;
                }
                self.walk(
                    &subtree,
                    &format!("{path}/"),
                    inclusion == Included::Yes,
                    Some(&matches),
                )?;
                self.pending.pop();
                continue;
            }
            if excluded {
                continue;
            }
            self.send_pending()?;
            let mode = entry.filemode();
            if mode == 0o120000 {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .with_context(|| format!("cannot read {path} from git"))?;
                let stat = Stat {
                    path,
                    mode: GO_MODE_SYMLINK | 0o777,
                    mod_time: mtime_of(entry.id()),
                    linkname: String::from_utf8_lossy(blob.content()).into_owned(),
                    ..Stat::default()
                };
                (self.emit)(stat, None)?;
            } else {
                let (size, _) = self
                    .repo
                    .odb()
                    .and_then(|odb| odb.read_header(entry.id()))
                    .with_context(|| format!("cannot read {path} from git"))?;
                let stat = Stat {
                    path: path.clone(),
                    mode: if mode == 0o100755 { 0o755 } else { 0o644 },
                    size: size as i64,
                    mod_time: mtime_of(entry.id()),
                    ..Stat::default()
                };
                let file = FileRef {
                    path,
                    oid: entry.id(),
                    size: size as u64,
                };
                (self.emit)(stat, Some(file))?;
            }
        }
        Ok(())
    }

    fn send_pending(&mut self) -> Result<()> {
        for index in 0..self.pending.len() {
            if self.pending[index].sent {
                continue;
            }
            self.pending[index].sent = true;
            let stat = Stat {
                path: self.pending[index].path.clone(),
                mode: GO_MODE_DIR | 0o755,
                mod_time: EPOCH_1980 * 1_000_000_000,
                ..Stat::default()
            };
            (self.emit)(stat, None)?;
        }
        Ok(())
    }
}

/// A file's mtime (nanoseconds since the epoch) derived from its blob id: 1980 to
/// 1997, so never in the future, and different for any other content, which is what
/// makes the daemon's stat comparison notice an edit that keeps the size.
pub fn mtime_of(oid: Oid) -> i64 {
    let bytes = oid.as_bytes();
    let seconds = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) >> 3;
    let nanos = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) % 1_000_000_000;
    (EPOCH_1980 + i64::from(seconds)) * 1_000_000_000 + i64::from(nanos)
}
