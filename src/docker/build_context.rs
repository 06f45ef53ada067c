//! The Docker build context: a tar of the *committed* tree of one commit, filtered by
//! that commit's `.dockerignore`, streamed to the daemon in bounded chunks.
//!
//! Building from the commit rather than the working tree is how SPEC §4 holds: an image
//! tagged `<sha>` contains exactly the tree of `<sha>`, whatever is uncommitted. Memory
//! stays flat: one file is read at a time and at most `CHANNEL_CHUNKS` chunks of
//! `CHUNK_SIZE` bytes wait for the daemon.

use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use tokio::sync::mpsc;

use crate::docker::committed_files::{
    committed_file_in_work_tree, included, IncludePattern, Included, STREAM_FROM_WORK_TREE,
};
use crate::docker::dockerignore::{DockerIgnore, ParentMatches};

const CHUNK_SIZE: usize = 256 * 1024;
const CHANNEL_CHUNKS: usize = 8;

/// What goes into one build context.
#[derive(Debug, Clone)]
pub struct ContextSpec {
    /// The repository's work tree root (used only to open the repository).
    pub repo_root: PathBuf,
    /// The commit whose tree is sent.
    pub commit: String,
    /// Context directory, relative to the repository root (`.` for the root).
    pub dir: PathBuf,
    /// The Dockerfile, relative to the context directory; always sent, even if ignored.
    pub dockerfile: PathBuf,
    /// For a tar (the classic builder): the paths the Dockerfile reads (`COPY`/`ADD`
    /// sources, wildcards allowed); `None` for the whole context.
    pub include: Option<Vec<String>>,
}

/// Counts of what a context held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextStats {
    pub files: u64,
    pub bytes: u64,
    pub ignored: u64,
}

/// Starts writing the context on a blocking thread. The stream yields tar chunks; the
/// handle yields the stats, or the error that ended the stream early.
pub fn stream(
    spec: ContextSpec,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    tokio::task::JoinHandle<Result<ContextStats>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let handle = tokio::task::spawn_blocking(move || {
        let error_tx = tx.clone();
        let result = write_tar(&spec, ChannelWriter::new(tx));
        if let Err(err) = &result {
            // Make the daemon see a failed upload rather than a silently short context.
            let _ = error_tx.blocking_send(Err(io::Error::other(format!("{err:#}"))));
        }
        result
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (stream, handle)
}

/// Writes the whole context as a tar into `out` (used by `stream`, and by tests).
pub fn write_tar(spec: &ContextSpec, out: impl Write) -> Result<ContextStats> {
    let repo = open_repo(spec)?;
    let commit = find_commit(&repo, spec)?;
    let tree = context_tree(&repo, &commit, spec)?;
    let dockerfile = crate::paths::git_path(&spec.dockerfile);
    let ignore = dockerignore_of(&repo, &tree, spec)?.keeping_build_files(&dockerfile);
    // Only what COPY/ADD read, and the two files the classic builder itself reads.
    let include: Option<Vec<IncludePattern>> = spec.include.as_ref().map(|paths| {
        paths
            .iter()
            .map(String::as_str)
            .chain([dockerfile.as_str(), ".dockerignore"])
            .map(IncludePattern::new)
            .collect()
    });
    let mtime = u64::try_from(commit.time().seconds()).unwrap_or(0);

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut stats = ContextStats::default();
    let mut failure: Option<anyhow::Error> = None;
    let work_tree = spec.repo_root.join(&spec.dir);
    // The directories above the current entry, outermost first. As in the docker CLI's
    // walkers, an excluded directory is still walked when an exception may re-include
    // something inside it, but it enters the context only once something inside it does:
    // never as an empty directory the CLI's image would not have.
    let mut ancestors: Vec<WalkedDir> = Vec::new();

    // One pass: each blob is read and written before the next is looked at.
    let walked = tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Skip;
        };
        while ancestors.last().is_some_and(|dir| dir.slashed != parent) {
            ancestors.pop();
        }
        let path = format!("{parent}{name}");
        let (excluded, matches) = ignore.excludes(&path, ancestors.last().map(|dir| &dir.matches));
        let kind = match entry.kind() {
            Some(kind @ (ObjectType::Tree | ObjectType::Blob)) => kind,
            // Submodules (commits) are not part of a docker context.
            _ => return TreeWalkResult::Skip,
        };
        let inclusion = match &include {
            Some(patterns) if !ancestors.last().is_some_and(|dir| dir.all_included) => {
                included(patterns, &path)
            }
            _ => Included::Yes,
        };
        if inclusion == Included::No
            || (inclusion == Included::OnTheWay && kind != ObjectType::Tree)
        {
            return if kind == ObjectType::Tree {
                TreeWalkResult::Skip
            } else {
                TreeWalkResult::Ok
            };
        }
        let all_included = inclusion == Included::Yes;
        if excluded || !all_included {
            if kind == ObjectType::Tree && (!excluded || ignore.may_reinclude_under(&path)) {
                ancestors.push(WalkedDir {
                    slashed: format!("{path}/"),
                    matches,
                    oid: entry.id(),
                    sent: false,
                    all_included,
                });
                return TreeWalkResult::Ok;
            }
            stats.ignored += 1;
            return if kind == ObjectType::Tree {
                TreeWalkResult::Skip
            } else {
                TreeWalkResult::Ok
            };
        }
        let mut send = |path: &str, oid: Oid, mode: i32, kind: ObjectType| {
            let entry = Entry {
                path,
                oid,
                mode,
                kind,
                mtime,
            };
            append(&repo, &work_tree, &mut tar, &entry, &mut stats)
        };
        // Excluded directories on the way, held back until now.
        let mut sent = Ok(());
        for dir in ancestors.iter_mut().filter(|dir| !dir.sent) {
            sent = sent.and_then(|()| {
                send(
                    dir.slashed.trim_end_matches('/'),
                    dir.oid,
                    0o040000,
                    ObjectType::Tree,
                )
            });
            dir.sent = true;
        }
        let sent = sent.and_then(|()| send(&path, entry.id(), entry.filemode(), kind));
        if let Err(err) = sent {
            failure = Some(err);
            return TreeWalkResult::Abort;
        }
        if kind == ObjectType::Tree {
            ancestors.push(WalkedDir {
                slashed: format!("{path}/"),
                matches,
                oid: entry.id(),
                sent: true,
                all_included: true,
            });
        }
        TreeWalkResult::Ok
    });
    if let Some(err) = failure {
        return Err(err);
    }
    walked.context("cannot walk the commit's tree")?;
    let mut out = tar
        .into_inner()
        .context("cannot finish the build context")?;
    out.flush().context("cannot send the build context")?;
    Ok(stats)
}

