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

/// What a [`Listener`] does with each connection it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnAccept {
    /// Holds it open and never answers: an endpoint that stalls.
    Stall,
    /// Closes it at once: a proxy or load balancer dropping connections.
    Drop,
}

/// A TCP listener on a free loopback port that counts the connections it accepts.
pub struct Listener {
    pub address: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    pub fn start(on_accept: OnAccept) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = socket.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        // The thread lives as long as the test process: held connections stay open.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in socket.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                if on_accept == OnAccept::Stall {
                    held.push(stream);
                }
            }
        });
        Self { address, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Debian's `tinyproxy` (installed by the test bed) on a free loopback port, logging
/// each request it serves; killed on drop.
pub struct Tinyproxy {
    child: std::process::Child,
    pub url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to any port (the test bed's are not 443).
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 20\nAllow 127.0.0.1\n",
                log.display()
            ),
        )
        .unwrap();
        let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("tinyproxy is installed (testbed/testbed.sh up installs it)");
        let child = Command::new(binary)
            .args(["-d", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let address = format!("127.0.0.1:{port}");
        assert!(
            eventually(std::time::Duration::from_secs(10), || {
                std::net::TcpStream::connect(&address).is_ok()
            }),
            "tinyproxy did not listen on {address}"
        );
        Self {
            child,
            url: format!("http://{address}"),
            log,
            _dir: dir,
        }
    }

    /// The requests logged whose line is `method <target…>` with `target` in it:
    /// `Request (file descriptor 5): CONNECT host:443 HTTP/1.1`, or a plain-HTTP
    /// request in absolute form, `GET http://host:port/path HTTP/1.1`.
    pub fn requests(&self, method: &str, target: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once("Request (file descriptor"))
            .filter_map(|(_, rest)| {
                rest.split_once("): ")
                    .map(|(_, request)| request.to_owned())
            })
            .filter(|request| {
                request.starts_with(&format!("{method} ")) && request.contains(target)
            })
            .count()
    }

    /// The whole log, for a failing assertion.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
