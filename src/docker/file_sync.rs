//! The build context *served* to BuildKit: `moby.filesync.v1.FileSync/DiffCopy` over the
//! build's session, answering from the committed tree of one commit.
//!
//! This is the docker CLI's `remote=client-session` build: the Dockerfile frontend asks
//! for the paths its `COPY`/`ADD` sources read (include patterns and follow paths, sent
//! as gRPC metadata), and the daemon's file-sync receiver requests only the files whose
//! stat differs from its cached copy (fsutil's packet protocol, `send.go`): we send one
//! `PACKET_STAT` per entry in `filepath.Walk` order and an empty one at the end, answer
//! each `PACKET_REQ` with `PACKET_DATA` chunks and an empty `PACKET_DATA`, and answer
//! `PACKET_FIN` with `PACKET_FIN`.
//!
//! SPEC §4 holds as with the tar: files come from git (a dirty work-tree file is never
//! served), filtered by the commit's `.dockerignore`. A file's stat carries an mtime
//! derived from its blob id, so any content change changes the stat the daemon compares
//! and an edit of the same size is never served stale. Memory stays flat: one file is
//! read at a time and at most `CHANNEL_PACKETS` packets wait for the daemon.

use std::collections::{BTreeSet, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _, Result};
use bollard::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard::moby::filesync::v1::file_sync_server::FileSync;
use futures_util::Stream;
use git2::{ObjectType, Oid, Repository, Tree};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::docker::build_context::committed_file_in_work_tree;
use crate::docker::dockerignore::{DockerIgnore, ParentMatches};
use crate::glob::{Dialect, Glob};

/// Bytes of file data per `PACKET_DATA` (fsutil's sender uses 32 KiB).
const DATA_CHUNK: usize = 64 * 1024;
/// Packets waiting for the daemon at most.
const CHANNEL_PACKETS: usize = 16;
/// Files at least this big are streamed from the work tree when it holds exactly the
/// committed content, rather than loaded whole from git.
const STREAM_FROM_WORK_TREE: u64 = 1024 * 1024;

/// Go's `os.ModeDir` and `os.ModeSymlink`: fsutil's `Stat.mode` is a Go `FileMode`.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
/// 1980-01-01: the mtime of directories, and the start of files' derived mtimes.
const EPOCH_1980: i64 = 315_532_800;

/// One directory of a commit served under a name (`context`, `dockerfile`).
#[derive(Debug, Clone)]
pub struct SyncedDir {
    pub repo_root: PathBuf,
    /// The full commit id.
    pub commit: String,
    /// Relative to the repository root (empty for the root).
    pub dir: PathBuf,
    /// Our own `.dockerignore` rules; as in the docker CLI they win over the patterns the
    /// frontend sends, unless it sets `override-excludes`.
    pub excludes: Option<DockerIgnore>,
}

/// What the daemon pulled through one session.
#[derive(Debug, Default)]
pub struct Transferred {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of the files the walks announced: what the daemon's copy of this context
    /// weighs, whether or not it already held them.
    pub listed: AtomicU64,
}

/// The `FileSync` service of one build's session.
pub struct FileSyncService {
    dirs: Arc<HashMap<String, SyncedDir>>,
    transferred: Arc<Transferred>,
}

impl FileSyncService {
    pub fn new(dirs: HashMap<String, SyncedDir>, transferred: Arc<Transferred>) -> Self {
        Self {
            dirs: Arc::new(dirs),
            transferred,
        }
    }
}

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let metadata = request.metadata();
        let values = |key: &str| -> Vec<String> {
            metadata
                .get_all(key)
                .iter()
                .filter_map(|value| value.to_str().ok().map(str::to_owned))
                .collect()
        };
        let name = values("dir-name").into_iter().next().unwrap_or_default();
        let Some(dir) = self.dirs.get(&name).cloned() else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {name:?}"
            )));
        };
        let override_excludes =
            values("override-excludes").first().map(String::as_str) == Some("true");
        let excludes = match (&dir.excludes, override_excludes) {
            (Some(ours), false) => ours.clone(),
            _ => DockerIgnore::parse(&values("exclude-patterns").join("\n")).map_err(
                |malformed| {
                    Status::invalid_argument(format!("the exclude patterns asked for: {malformed}"))
                },
            )?,
        };
        let request_filter = RequestFilter {
            excludes,
            includes: values("include-patterns"),
            follow_paths: values("followpaths"),
        };
        tracing::debug!(
            dir = %name,
            includes = ?request_filter.includes,
            follow = ?request_filter.follow_paths,
            "file sync request"
        );
        let incoming = request.into_inner();
        let (tx, rx) = mpsc::channel::<Result<Packet, Status>>(CHANNEL_PACKETS);
        tokio::spawn(serve(
            dir,
            request_filter,
            incoming,
            tx,
            self.transferred.clone(),
        ));
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "deploy serves the context with DiffCopy",
        ))
    }
}