/// Checks that the commit has the context directory and the Dockerfile, and returns
/// the commit's `.dockerignore` rules for the context (as the docker CLI reads them for a
/// BuildKit build: the Dockerfile is served apart, so no exception is added for it).
pub fn check(spec: &ContextSpec) -> Result<DockerIgnore> {
    let repo = open_repo(spec)?;
    let commit = find_commit(&repo, spec)?;
    let tree = context_tree(&repo, &commit, spec)?;
    dockerignore_of(&repo, &tree, spec)
}

fn open_repo(spec: &ContextSpec) -> Result<Repository> {
    Repository::open(&spec.repo_root)
        .with_context(|| format!("cannot open the repository at {}", spec.repo_root.display()))
}

fn find_commit<'r>(repo: &'r Repository, spec: &ContextSpec) -> Result<git2::Commit<'r>> {
    repo.revparse_single(&spec.commit)
        .and_then(|object| object.peel_to_commit())
        .with_context(|| format!("commit {} not found", spec.commit))
}

/// The context directory's tree in the commit; fails when it or the Dockerfile is missing.
fn context_tree<'r>(
    repo: &'r Repository,
    commit: &git2::Commit<'r>,
    spec: &ContextSpec,
) -> Result<git2::Tree<'r>> {
    let root_tree = commit.tree().context("cannot read the commit's tree")?;
    let tree = if spec.dir == Path::new(".") || spec.dir.as_os_str().is_empty() {
        root_tree
    } else {
        root_tree
            .get_path(&spec.dir)
            .and_then(|entry| entry.to_object(repo))
            .and_then(|object| object.peel_to_tree())
            .with_context(|| {
                format!(
                    "the build context {} is not a directory in commit {}",
                    spec.dir.display(),
                    spec.commit
                )
            })?
    };
    if tree.get_path(&spec.dockerfile).is_err() {
        return Err(anyhow!(
            "the Dockerfile {} is not in commit {} (under the context {})",
            spec.dockerfile.display(),
            spec.commit,
            spec.dir.display()
        ));
    }
    Ok(tree)
}

