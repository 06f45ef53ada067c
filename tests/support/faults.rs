//! Faults injected into a run (a proxy in front of a test-bed server) and the
//! processes a run leaves on this machine.

use std::path::Path;
use std::process::{Command, Stdio};

use super::Testbed;

/// `testbed/fault_proxy.py` in front of a test-bed server. Killed on drop, which to
/// the clients going through it is the server going away.
pub struct FaultProxy {
    child: std::process::Child,
    /// `127.0.0.1:port`, or the socket path of a unix proxy.
    pub address: String,
}

impl FaultProxy {
    /// An HTTP proxy in front of `upstream` (`host:port`), injecting `faults`.
    pub fn http(bed: &Testbed, upstream: &str, faults: &[&str]) -> Self {
        let mut args = vec!["--upstream", upstream];
        args.extend(faults);
        let (child, port) = Self::spawn(bed, &args);
        Self {
            child,
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// A byte pipe on the unix socket `listen`, in front of the unix socket `upstream`.
    pub fn unix(bed: &Testbed, listen: &Path, upstream: &Path) -> Self {
        let listen = listen.display().to_string();
        let upstream = upstream.display().to_string();
        let (child, _) = Self::spawn(
            bed,
            &[
                "--raw",
                "--listen-unix",
                &listen,
                "--upstream-unix",
                &upstream,
            ],
        );
        Self {
            child,
            address: listen,
        }
    }

    /// Like [`FaultProxy::unix`], counting the bytes clients send upstream; read them
    /// with [`FaultProxy::bytes_sent`].
    pub fn unix_counting(bed: &Testbed, listen: &Path, upstream: &Path, count: &Path) -> Self {
        let listen = listen.display().to_string();
        let upstream = upstream.display().to_string();
        let count = count.display().to_string();
        let (child, _) = Self::spawn(
            bed,
            &[
                "--raw",
                "--listen-unix",
                &listen,
                "--upstream-unix",
                &upstream,
                "--count-file",
                &count,
            ],
        );
        Self {
            child,
            address: listen,
        }
    }

    /// A byte pipe on a loopback TCP port in front of the unix socket `upstream`: the
    /// Docker daemon as a `tcp://` `DOCKER_HOST`.
    pub fn tcp_to_unix(bed: &Testbed, upstream: &Path) -> Self {
        let upstream = upstream.display().to_string();
        let (child, port) = Self::spawn(bed, &["--raw", "--upstream-unix", &upstream]);
        Self {
            child,
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// Starts the proxy and reads the line it prints once it accepts connections.
    fn spawn(bed: &Testbed, args: &[&str]) -> (std::process::Child, String) {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/fault_proxy.py");
        let mut child = Command::new(&bed.python)
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the fault proxy starts");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(!ready.trim().is_empty(), "the fault proxy did not start");
        (child, ready.trim().to_owned())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prefix-<nanoseconds>`: a string no other test run uses.
pub fn unique_marker(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

/// The live processes on this machine whose working directory is `dir` or below it
/// (terraform in a fixture's checkout, and what its provisioners start); zombies do not
/// count.
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            cwd.starts_with(&dir) && !status.contains("State:\tZ")
        })
        .collect()
}

/// The live processes on this machine whose command line contains `marker` (a build
/// step's shell, with the test bed's daemon on this machine); zombies do not count.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(marker) && !status.contains("State:\tZ")
        })
        .collect()
}

/// Waits up to `limit` for `done`; false if it never came.
pub fn eventually(limit: std::time::Duration, done: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    true
}
