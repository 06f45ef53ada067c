//! Builds and `deploy prune` kept apart on one Docker daemon, for every run on this
//! machine. Docker 20.10's BuildKit can panic, taking the daemon down, when its build
//! cache is pruned under a running build (seen in our own test runs). A run that builds
//! holds a shared lock on a file named after the daemon's ID; prune needs the file alone
//! and refuses while any build holds it. Builds driven from another machine against the
//! same daemon are not seen.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::docker::engine::Engine;
use crate::ui::progress::Progress;

/// Held for as long as the builds (or the prune) run; the lock goes with the file.
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// For a run's builds: shared with other runs' builds. While a prune holds the
    /// daemon, waits for it (prunes are short), saying so once.
    pub async fn for_builds(engine: &Engine, progress: &Progress) -> Option<Self> {
        let path = path_for(&engine.daemon_id().await);
        let file = match open(&path) {
            Ok(file) => file,
            Err(err) => {
                // The guard is a safety net for prune; a deploy does not stop for it.
                progress.warn(&format!(
                    "cannot open the Docker build lock {}: {err}; building without it",
                    path.display()
                ));
                return None;
            }
        };
        let mut said = false;
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Some(Self { _file: file }),
                Err(TryLockError::WouldBlock) => {
                    if !said {
                        progress.note(&format!(
                            "waiting for `deploy prune` to finish on the Docker daemon at {} before building",
                            engine.host
                        ));
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(TryLockError::Error(err)) => {
                    progress.warn(&format!(
                        "cannot lock the Docker build lock {}: {err}; building without it",
                        path.display()
                    ));
                    return None;
                }
            }
        }
    }

    /// For `deploy prune`: the daemon alone. While a run builds on it, an error that
    /// says so (nothing is removed).
    pub async fn for_prune(engine: &Engine) -> Result<Self> {
        let path = path_for(&engine.daemon_id().await);
        let file = open(&path).with_context(|| {
            format!(
                "cannot open {} (the lock that keeps prune away from running builds); nothing was removed. Check TMPDIR",
                path.display()
            )
        })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => bail!(
                "a deploy is building on the Docker daemon at {}: pruning its build cache under a running build can crash the daemon (Docker 20.10's BuildKit). Nothing was removed; run `deploy prune` again when the deploy has finished",
                engine.host
            ),
            Err(TryLockError::Error(err)) => Err(err).with_context(|| {
                format!("cannot lock {}; nothing was removed", path.display())
            }),
        }
    }
}

/// One file per daemon, in the temp directory every run on this machine shares.
pub fn path_for(daemon_id: &str) -> PathBuf {
    let name: String = daemon_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("deploy-docker-{name}.lock"))
}

/// Read-write, created if missing; read-only when another user created it (a read-only
/// descriptor locks just as well).
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .or_else(|_| File::open(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_share_the_daemon_and_prune_needs_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.lock");
        let build = open(&path).unwrap();
        let other_build = open(&path).unwrap();
        let prune = open(&path).unwrap();
        build.try_lock_shared().unwrap();
        other_build.try_lock_shared().unwrap();
        assert!(matches!(prune.try_lock(), Err(TryLockError::WouldBlock)));
        drop(build);
        drop(other_build);
        prune.try_lock().unwrap();
        assert!(matches!(
            open(&path).unwrap().try_lock_shared(),
            Err(TryLockError::WouldBlock)
        ));
    }

    #[test]
    fn the_file_is_named_after_the_daemon_in_plain_characters() {
        let path = path_for("ABCD:EF/GH unix:///x");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "deploy-docker-ABCD-EF-GH-unix----x.lock");
        assert_eq!(path.parent().unwrap(), std::env::temp_dir());
    }
}