/// What the daemon asked for.
struct RequestFilter {
    excludes: DockerIgnore,
    includes: Vec<String>,
    follow_paths: Vec<String>,
}

/// A file the walk announced, by its id (the index of its stat).
#[derive(Clone)]
struct FileRef {
    path: String,
    oid: Oid,
    size: u64,
}

/// Serves one DiffCopy: the walk on one blocking thread, the requested files on
/// another, the daemon's packets read here.
async fn serve(
    dir: SyncedDir,
    filter: RequestFilter,
    mut incoming: Streaming<Packet>,
    tx: mpsc::Sender<Result<Packet, Status>>,
    transferred: Arc<Transferred>,
) {
    let files: Arc<Mutex<Vec<Option<FileRef>>>> = Arc::default();
    let walker = {
        let (dir, files, tx) = (dir.clone(), files.clone(), tx.clone());
        let transferred_by_walk = transferred.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(err) = walk(&dir, &filter, &files, &tx, &transferred_by_walk) {
                tracing::debug!("file sync walk stopped: {err:#}");
                let _ = tx.blocking_send(Ok(error_packet(&format!("{err:#}"))));
            }
        })
    };
    let (requests, mut requested) = mpsc::unbounded_channel::<u32>();
    let sender = {
        let (files, tx) = (files.clone(), tx.clone());
        tokio::task::spawn_blocking(move || {
            let repo = match open(&dir) {
                Ok((repo, _)) => repo,
                Err(err) => {
                    let _ = tx.blocking_send(Ok(error_packet(&format!("{err:#}"))));
                    return;
                }
            };
            let work_tree = dir.repo_root.join(&dir.dir);
            while let Some(id) = requested.blocking_recv() {
                let file = files
                    .lock()
                    .ok()
                    .and_then(|f| f.get(id as usize).cloned().flatten());
                let sent = match file {
                    Some(file) => send_file(&repo, &work_tree, id, &file, &tx, &transferred),
                    None => Err(anyhow!("invalid file id {id}")),
                };
                if let Err(err) = sent {
                    tracing::debug!("file sync send stopped: {err:#}");
                    let _ = tx.blocking_send(Ok(error_packet(&format!("{err:#}"))));
                    return;
                }
            }
        })
    };
    loop {
        let packet = match incoming.message().await {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!("file sync stream from the daemon ended: {status}");
                break;
            }
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketReq) => {
                let Ok(()) = requests.send(packet.id) else {
                    break;
                };
            }
            Ok(PacketType::PacketFin) => {
                // Every file asked for is sent before the FIN is answered.
                drop(requests);
                let _ = sender.await;
                let _ = walker.await;
                let _ = tx
                    .send(Ok(Packet {
                        r#type: PacketType::PacketFin as i32,
                        ..Packet::default()
                    }))
                    .await;
                return;
            }
            Ok(PacketType::PacketErr) => {
                tracing::debug!(
                    "the daemon's file sync failed: {}",
                    String::from_utf8_lossy(&packet.data)
                );
                break;
            }
            _ => {}
        }
    }
    walker.abort();
}

fn error_packet(message: &str) -> Packet {
    Packet {
        r#type: PacketType::PacketErr as i32,
        data: message.as_bytes().to_vec(),
        ..Packet::default()
    }
}

fn open(dir: &SyncedDir) -> Result<(Repository, Oid)> {
    let repo = Repository::open(&dir.repo_root)
        .with_context(|| format!("cannot open the repository at {}", dir.repo_root.display()))?;
    let tree = {
        let commit = repo
            .revparse_single(&dir.commit)
            .and_then(|object| object.peel_to_commit())
            .with_context(|| format!("commit {} not found", dir.commit))?;
        let root = commit.tree().context("cannot read the commit's tree")?;
        // `./infra/docker` is `infra/docker` to git.
        let relative: PathBuf = dir
            .dir
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if relative.as_os_str().is_empty() {
            root.id()
        } else {
            root.get_path(&relative)
                .and_then(|entry| entry.to_object(&repo))
                .and_then(|object| object.peel_to_tree())
                .with_context(|| {
                    format!(
                        "{} is not a directory in commit {}",
                        dir.dir.display(),
                        dir.commit
                    )
                })?
                .id()
        }
    };
    Ok((repo, tree))
}

