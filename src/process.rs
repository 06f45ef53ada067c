//! Child processes: finding a program on PATH, the output of a command that must
//! succeed (its command line, status and stderr in the error), and signals to a process
//! or a whole process group (through kill(1): the crate forbids `unsafe`, so no libc).

use std::path::PathBuf;
use std::process::{Output, Stdio};

use anyhow::{bail, Result};

/// The full path of `program` if it is on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// The stdout of a finished command; a failure names the command line (as `line`), the
/// exit status and what the command said on stderr.
pub fn stdout_of(line: &str, output: Output) -> Result<String> {
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A signal sent with kill(1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// What Ctrl-C sends: terraform stops cleanly on the first one.
    Interrupt,
    /// A polite stop.
    Terminate,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Interrupt => "-INT",
            Signal::Terminate => "-TERM",
        }
    }
}

/// Sends `signal` to one process. Best effort: a process already gone is not an error.
pub async fn signal(pid: u32, signal: Signal) {
    let _ = tokio::process::Command::new("kill")
        .args([signal.flag(), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Sends `signal` to every process of the group `group` (a child started with
/// `process_group(0)` leads a group whose id is its pid). Blocking, so that it can run
/// in `Drop`; best effort.
pub fn signal_group(group: u32, signal: Signal) {
    let _ = std::process::Command::new("kill")
        .args([signal.flag(), "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops a process group with SIGTERM when dropped, unless [`GroupGuard::disarm`]ed:
/// a child abandoned part-way (Ctrl-C drops the future that waits for it) takes what it
/// started with it.
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    pub fn new(group: Option<u32>) -> Self {
        Self(group)
    }

    /// The group ended by itself: nothing to stop.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            signal_group(group, Signal::Terminate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_and_missing_ones_are_not() {
        assert!(find_on_path("sh").is_some());
        assert_eq!(find_on_path("surely-not-a-program-here"), None);
    }

    #[test]
    fn a_failed_command_names_its_line_status_and_stderr() {
        let output = std::process::Command::new("sh")
            .args(["-c", "echo out; echo bad thing >&2; exit 3"])
            .output()
            .unwrap();
        let err = stdout_of("sh -c …", output).unwrap_err().to_string();
        assert!(
            err.starts_with("`sh -c …` failed (exit status: 3)"),
            "{err}"
        );
        assert!(err.ends_with(": bad thing"), "{err}");
        let output = std::process::Command::new("echo")
            .arg("fine")
            .output()
            .unwrap();
        assert_eq!(stdout_of("echo fine", output).unwrap(), "fine\n");
    }

    #[test]
    fn a_guard_stops_the_whole_group_unless_disarmed() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        drop(GroupGuard::new(Some(child.id())));
        let status = child.wait().unwrap();
        assert!(!status.success(), "the group got SIGTERM: {status}");
        let mut done = std::process::Command::new("true").spawn().unwrap();
        let mut guard = GroupGuard::new(Some(done.id()));
        done.wait().unwrap();
        guard.disarm();
    }
}
