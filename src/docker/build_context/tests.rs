use super::*;
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

fn entries(spec: &ContextSpec) -> (Vec<(String, String)>, ContextStats) {
    let mut tar_bytes = Vec::new();
    let stats = write_tar(spec, &mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().display().to_string();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            files.push((path, text));
        }
    }
    (files, stats)
}

#[test]
fn context_is_the_committed_tree_filtered_by_dockerignore() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".dockerignore",
        "node_modules\n**/node_modules\n*.md\n!KEEP.md\ninfra/docker\n",
    );
    write(root, "infra/docker/service.Dockerfile", "FROM scratch\n");
    write(root, "services/api/src/index.ts", "committed\n");
    write(root, "services/api/node_modules/dep/index.js", "x\n");
    write(root, "node_modules/top/index.js", "x\n");
    write(root, "README.md", "readme\n");
    write(root, "KEEP.md", "kept\n");
    git(root, &["init", "--quiet"]);
    git(root, &["add", "--all", "--force"]);
    git(root, &["commit", "--quiet", "-m", "init"]);
    // Uncommitted edits and untracked files never reach the context.
    write(root, "services/api/src/index.ts", "DIRTY\n");
    write(root, "services/api/src/untracked.ts", "untracked\n");

    let spec = ContextSpec {
        repo_root: root.to_path_buf(),
        commit: "HEAD".into(),
        dir: ".".into(),
        dockerfile: "infra/docker/service.Dockerfile".into(),
        include: None,
    };
    let (files, stats) = entries(&spec);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            ".dockerignore",
            "KEEP.md",
            "infra/docker/service.Dockerfile",
            "services/api/src/index.ts"
        ]
    );
    assert_eq!(files[3].1, "committed\n");
    assert_eq!(stats.files, 4);
    assert!(stats.ignored >= 3, "{stats:?}");
}

/// Every entry of the context tar, directories with a trailing `/`.
fn tar_paths(spec: &ContextSpec) -> Vec<String> {
    let mut tar_bytes = Vec::new();
    write_tar(spec, &mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if entry.header().entry_type().is_dir() {
                format!("{}/", path.trim_end_matches('/'))
            } else {
                path
            }
        })
        .collect()
}

#[test]
fn excluded_directories_enter_the_context_only_with_something_inside() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The field report: `!README.md` made every excluded dist/ an empty directory.
    write(
        root,
        ".dockerignore",
        "**/dist\ndocs\n!README.md\n!docs/keep/\n",
    );
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "README.md", "readme\n");
    write(root, "services/api/dist/index.js", "x\n");
    write(root, "services/api/src/index.ts", "x\n");
    write(root, "docs/guide.md", "x\n");
    write(root, "docs/keep/a.md", "x\n");
    git(root, &["init", "--quiet"]);
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "-m", "init"]);
    let spec = ContextSpec {
        repo_root: root.to_path_buf(),
        commit: "HEAD".into(),
        dir: ".".into(),
        dockerfile: "Dockerfile".into(),
        include: None,
    };
    assert_eq!(
        tar_paths(&spec),
        [
            ".dockerignore",
            "Dockerfile",
            "README.md",
            // docs/ itself is excluded: sent, as the docker CLI's BuildKit does, only
            // because something inside it is, and just before it.
            "docs/",
            "docs/keep/",
            "docs/keep/a.md",
            "services/",
            "services/api/",
            "services/api/src/",
            "services/api/src/index.ts",
        ]
    );
}

#[test]
fn big_files_stream_from_the_work_tree_only_when_it_holds_the_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big = "x".repeat(2 * STREAM_FROM_WORK_TREE as usize);
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "clean.bin", &big);
    write(root, "dirty.bin", &big);
    git(root, &["init", "--quiet"]);
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "-m", "init"]);
    // Same size, different bytes: must come from git, not the work tree.
    write(root, "dirty.bin", &"y".repeat(big.len()));
    let spec = ContextSpec {
        repo_root: root.to_path_buf(),
        commit: "HEAD".into(),
        dir: ".".into(),
        dockerfile: "Dockerfile".into(),
        include: None,
    };
    let (files, _) = entries(&spec);
    let content = |name: &str| files.iter().find(|(p, _)| p == name).unwrap().1.clone();
    assert_eq!(content("clean.bin"), big);
    assert_eq!(content("dirty.bin"), big);
}

#[test]
fn a_missing_dockerfile_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "a\n");
    git(dir.path(), &["init", "--quiet"]);
    git(dir.path(), &["add", "--all"]);
    git(dir.path(), &["commit", "--quiet", "-m", "init"]);
    let spec = ContextSpec {
        repo_root: dir.path().to_path_buf(),
        commit: "HEAD".into(),
        dir: ".".into(),
        dockerfile: "infra/docker/service.Dockerfile".into(),
        include: None,
    };
    let err = write_tar(&spec, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("infra/docker/service.Dockerfile"), "{err}");
}

#[test]
fn a_classic_context_holds_only_what_copy_reads_and_the_build_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".dockerignore", "**/*.md\n");
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "pnpm-lock.yaml", "lock\n");
    write(root, "packages/common/index.ts", "common\n");
    write(root, "packages/common/README.md", "ignored\n");
    write(root, "services/api/src/index.ts", "api\n");
    write(root, "services/auth/src/index.ts", "auth\n");
    write(root, "bigdata/blob.bin", "never copied\n");
    git(root, &["init", "--quiet"]);
    git(root, &["add", "--all"]);
    git(root, &["commit", "--quiet", "-m", "init"]);
    let spec = ContextSpec {
        repo_root: root.to_path_buf(),
        commit: "HEAD".into(),
        dir: ".".into(),
        dockerfile: "Dockerfile".into(),
        include: Some(vec![
            "pnpm-lock.yaml".into(),
            "packages".into(),
            "service[s]/api".into(),
        ]),
    };
    assert_eq!(
        tar_paths(&spec),
        [
            ".dockerignore",
            "Dockerfile",
            "packages/",
            "packages/common/",
            "packages/common/index.ts",
            "pnpm-lock.yaml",
            "services/",
            "services/api/",
            "services/api/src/",
            "services/api/src/index.ts",
        ]
    );
}
