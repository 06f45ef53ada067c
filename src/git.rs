//! The git repository being deployed: its root, HEAD and working-tree state (git2);
//! and, for unit tests, temporary repositories to commit to (`testing`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{ErrorClass, ErrorCode, Repository, StatusOptions};

use crate::error::UsageError;

/// The repository a run deploys from, opened once.
pub struct Repo {
    repo: Repository,
    root: PathBuf,
}

pub use crate::model::head::Head;

impl Repo {
    /// Finds the repository containing `start` (any subdirectory works).
    pub fn discover(start: &Path) -> Result<Self> {
        let repo = Repository::discover(start).map_err(|err| discover_error(start, err))?;
        let root = repo
            .workdir()
            .ok_or_else(|| {
                UsageError::new(format!(
                    "{} is a bare git repository; run deploy from a checkout",
                    repo.path().display()
                ))
            })?
            .to_path_buf();
        // Repository::workdir keeps a trailing slash; strip it for display.
        let root = root.components().collect::<PathBuf>();
        Ok(Self { repo, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The underlying repository, for change detection.
    pub fn git(&self) -> &Repository {
        &self.repo
    }

    /// The `.git` directory (deploy keeps its build logs under `deploy/` there).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// Whether the hex prefix `short` names a commit of this repository (`deploy prune`:
    /// an image tag). An ambiguous prefix names objects of this repository, so it counts:
    /// the tag was unique when deploy made it, the repository has grown since.
    pub fn has_commit(&self, short: &str) -> bool {
        match self.repo.find_commit_by_prefix(short) {
            Ok(_) => true,
            Err(err) => err.code() == ErrorCode::Ambiguous,
        }
    }

    /// HEAD's commit, short id and branch. A repository without commits is a usage error.
    pub fn head(&self) -> Result<Head> {
        let head = match self.repo.head() {
            Ok(head) => head,
            Err(err) if err.code() == ErrorCode::UnbornBranch || err.code() == ErrorCode::NotFound => {
                return Err(UsageError::new(format!(
                    "the repository at {} has no commits yet; commit the code you want live, then deploy",
                    self.root.display()
                ))
                .into())
            }
            Err(err) => return Err(err).context("cannot read HEAD"),
        };
        let commit = head
            .peel_to_commit()
            .context("HEAD does not point at a commit")?;
        let short = self.short_sha(commit.id())?;
        let branch = if head.is_branch() {
            head.shorthand().ok().map(str::to_owned)
        } else {
            None
        };
        Ok(Head {
            sha: commit.id().to_string(),
            short_sha: short,
            branch,
        })
    }

    /// The commit a revision names (`a1b2c3d`, a full SHA, a tag, `HEAD~2`), as the
    /// image tag a deploy of it got. A revision the repository does not know is a usage
    /// error.
    pub fn commit(&self, revision: &str) -> Result<Head> {
        let unknown = |detail: String| {
            UsageError::new(format!(
                "{revision:?} is not a commit in {} ({detail}); give a SHA from `git log` (run `git fetch` if it was made elsewhere)",
                self.root.display()
            ))
        };
        let object = self
            .repo
            .revparse_single(revision)
            .map_err(|err| unknown(err.message().to_owned()))?;
        let commit = object.peel_to_commit().map_err(|_| {
            unknown(format!(
                "it names a {}",
                object.kind().map_or("non-commit", |k| k.str())
            ))
        })?;
        Ok(Head {
            sha: commit.id().to_string(),
            short_sha: self.short_sha(commit.id())?,
            branch: None,
        })
    }

    /// The commit id abbreviated exactly as `git rev-parse --short` does (SPEC: the image
    /// tag is that string): `core.abbrev` when it is a number, else git's "auto" length
    /// from the number of packed objects (at least 7), then longer until unique.
    /// libgit2's own `short_id` starts at 7 whatever the repository's size, so in a
    /// repository of 16384 or more objects it printed one character fewer than git.
    fn short_sha(&self, id: git2::Oid) -> Result<String> {
        let full = id.to_string();
        let odb = self.repo.odb().context("cannot open the object database")?;
        let mut len = match self.repo.config().and_then(|c| c.get_string("core.abbrev")) {
            Ok(value) if value == "no" => full.len(),
            Ok(value) => value
                .parse::<usize>()
                .map(|n| n.clamp(4, full.len()))
                .unwrap_or_else(|_| auto_abbrev(self.repo.commondir())),
            Err(_) => auto_abbrev(self.repo.commondir()),
        };
        while len < full.len() {
            let prefix =
                git2::Oid::from_str(&full[..len]).context("cannot abbreviate the commit id")?;
            match odb.exists_prefix(prefix, len) {
                Ok(_) => break,
                Err(err) if err.code() == ErrorCode::Ambiguous => len += 1,
                Err(err) => return Err(err).context("cannot abbreviate the commit id"),
            }
        }
        Ok(full[..len].to_owned())
    }

    /// Paths with uncommitted changes (tracked files modified, staged, deleted or
    /// renamed, and untracked files that are not ignored), relative to the root.
    pub fn uncommitted_paths(&self) -> Result<Vec<String>> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut options))
            .context("cannot read the working tree status")?;
        let mut paths: Vec<String> = statuses
            .iter()
            .filter(|entry| !entry.status().is_ignored())
            .filter_map(|entry| entry.path().ok().map(str::to_owned))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

/// git's "auto" abbreviation: half the bits of the packed object count, rounded up,
/// in hex digits, and at least 7 (git's `find_unique_abbrev_r`; like git, loose objects
/// are not counted).
fn auto_abbrev(common_dir: &Path) -> usize {
    let count = packed_object_count(&common_dir.join("objects"));
    let bits = (u64::BITS - count.leading_zeros()) as usize;
    bits.div_ceil(2).max(7)
}

/// Objects in the pack indexes of an objects directory and of its alternates.
fn packed_object_count(objects: &Path) -> u64 {
    let mut dirs = vec![objects.to_path_buf()];
    if let Ok(alternates) = std::fs::read_to_string(objects.join("info/alternates")) {
        dirs.extend(
            alternates
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(|line| objects.join(line)),
        );
    }
    let mut count = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join("pack")) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "idx") {
                count += pack_index_objects(&path).unwrap_or(0);
            }
        }
    }
    count
}

