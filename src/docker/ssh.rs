//! An `ssh://` Docker host: a Unix socket in a private temp dir, each connection to it
//! bridged to `ssh … docker system dial-stdio` on the host, as the docker CLI's
//! connection helper does. bollard (`connect_with_unix`) and the BuildKit session both
//! connect to that socket, so the session's raw upgraded stream goes over ssh as well.
//!
//! bollard's own `ssh` feature is not used: it pulls the `openssh` crate (a multiplexed
//! ControlMaster session of its own) and serves bollard's requests only, not the raw
//! stream our session needs; the system `ssh` reads the operator's `~/.ssh/config`,
//! agent and known hosts exactly as `docker -H ssh://…` does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::io::AsyncReadExt as _;

use super::address::SshTarget;

/// How much of ssh's stderr a failure keeps (the end of it).
const STDERR_KEPT: usize = 4096;

/// The bridge; dropping it stops accepting and kills every ssh it started.
pub struct SshBridge {
    socket: PathBuf,
    /// ssh's last failure: its exit status and stderr.
    failure: Arc<Mutex<Option<String>>>,
    accept: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl SshBridge {
    /// Listens on a socket in a new private (0700) temp dir.
    pub fn start(target: &SshTarget) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("deploy-ssh-")
            .tempdir()
            .context("cannot create a private temp dir for the ssh connection to Docker")?;
        let socket = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        let failure = Arc::new(Mutex::new(None));
        let args = target.ssh_args();
        let recorded = failure.clone();
        let accept = tokio::spawn(async move {
            // The connections live in the accept task's set: aborting the task drops
            // them, and each ssh with its connection (kill_on_drop).
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(bridge(stream, args.clone(), recorded.clone()));
                        }
                        Err(err) => {
                            tracing::debug!("the ssh bridge stopped accepting: {err}");
                            break;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            while connections.join_next().await.is_some() {}
        });
        Ok(Self {
            socket,
            failure,
            accept,
            _dir: dir,
        })
    }

    /// The socket bollard and the session connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// ssh's last failure, waiting up to `wait` for one to be recorded (a request can
    /// fail on the closed connection just before ssh's exit is seen).
    pub async fn failure(&self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(failure) = self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                return Some(failure);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SshBridge {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One connection: its bytes to ssh's stdin, ssh's stdout back; a failed ssh recorded.
async fn bridge(
    stream: tokio::net::UnixStream,
    args: Vec<String>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let record = |message: String| {
        tracing::debug!("{message}");
        *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    };
    let spawned = tokio::process::Command::new("ssh")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A process group of its own, so that a Ctrl-C at the terminal reaches deploy,
        // which cancels its builds over these connections, and not ssh. (The docker
        // CLI's helper goes further with a session of its own, `setsid`, which needs
        // `pre_exec` and so unsafe code; with BatchMode, ssh has no prompt for the
        // terminal either way.)
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            record(format!("cannot run `ssh {}`: {err}", args.join(" ")));
            return;
        }
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let stderr_read = tokio::spawn(async move {
        let mut all = Vec::new();
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
            if all.len() > STDERR_KEPT {
                all.drain(..all.len() - STDERR_KEPT);
            }
        }
        // Its last line ends the sentence deploy adds to it.
        String::from_utf8_lossy(&all)
            .trim()
            .trim_end_matches('.')
            .to_owned()
    });
    let (mut from_client, mut to_client) = stream.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        drop(stdin);
    };
    let down = async {
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_client).await;
    };
    tokio::join!(up, down);
    let status = child.wait().await;
    let stderr = stderr_read.await.unwrap_or_default();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => record(format!(
            "`ssh {}` exited with {}{}",
            args.join(" "),
            status
                .code()
                .map(|code| format!("code {code}"))
                .unwrap_or_else(|| status.to_string()),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            }
        )),
        Err(err) => record(format!("cannot wait for `ssh {}`: {err}", args.join(" "))),
    }
}