/// Sends the stats of everything the request selects, in `filepath.Walk` order, then
/// the empty stat that ends the walk.
fn walk(
    dir: &SyncedDir,
    filter: &RequestFilter,
    files: &Mutex<Vec<Option<FileRef>>>,
    tx: &mpsc::Sender<Result<Packet, Status>>,
    transferred: &Transferred,
) -> Result<()> {
    let (repo, tree_id) = open(dir)?;
    let tree = repo
        .find_tree(tree_id)
        .context("cannot read the context's tree")?;
    let includes = include_patterns(&repo, &tree, &filter.includes, &filter.follow_paths)?;
    let mut walker = Walker {
        repo: &repo,
        includes: includes.as_deref(),
        excludes: &filter.excludes,
        pending: Vec::new(),
        emit: &mut |stat: Stat, file: Option<FileRef>| {
            if let Some(file) = &file {
                transferred.listed.fetch_add(file.size, Ordering::Relaxed);
            }
            files
                .lock()
                .map_err(|_| anyhow!("the file list is poisoned"))?
                .push(file);
            tx.blocking_send(Ok(Packet {
                r#type: PacketType::PacketStat as i32,
                stat: Some(stat),
                ..Packet::default()
            }))
            .map_err(|_| anyhow!("the daemon stopped reading the build context"))
        },
    };
    walker.walk(&tree, "", includes.is_none(), None)?;
    tx.blocking_send(Ok(Packet {
        r#type: PacketType::PacketStat as i32,
        ..Packet::default()
    }))
    .map_err(|_| anyhow!("the daemon stopped reading the build context"))
}

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

/// fsutil's include set: the include patterns plus the follow paths with the symlinks
/// on their way resolved (`FollowLinks`), cleaned and deduplicated; `None` when
/// nothing limits the walk (no patterns, or one of them is the root).
fn include_patterns(
    repo: &Repository,
    tree: &Tree<'_>,
    includes: &[String],
    follow_paths: &[String],
) -> Result<Option<Vec<IncludePattern>>> {
    if includes.is_empty() && follow_paths.is_empty() {
        return Ok(None);
    }
    let mut all: BTreeSet<String> = includes.iter().map(|p| clean(p)).collect();
    let mut resolver = SymlinkResolver {
        repo,
        tree,
        resolved: BTreeSet::new(),
    };
    for path in follow_paths {
        resolver.append(&clean(path), 0)?;
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
                        clean(&format!("{target}/{rest}"))
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
            clean(&link)
        } else {
            clean(&format!("{parent}/{link}"))
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

/// A directory entered but not announced yet: it is announced before the first entry
/// inside it that is, so that no directory arrives empty where the CLI's would not.
struct PendingDir {
    path: String,
    sent: bool,
}

struct Walker<'a> {
    repo: &'a Repository,
    includes: Option<&'a [IncludePattern]>,
    excludes: &'a DockerIgnore,
    pending: Vec<PendingDir>,
    emit: &'a mut dyn FnMut(Stat, Option<FileRef>) -> Result<()>,
}

impl Walker<'_> {
    /// Walks `tree` (at `prefix`, `""` or ending in `/`). `all_included`: an include
    /// pattern matched a directory above, so everything beneath is included.
    fn walk(
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

/// Sends one requested file as `PACKET_DATA` chunks and the empty one that ends it.
fn send_file(
    repo: &Repository,
    work_tree: &Path,
    id: u32,
    file: &FileRef,
    tx: &mpsc::Sender<Result<Packet, Status>>,
    transferred: &Transferred,
) -> Result<()> {
    let send = |data: Vec<u8>| {
        tx.blocking_send(Ok(Packet {
            r#type: PacketType::PacketData as i32,
            id,
            data,
            ..Packet::default()
        }))
        .map_err(|_| anyhow!("the daemon stopped reading the build context"))
    };
    let mut sent = 0u64;
    let streamed = file.size >= STREAM_FROM_WORK_TREE;
    match committed_file_in_work_tree(&work_tree.join(&file.path), file.oid, file.size)
        .filter(|_| streamed)
    {
        Some(disk) => {
            let mut reader = std::io::BufReader::new(disk).take(file.size);
            loop {
                let mut chunk = vec![0u8; DATA_CHUNK];
                let n = reader
                    .read(&mut chunk)
                    .with_context(|| format!("cannot read {}", file.path))?;
                if n == 0 {
                    break;
                }
                chunk.truncate(n);
                sent += n as u64;
                send(chunk)?;
            }
        }
        None => {
            let blob = repo
                .find_blob(file.oid)
                .with_context(|| format!("cannot read {} from git", file.path))?;
            for chunk in blob.content().chunks(DATA_CHUNK) {
                sent += chunk.len() as u64;
                send(chunk.to_vec())?;
            }
        }
    }
    if sent != file.size {
        return Err(anyhow!(
            "{} changed while it was sent ({sent} of {} bytes)",
            file.path,
            file.size
        ));
    }
    send(Vec::new())?;
    transferred.files.fetch_add(1, Ordering::Relaxed);
    transferred.bytes.fetch_add(sent, Ordering::Relaxed);
    Ok(())
}

/// Go's `path.Clean` for relative `/`-separated paths (a leading `/` dropped).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests;
