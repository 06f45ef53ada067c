//! What changed since what runs: the git diff of a service's inputs between two
//! commits, the `--changed` decision for one service, and the survey of what ECS runs
//! against HEAD (`--changed`, `status`); in graph mode, through the pnpm workspace
//! graph and the lockfile by importer. And the environment itself as both the pipeline
//! and the commands read it (`deploy.toml` over terraform outputs, the run history).

pub mod decide;
pub mod diff;
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

/// Temporary git repositories for unit tests of change detection.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use git2::{Oid, Repository, Signature};

    /// A repository in a temporary directory, committed to file by file.
    pub struct TestRepo {
        pub dir: tempfile::TempDir,
        pub repo: Repository,
    }

    impl TestRepo {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            Self { dir, repo }
        }

        /// Writes `files` (path, content) and commits them on HEAD.
        pub fn commit(&self, files: &[(&str, &str)]) -> Oid {
            let mut index = self.repo.index().unwrap();
            for (path, text) in files {
                let full = self.dir.path().join(path);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, text).unwrap();
                index.add_path(Path::new(path)).unwrap();
            }
            index.write().unwrap();
            let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
            let signature = Signature::now("t", "t@example.invalid").unwrap();
            let parent = self
                .repo
                .head()
                .ok()
                .and_then(|head| head.peel_to_commit().ok());
            let parents: Vec<&git2::Commit> = parent.iter().collect();
            self.repo
                .commit(Some("HEAD"), &signature, &signature, "c", &tree, &parents)
                .unwrap()
        }
    }
}
