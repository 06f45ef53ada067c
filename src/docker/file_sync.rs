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

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context as _, Result};
use bollard::fsutil::types::{packet::PacketType, Packet, Stat};
use bollard::moby::filesync::v1::file_sync_server::FileSync;
use futures_util::Stream;
use git2::{Oid, Repository};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::docker::committed_files::{committed_file_in_work_tree, STREAM_FROM_WORK_TREE};
use crate::docker::dockerignore::DockerIgnore;

mod includes;
mod walker;

use includes::include_patterns;
use walker::Walker;
#[cfg(test)]
use walker::{mtime_of, EPOCH_1980, GO_MODE_DIR, GO_MODE_SYMLINK};

/// Bytes of file data per `PACKET_DATA` (fsutil's sender uses 32 KiB).
const DATA_CHUNK: usize = 64 * 1024;
/// Packets waiting for the daemon at most.
const CHANNEL_PACKETS: usize = 16;

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
        let relative = crate::paths::git_path(&dir.dir);
        if relative.is_empty() {
            root.id()
        } else {
            root.get_path(Path::new(&relative))
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
    let mut emit = |stat: Stat, file: Option<FileRef>| {
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
    };
    let mut walker = Walker::new(&repo, includes.as_deref(), &filter.excludes, &mut emit);
    walker.walk(&tree, "", includes.is_none(), None)?;
    tx.blocking_send(Ok(Packet {
        r#type: PacketType::PacketStat as i32,
        ..Packet::default()
    }))
    .map_err(|_| anyhow!("the daemon stopped reading the build context"))
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

#[cfg(test)]
mod tests;