/// The Dockerfile's text in the commit.
pub fn dockerfile_text(spec: &ContextSpec) -> Result<String> {
    let repo = open_repo(spec)?;
    let commit = find_commit(&repo, spec)?;
    let tree = context_tree(&repo, &commit, spec)?;
    let entry = tree
        .get_path(&spec.dockerfile)
        .with_context(|| format!("cannot find {}", spec.dockerfile.display()))?;
    let blob = repo
        .find_blob(entry.id())
        .with_context(|| format!("cannot read {}", spec.dockerfile.display()))?;
    Ok(String::from_utf8_lossy(blob.content()).into_owned())
}

fn dockerignore_of(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    spec: &ContextSpec,
) -> Result<DockerIgnore> {
    let Ok(entry) = tree.get_path(Path::new(".dockerignore")) else {
        return Ok(DockerIgnore::default());
    };
    let path = match spec.dir.as_os_str().to_str() {
        Some("" | ".") => PathBuf::from(".dockerignore"),
        _ => spec.dir.join(".dockerignore"),
    };
    let blob = repo
        .find_blob(entry.id())
        .with_context(|| format!("cannot read {}", path.display()))?;
    DockerIgnore::parse(&String::from_utf8_lossy(blob.content())).map_err(|malformed| {
        anyhow!(
            "{} (commit {}) {malformed}. Fix or escape the pattern and commit",
            path.display(),
            short(&spec.commit)
        )
    })
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// A directory the walk is inside of.
struct WalkedDir {
    /// Its path with a trailing `/`, as git2 names the parent of its entries.
    slashed: String,
    /// What its `.dockerignore` patterns matched, handed to its entries.
    matches: ParentMatches,
    oid: Oid,
    /// Whether it is in the context yet (an excluded one is sent before its first entry).
    sent: bool,
    /// Whether an include pattern matched it whole (so everything beneath is included).
    all_included: bool,
}

#[derive(Clone, Copy)]
struct Entry<'a> {
    path: &'a str,
    oid: Oid,
    mode: i32,
    kind: ObjectType,
    mtime: u64,
}

fn append<W: Write>(
    repo: &Repository,
    work_tree: &Path,
    tar: &mut tar::Builder<W>,
    entry: &Entry<'_>,
    stats: &mut ContextStats,
) -> Result<()> {
    let Entry {
        path,
        oid,
        mode,
        kind,
        mtime,
    } = *entry;
    let mut header = tar::Header::new_gnu();
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    if kind == ObjectType::Tree {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        return tar
            .append_data(&mut header, format!("{path}/"), io::empty())
            .with_context(|| format!("cannot send {path} in the build context"));
    }
    if mode != 0o120000 {
        let (size, _) = repo
            .odb()
            .and_then(|odb| odb.read_header(oid))
            .with_context(|| format!("cannot read {path} from git"))?;
        let size = size as u64;
        if size >= STREAM_FROM_WORK_TREE {
            if let Some(file) = committed_file_in_work_tree(&work_tree.join(path), oid, size) {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
                header.set_size(size);
                tar.append_data(&mut header, path, io::BufReader::new(file).take(size))
                    .with_context(|| format!("cannot send {path} in the build context"))?;
                stats.files += 1;
                stats.bytes += size;
                return Ok(());
            }
        }
    }
    let blob = repo
        .find_blob(oid)
        .with_context(|| format!("cannot read {path} from git"))?;
    if mode == 0o120000 {
        let target = String::from_utf8_lossy(blob.content()).into_owned();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        return tar
            .append_link(&mut header, path, target)
            .with_context(|| format!("cannot send {path} in the build context"));
    }
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(if mode == 0o100755 { 0o755 } else { 0o644 });
    header.set_size(blob.size() as u64);
    tar.append_data(&mut header, path, blob.content())
        .with_context(|| format!("cannot send {path} in the build context"))?;
    stats.files += 1;
    stats.bytes += blob.size() as u64;
    Ok(())
}

/// An `io::Write` that hands fixed-size chunks to a bounded channel, blocking when the
/// daemon reads slower than git produces.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: BytesMut::with_capacity(CHUNK_SIZE),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests;
