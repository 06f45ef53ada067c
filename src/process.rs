//! Child processes: finding a program on PATH, the output of a command that must
//! succeed (its command line, status and stderr in the error), and signals to a process
//! or a whole process group (kill(2) through rustix: the crate forbids `unsafe`).

use std::path::PathBuf;
use std::process::Output;

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

pub use crate::error::Signal;

/// The kernel's number for `signal`.
fn raw(signal: Signal) -> rustix::process::Signal {
    match signal {
        Signal::Interrupt => rustix::process::Signal::INT,
        Signal::Terminate => rustix::process::Signal::TERM,
        Signal::Hangup => rustix::process::Signal::HUP,
    }
}

/// A pid as the kernel takes it: never 0 (which would mean "my own process group") nor
/// past `i32::MAX` (a negative pid means a group, or every process).
fn kernel_pid(pid: u32) -> Option<rustix::process::Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

/// A process group's id as the kernel takes it: also never 1, since kill(-1, …) would
/// signal every process this user may signal.
fn kernel_group(group: u32) -> Option<rustix::process::Pid> {
    kernel_pid(group).filter(|group| !group.is_init())
}

/// Sends `signal` to one process. Best effort: a process already gone is not an error.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = kernel_pid(pid) {
        let _ = rustix::process::kill_process(pid, raw(signal));
    }
}

/// Sends `signal` to every process of the group `group` (a child started with
/// `process_group(0)` leads a group whose id is its pid). Best effort.
pub fn signal_group(group: u32, signal: Signal) {
    if let Some(group) = kernel_group(group) {
        let _ = rustix::process::kill_process_group(group, raw(signal));
    }
}

/// Whether a process `pid` runs (and this process may see it): a signal-0 probe. A
/// process of another user reads as running (the kernel says "not permitted", not
/// "no such process").
pub fn is_running(pid: u32) -> bool {
    match kernel_pid(pid) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
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

    #[test]
    fn a_signal_reaches_the_process_and_a_finished_one_is_not_running() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(is_running(child.id()));
        signal(child.id(), Signal::Hangup);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(1), "killed by SIGHUP: {status}");
        assert!(!is_running(child.id()));
        assert!(is_running(std::process::id()));
        assert!(!is_running(0));
    }

    #[test]
    fn no_pid_means_this_group_or_every_process() {
        // 0 is this process's own group, -1 (past i32::MAX) and group 1 every process.
        assert_eq!(kernel_pid(0), None);
        assert_eq!(kernel_pid(u32::MAX), None);
        assert_eq!(kernel_group(1), None);
        assert_eq!(kernel_group(0), None);
        assert_eq!(
            kernel_group(4242).map(|g| g.as_raw_nonzero().get()),
            Some(4242)
        );
    }
}