/// The number of objects a pack index (`.idx`, version 1 or 2) lists: the last entry
/// of its fan-out table.
fn pack_index_objects(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 8];
    file.read_exact(&mut header)?;
    let fanout = if header[..4] == [0xff, b't', b'O', b'c'] {
        8
    } else {
        0
    };
    file.seek(SeekFrom::Start(fanout + 255 * 4))?;
    let mut last = [0u8; 4];
    file.read_exact(&mut last)?;
    Ok(u64::from(u32::from_be_bytes(last)))
}

fn discover_error(start: &Path, err: git2::Error) -> anyhow::Error {
    match (err.class(), err.code()) {
        (_, ErrorCode::NotFound) => UsageError::new(format!(
            "{} is not inside a git repository; run deploy from a checkout of the platform (or pass --repo DIR)",
            start.display()
        ))
        .into(),
        (ErrorClass::Config, _) | (_, ErrorCode::Owner) => UsageError::new(format!(
            "git refuses to open the repository at {}: {}; if you trust it, run `git config --global --add safe.directory <path>`",
            start.display(),
            err.message()
        ))
        .into(),
        _ => anyhow::Error::new(err).context(format!("cannot open the git repository at {}", start.display())),
    }
}

/// Whether `text` looks like a commit id deploy would tag an image with: 7 to 40 hex
/// digits (an abbreviation or a full SHA).
pub fn looks_like_sha(text: &str) -> bool {
    (7..=40).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Temporary git repositories for unit tests (of this module and of change detection).
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

#[cfg(test)]
mod tests {
    use super::testing::TestRepo;
    use super::*;

    /// A version-2 pack index (magic, version, fan-out) listing `objects` objects.
    fn write_pack_index(dir: &Path, name: &str, objects: u32, version: u32) {
        let mut bytes = Vec::new();
        if version == 2 {
            bytes.extend([0xff, b't', b'O', b'c']);
            bytes.extend(2u32.to_be_bytes());
        }
        // The fan-out table: cumulative counts per first byte; the last is the total.
        for first_byte in 0..256u32 {
            bytes.extend((objects * (first_byte + 1) / 256).to_be_bytes());
        }
        std::fs::create_dir_all(dir.join("pack")).unwrap();
        std::fs::write(dir.join("pack").join(name), bytes).unwrap();
    }

    #[test]
    fn pack_indexes_of_both_versions_are_counted() {
        let objects = tempfile::tempdir().unwrap();
        write_pack_index(objects.path(), "pack-a.idx", 1000, 2);
        write_pack_index(objects.path(), "pack-b.idx", 234, 1);
        // Not an index: never read.
        std::fs::write(objects.path().join("pack/pack-a.pack"), b"PACK").unwrap();
        assert_eq!(packed_object_count(objects.path()), 1234);
    }

    #[test]
    fn alternates_count_too() {
        let shared = tempfile::tempdir().unwrap();
        write_pack_index(shared.path(), "pack-s.idx", 500, 2);
        let objects = tempfile::tempdir().unwrap();
        write_pack_index(objects.path(), "pack-o.idx", 20, 2);
        std::fs::create_dir_all(objects.path().join("info")).unwrap();
        std::fs::write(
            objects.path().join("info/alternates"),
            format!("# shared\n\n{}\n", shared.path().display()),
        )
        .unwrap();
        assert_eq!(packed_object_count(objects.path()), 520);
    }

    #[test]
    fn the_auto_length_is_half_the_bits_of_the_object_count_and_at_least_seven() {
        // git's find_unique_abbrev_r: 2^14 objects need 8 digits, 2^16 too, 2^17 need 9.
        for (objects, length) in [
            (0, 7),
            (16383, 7),
            (16384, 8),
            (65535, 8),
            (131072, 9),
            (4_000_000, 11),
        ] {
            let common = tempfile::tempdir().unwrap();
            write_pack_index(&common.path().join("objects"), "p.idx", objects, 2);
            assert_eq!(auto_abbrev(common.path()), length, "{objects} objects");
        }
    }

    #[test]
    fn core_abbrev_sets_the_length_and_no_means_the_full_id() {
        let test_repo = TestRepo::new();
        let id = test_repo.commit(&[("a", "1")]);
        let repo = Repo::discover(test_repo.dir.path()).unwrap();
        assert_eq!(repo.short_sha(id).unwrap(), id.to_string()[..7]);
        let mut config = test_repo.repo.config().unwrap();
        for (value, length) in [("10", 10), ("2", 4), ("no", 40), ("auto", 7)] {
            config.set_str("core.abbrev", value).unwrap();
            let repo = Repo::discover(test_repo.dir.path()).unwrap();
            assert_eq!(
                repo.short_sha(id).unwrap(),
                id.to_string()[..length],
                "{value}"
            );
        }
    }

    #[test]
    fn shas_are_7_to_40_hex_digits() {
        assert!(looks_like_sha("3f2c1ab"));
        assert!(looks_like_sha(&"a".repeat(40)));
        assert!(!looks_like_sha("3f2c1a"));
        assert!(!looks_like_sha(&"a".repeat(41)));
        assert!(!looks_like_sha("latest1"));
        assert!(!looks_like_sha("3f2c1ab-dirty"));
    }
}
