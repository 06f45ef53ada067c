use super::*;
use git2::ObjectType;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A committed repository: (temp dir, HEAD's id).
fn repo(files: &[(&str, &str)], dockerignore: Option<&str>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    if let Some(rules) = dockerignore {
        write(dir.path(), ".dockerignore", rules);
    }
    git(dir.path(), &["init", "--quiet"]);
    git(dir.path(), &["add", "--all"]);
    git(dir.path(), &["commit", "--quiet", "-m", "init"]);
    let head = Repository::open(dir.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    (dir, head)
}

/// The stats the walk sends, as `path` (with `/` for directories) in order.
fn walked(dir: &SyncedDir, includes: &[&str], follow: &[&str]) -> Vec<String> {
    let filter = RequestFilter {
        excludes: dir.excludes.clone().unwrap_or_default(),
        includes: includes.iter().map(|s| s.to_string()).collect(),
        follow_paths: follow.iter().map(|s| s.to_string()).collect(),
    };
    let (tx, mut rx) = mpsc::channel(10_000);
    let files = Mutex::new(Vec::new());
    let transferred = Transferred::default();
    walk(dir, &filter, &files, &tx, &transferred).unwrap();
    drop(tx);
    let mut out = Vec::new();
    let mut file_bytes = 0;
    while let Ok(Ok(packet)) = rx.try_recv() {
        let Some(stat) = packet.stat else {
            out.push("<end>".to_owned());
            continue;
        };
        if stat.mode & GO_MODE_DIR != 0 {
            out.push(format!("{}/", stat.path));
        } else {
            if stat.mode & GO_MODE_SYMLINK == 0 {
                file_bytes += stat.size as u64;
            }
            out.push(stat.path);
        }
    }
    // What the context weighs (the one-build-at-a-time rule reads it) is every regular
    // file announced, sent or not.
    assert_eq!(
        transferred.listed.load(Ordering::Relaxed),
        file_bytes,
        "listed bytes"
    );
    out
}

fn synced(root: &Path, commit: &str, excludes: Option<&str>) -> SyncedDir {
    SyncedDir {
        repo_root: root.to_path_buf(),
        commit: commit.to_owned(),
        dir: PathBuf::new(),
        excludes: excludes.map(|text| DockerIgnore::parse(text).unwrap()),
    }
}

#[test]
fn the_walk_is_in_filepath_walk_order_with_parents_first() {
    let (dir, head) = repo(
        &[
            ("a.txt", "1"),
            ("a/b.txt", "2"),
            ("a/c/d.txt", "3"),
            ("b", "4"),
        ],
        None,
    );
    let all = walked(&synced(dir.path(), &head, None), &[], &[]);
    // `a` before `a.txt`: git's own order would put `a.txt` first.
    assert_eq!(
        all,
        ["a/", "a/b.txt", "a/c/", "a/c/d.txt", "a.txt", "b", "<end>"]
    );
}

#[test]
fn include_patterns_select_only_what_copy_reads_and_the_way_to_it() {
    let (dir, head) = repo(
        &[
            ("pnpm-lock.yaml", "l"),
            ("packages/x/index.ts", "x"),
            ("services/api/src/index.ts", "api"),
            ("services/auth/src/index.ts", "auth"),
            ("bigdata/blob.bin", "big"),
        ],
        None,
    );
    let dir = synced(dir.path(), &head, None);
    assert_eq!(
        walked(&dir, &[], &["pnpm-lock.yaml", "packages", "service[s]/api"]),
        [
            "packages/",
            "packages/x/",
            "packages/x/index.ts",
            "pnpm-lock.yaml",
            "services/",
            "services/api/",
            "services/api/src/",
            "services/api/src/index.ts",
            "<end>"
        ]
    );
    // A file named like a directory on the way is not included.
    assert_eq!(walked(&dir, &["pnpm-lock.yaml/x"], &[]), ["<end>"]);
    // The root includes everything.
    assert_eq!(walked(&dir, &["."], &[]).len(), 14);
}

#[test]
fn dockerignore_applies_with_exceptions_and_no_empty_excluded_dirs() {
    let (dir, head) = repo(
        &[
            ("docs/a.md", "a"),
            ("docs/keep/b.txt", "b"),
            ("dist/x.js", "x"),
            ("src/index.ts", "i"),
        ],
        Some("docs\n!docs/keep\ndist\n"),
    );
    let dir = synced(dir.path(), &head, Some("docs\n!docs/keep\ndist\n"));
    assert_eq!(
        walked(&dir, &[], &[]),
        [
            ".dockerignore",
            "docs/",
            "docs/keep/",
            "docs/keep/b.txt",
            "src/",
            "src/index.ts",
            "<end>"
        ]
    );
}

#[test]
fn follow_paths_resolve_symlinks_in_the_committed_tree() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "real/file.txt", "r");
    write(dir.path(), "other.txt", "o");
    std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
    git(dir.path(), &["init", "--quiet"]);
    git(dir.path(), &["add", "--all"]);
    git(dir.path(), &["commit", "--quiet", "-m", "init"]);
    let head = Repository::open(dir.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    let synced = synced(dir.path(), &head, None);
    assert_eq!(
        walked(&synced, &[], &["link/file.txt"]),
        ["link", "real/", "real/file.txt", "<end>"]
    );
}

#[test]
fn a_content_change_changes_the_mtime_even_at_the_same_size() {
    let a = Oid::hash_object(ObjectType::Blob, b"aaaa").unwrap();
    let b = Oid::hash_object(ObjectType::Blob, b"bbbb").unwrap();
    assert_ne!(mtime_of(a), mtime_of(b));
    assert_eq!(mtime_of(a), mtime_of(a));
    let seconds = mtime_of(a) / 1_000_000_000;
    assert!((EPOCH_1980..EPOCH_1980 + (1 << 29)).contains(&seconds));
}
