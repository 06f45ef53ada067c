//! What changed since what runs: the git diff of a service's inputs between two
//! commits, the `--changed` decision for one service, and the survey of what ECS runs
//! against HEAD (`--changed`, `status`); in graph mode, through the pnpm workspace
//! graph and the lockfile by importer. And the environment itself as both the pipeline
//! and the commands read it (`deploy.toml` over terraform outputs, the run history).

pub mod decide;
pub mod diff;
pub mod drift;
pub mod environment;
pub mod graph;
pub mod live;
pub mod lockfile;
pub mod workspace;

/// Writes one of the caches kept under `.git/deploy/` whole or not at all: aside (a name
/// of this process's own) and then renamed over `path`, so a concurrent run reads all of
/// it or the previous one, never half. Creates the directory; leaves no partial file.
pub(crate) fn write_whole(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{}.partial", std::process::id()));
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
