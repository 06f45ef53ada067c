//! Building an SPA: its own command through `sh -c` in its directory, output captured,
//! a failure reported with the command, its exit status and the last lines it printed.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::SpaTarget;
use crate::process::GroupGuard;
use crate::ui::progress::ItemProgress;

/// Lines of build output shown when a build fails.
const BUILD_TAIL_LINES: usize = 30;

/// A build command that failed: what ran, where, how it ended and its last lines.
#[derive(Debug)]
pub struct SpaBuildFailed {
    pub spa: String,
    pub command: String,
    pub dir: PathBuf,
    pub status: String,
    pub tail: Vec<String>,
}

impl fmt::Display for SpaBuildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the build of SPA {} failed: `{}` (in {}) {}",
            self.spa,
            self.command,
            self.dir.display(),
            self.status
        )?;
        write!(f, "last lines of its output:")?;
        for line in &self.tail {
            write!(f, "\n  | {line}")?;
        }
        if crate::build_output::is_out_of_disk(&self.tail.join("\n")) {
            write!(
                f,
                "\nthe disk holding {} is full: free some space and re-run",
                self.dir.display()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpaBuildFailed {}

impl SpaBuildFailed {
    /// An npm/corepack network blip (SPEC §5), worth one more try.
    fn is_transient(&self) -> bool {
        crate::build_output::is_transient(&self.status, &self.tail)
    }
}

/// Runs the SPA's build command (`sh -c <build>` in its directory), its output captured:
/// on failure the error ([`SpaBuildFailed`]) carries the command, its exit status and
/// the last lines of its output. A transient npm/corepack network error is retried
/// once. Checks that the build left its output directory.
pub async fn build(spa: &SpaTarget, item: &ItemProgress) -> Result<()> {
    item.state(&format!("building: {}", spa.build));
    let started = Instant::now();
    let mut result = run_build(spa, item).await?;
    if let Err(failure) = &result {
        if failure.is_transient() {
            item.state("build hit a transient network error; retrying once");
            result = run_build(spa, item).await?;
        }
    }
    if let Err(failure) = result {
        item.finish("build FAILED");
        return Err(failure.into());
    }
    if !spa.output.is_dir() {
        item.finish("build FAILED");
        bail!(
            "the build of SPA {} (`{}`) succeeded but left no output directory {}",
            spa.name,
            spa.build,
            spa.output.display()
        );
    }
    item.state(&format!("built in {:.1}s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// One run of the build command: `Ok(Err(..))` when the command ran and failed.
async fn run_build(
    spa: &SpaTarget,
    item: &ItemProgress,
) -> Result<std::result::Result<(), SpaBuildFailed>> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&spa.build)
        .current_dir(&spa.dir)
        .envs(spa.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that stopping the build stops what the tool started
        // (pnpm's node, vite, esbuild), not only `sh`.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start the build of SPA {}: `sh -c {:?}` in {}",
                spa.name,
                spa.build,
                spa.dir.display()
            )
        })?;
    let mut group = GroupGuard::new(child.id());
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<String>(64);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let readers = tokio::spawn(async move {
        tokio::join!(
            forward_lines(stdout, lines_tx.clone()),
            forward_lines(stderr, lines_tx)
        );
    });
    let mut tail = VecDeque::with_capacity(BUILD_TAIL_LINES);
    while let Some(line) = lines_rx.recv().await {
        tracing::debug!(spa = %spa.name, "{line}");
        item.detail(&line);
        if tail.len() == BUILD_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let _ = readers.await;
    let status = child
        .wait()
        .await
        .with_context(|| format!("cannot wait for the build of SPA {}", spa.name))?;
    group.disarm();
    if status.success() {
        return Ok(Ok(()));
    }
    let status = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was stopped ({status})"),
    };
    Ok(Err(SpaBuildFailed {
        spa: spa.name.clone(),
        command: spa.build.clone(),
        dir: spa.dir.clone(),
        status,
        tail: tail.into(),
    }))
}

async fn forward_lines(reader: impl AsyncRead + Unpin, lines: tokio::sync::mpsc::Sender<String>) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
                if lines.send(line).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn target(dir: &Path, build: &str) -> SpaTarget {
        SpaTarget {
            name: "admin-ui".into(),
            dir: dir.to_path_buf(),
            build: build.into(),
            output: dir.join("dist"),
            bucket: "bucket".into(),
            distribution_id: None,
            manifest: super::super::ManifestLocation::new("private", "admin-ui", "bucket"),
            env: vec![("SPA_GREETING".into(), "hello".into())],
        }
    }

    #[tokio::test]
    async fn a_failed_build_names_the_command_status_and_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let spa = target(
            dir.path(),
            "for i in $(seq 1 40); do echo line $i; done; sleep 0.2; echo oops >&2; exit 3",
        );
        let progress = crate::ui::progress::Progress::new(true);
        let err = build(&spa, &progress.item("admin-ui")).await.unwrap_err();
        let failure = err.downcast_ref::<SpaBuildFailed>().expect("typed failure");
        assert_eq!(failure.status, "exited with status 3");
        assert_eq!(failure.tail.len(), BUILD_TAIL_LINES);
        assert!(failure.tail.contains(&"oops".to_owned()));
        assert!(!failure.tail.contains(&"line 1".to_owned()));
        let message = err.to_string();
        assert!(
            message.contains("the build of SPA admin-ui failed"),
            "{message}"
        );
        assert!(message.contains("exit 3"), "{message}");
    }

    #[tokio::test]
    async fn a_build_without_output_is_an_error_and_env_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let progress = crate::ui::progress::Progress::new(true);
        let spa = target(dir.path(), "test \"$SPA_GREETING\" = hello");
        let err = build(&spa, &progress.item("admin-ui")).await.unwrap_err();
        assert!(
            err.to_string().contains("left no output directory"),
            "{err}"
        );
        let spa = target(dir.path(), "test \"$SPA_GREETING\" = hello && mkdir dist");
        build(&spa, &progress.item("admin-ui")).await.unwrap();
    }

    #[test]
    fn out_of_disk_is_recognised() {
        let failure = SpaBuildFailed {
            spa: "admin-ui".into(),
            command: "pnpm build".into(),
            dir: "/repo/apps/admin-ui".into(),
            status: "exited with status 1".into(),
            tail: vec!["ERR_PNPM_ENOSPC  ENOSPC: no space left on device".into()],
        };
        assert!(failure.to_string().contains("is full"), "{failure}");
        assert!(!failure.is_transient());
    }
}
