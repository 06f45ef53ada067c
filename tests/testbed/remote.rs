//! Remote builders: `DOCKER_HOST` on a second dockerd behind TLS (certificates made here
//! with the openssl CLI), and `ssh://` through an sshd started here. Each test starts
//! its own daemon and stops it when it ends, failed or not (the guards' `Drop`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{bootstrap_aws, eventually, processes_with, Fixture, Testbed, PUSH_API};

/// `docker` arguments that print the test's committed `remote.txt` from api's `image`.
pub(crate) fn cat_remote_txt(image: &str) -> [&str; 7] {
    [
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "cat",
        "/app/services/api/src/remote.txt",
    ]
}

/// These tests start daemons and a bridge: root only. They fail, never skip, elsewhere.
fn assert_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        uid, "0",
        "the remote-builder tests start a dockerd, a Linux bridge and an sshd: run them as root"
    );
}

/// A port nothing listens on (the OS picked it free a moment ago).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A CA (`<name>-ca.pem`, `<name>-ca-key.pem`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

/// A certificate signed by CA `ca`, at `<out>-cert.pem` and `<out>-key.pem`.
fn make_cert(dir: &Path, ca: &str, out: &str, extensions: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={out}"),
            "-keyout",
            &format!("{out}-key.pem"),
            "-out",
            &format!("{out}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{out}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{out}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca-key.pem"),
            "-CAcreateserial",
            "-extfile",
            &format!("{out}.ext"),
            "-out",
            &format!("{out}-cert.pem"),
        ],
    );
}

/// A `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem`, `key.pem` copied from `dir`.
fn cert_path(dir: &Path, name: &str, ca: &str, client: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    for (from, to) in [
        (format!("{ca}-ca.pem"), "ca.pem"),
        (format!("{client}-cert.pem"), "cert.pem"),
        (format!("{client}-key.pem"), "key.pem"),
    ] {
        std::fs::copy(dir.join(from), path.join(to)).unwrap();
    }
    path
}

/// A second dockerd on a loopback port behind TLS (`--tlsverify`), apart from the
/// machine's daemon: its own data, exec root, pidfile and bridge, no iptables. It holds
/// the test bed's base image. Stopped, its bridge and directories removed, on drop.
///
/// Not `--bridge=none`: a dockerd started so deletes the machine's `docker0` (Moby's
/// `configureNetworking` calls `removeDefaultBridgeInterface` when the bridge is
/// disabled), which breaks every container of the machine's own daemon. Its own bridge
/// (no iptables, so no NAT: build steps reach nothing outside) keeps it apart and lets
/// `RUN` steps have the network namespace BuildKit gives them.
pub(crate) struct TlsDaemon {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    _bridge: OwnBridge,
    /// `DOCKER_CERT_PATH` of a client the daemon trusts, trusting the daemon.
    pub(crate) certs: PathBuf,
}

impl TlsDaemon {
    pub(crate) fn start(bed: &Testbed) -> Self {
        assert_root();
        let dir = tempfile::Builder::new()
            .prefix("deploy-tls-dockerd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        make_ca(d, "daemon");
        make_ca(d, "stranger");
        make_cert(
            d,
            "daemon",
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        make_cert(d, "daemon", "client", "extendedKeyUsage=clientAuth\n");
        make_cert(d, "stranger", "outsider", "extendedKeyUsage=clientAuth\n");
        let certs = cert_path(d, "client-certs", "daemon", "client");

        // The machine's /etc/docker/daemon.json (data-root, storage driver) is the first
        // daemon's: this one reads an empty configuration instead.
        std::fs::write(d.join("daemon.json"), "{}\n").unwrap();
        let docker0 = Path::new("/sys/class/net/docker0");
        let had_docker0 = docker0.exists();
        let port = free_port();
        let bridge = OwnBridge::create(port);
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or("dockerd");
        let child = Command::new(dockerd)
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg(format!("--bridge={}", bridge.name))
            .args(["--iptables=false", "--ip-masq=false"])
            // Should it share a system containerd with the machine's daemon, not its
            // namespace.
            .args(["--containerd-namespace", "deploy-test-tls"])
            .args(["--containerd-plugins-namespace", "deploy-test-tls-plugins"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .args(["-H", &format!("tcp://127.0.0.1:{port}"), "--tlsverify"])
            .arg("--tlscacert")
            .arg(d.join("daemon-ca.pem"))
            .arg("--tlscert")
            .arg(d.join("server-cert.pem"))
            .arg("--tlskey")
            .arg(d.join("server-key.pem"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("{dockerd} cannot start: {err}"));
        let daemon = Self {
            dir,
            port,
            child,
            _bridge: bridge,
            certs,
        };
        let up = eventually(Duration::from_secs(20), || {
            daemon
                .docker_command(&["version"])
                .output()
                .is_ok_and(|out| out.status.success())
        });
        assert!(up, "the second dockerd did not answer: {}", daemon.log());
        assert!(
            docker0.exists() || !had_docker0,
            "starting the second dockerd removed the machine's docker0"
        );
        // It pulls nothing: it gets the base image from the machine's daemon.
        let mut save = Command::new("docker")
            .args(["save", &bed.base_image])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = daemon
            .docker_command(&["load"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        let saved = save.wait().unwrap();
        assert!(
            saved.success() && load.status.success(),
            "docker save {} | docker load into the second dockerd: {}",
            bed.base_image,
            String::from_utf8_lossy(&load.stderr)
        );
        daemon
    }

    pub(crate) fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .args(["-H", &self.host(), "--tlsverify"])
            .arg("--tlscacert")
            .arg(self.certs.join("ca.pem"))
            .arg("--tlscert")
            .arg(self.certs.join("cert.pem"))
            .arg("--tlskey")
            .arg(self.certs.join("key.pem"))
            .args(args);
        command
    }

    pub(crate) fn docker(&self, args: &[&str]) -> String {
        run(&mut self.docker_command(args))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default()
    }
}

/// A Linux bridge for the second dockerd, on a /24 no route of the machine uses;
/// deleted on drop (after the daemon: [`TlsDaemon`]'s fields drop after its `drop`).
struct OwnBridge {
    name: String,
}

impl OwnBridge {
    fn create(port: u16) -> Self {
        let name = format!("deploytb{port}");
        let routes = run(Command::new("ip").args(["-4", "route", "show"]));
        let octet = (0..250u16)
            .map(|i| (port + i) % 250 + 1)
            .find(|octet| !routes.contains(&format!("10.213.{octet}.")))
            .expect("a free 10.213.x.0/24");
        run(Command::new("ip").args(["link", "add", &name, "type", "bridge"]));
        let bridge = Self { name };
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("10.213.{octet}.1/24"),
            "dev",
            &bridge.name,
        ]));
        run(Command::new("ip").args(["link", "set", &bridge.name, "up"]));
        bridge
    }
}

impl Drop for OwnBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "delete", &self.name])
            .status();
    }
}

impl Drop for TlsDaemon {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd and unmount; SIGKILL if it hangs.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut stopped = false;
        while !stopped && std::time::Instant::now() < deadline {
            stopped = matches!(self.child.try_wait(), Ok(Some(_)));
            std::thread::sleep(Duration::from_millis(100));
        }
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Mounts dockerd may have left under its roots, then the directory (TempDir).
        for root in ["exec", "data"] {
            let _ = Command::new("umount")
                .args(["-R", "--lazy"])
                .arg(self.path(root))
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn a_build_on_a_daemon_behind_tls_runs_there_with_the_committed_tree() {
    let bed = Testbed::get();
    let daemon = TlsDaemon::start(&bed);
    let fixture = Fixture::unique();
    fixture.write("services/api/src/remote.txt", "committed\n");
    let tag = fixture.commit_all("a file the remote build copies");
    // Dirty in the work tree: the daemon must get the commit's version.
    fixture.write("services/api/src/remote.txt", "dirty\n");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");

    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &daemon.certs)
        .env("DOCKER_BUILDKIT", "1")
        .args(PUSH_API)
        .run()
        .success();

    // Built on the second daemon (it holds the image), from the commit, and pushed.
    let image = format!("{}/api:{tag}", bed.registry);
    let content = daemon.docker(&cat_remote_txt(&image));
    assert_eq!(content, "committed\n");
    assert!(bed.registry_has("api", &tag), "api:{tag} was not pushed");
    let on_the_machine = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(
        !on_the_machine.status.success(),
        "the machine's own daemon has {image}: the build did not run on the TLS daemon"
    );
}

#[test]
fn a_daemon_behind_tls_deploy_cannot_trust_or_that_refuses_deploy_is_one_clear_error() {
    let bed = Testbed::get();
    let daemon = TlsDaemon::start(&bed);
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let d = daemon.dir.path();
    let wrong_ca = cert_path(d, "wrong-ca", "stranger", "client");
    let refused_client = cert_path(d, "refused-client", "daemon", "outsider");
    let no_key = cert_path(d, "no-key", "daemon", "client");
    std::fs::remove_file(no_key.join("key.pem")).unwrap();
    let by_name = format!("tcp://localhost:{}", daemon.port);

    for (host, certs, said) in [
        (
            daemon.host(),
            &wrong_ca,
            format!(
                "presented a certificate that the CA in {} did not sign",
                wrong_ca.join("ca.pem").display()
            ),
        ),
        (
            daemon.host(),
            &refused_client,
            format!(
                "refused deploy's client certificate {}",
                refused_client.join("cert.pem").display()
            ),
        ),
        (
            by_name.clone(),
            &daemon.certs,
            "is not valid for the host name `localhost` in DOCKER_HOST".to_owned(),
        ),
        (
            daemon.host(),
            &no_key,
            format!(
                "cannot read the client key {}",
                no_key.join("key.pem").display()
            ),
        ),
    ] {
        let out = fixture
            .deploy()
            .aws(&env, &bed)
            .env("DOCKER_HOST", &host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs)
            .args(PUSH_API)
            .run();
        // As for any daemon deploy cannot reach (faults.rs): exit 1, nothing built.
        out.code(1).stderr_has(&said);
        assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
        assert!(
            !out.stderr.contains("PRIVATE KEY"),
            "a key reached the output: {}",
            out.stderr
        );
    }
}

/// An sshd on a loopback port with a host key and an authorized key made here, and an
/// `ssh` first on PATH that uses them (`ssh -F <config>`): ssh reads `~/.ssh` from the
/// passwd entry, not `$HOME`. Operators put the same in their `~/.ssh/config`. The sshd
/// is stopped on drop.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Sshd {
    /// `extra`: more sshd_config lines.
    fn start(extra: &str) -> Self {
        assert_root();
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("sshd is installed (testbed/testbed.sh installs openssh-server)");
        let dir = tempfile::Builder::new()
            .prefix("deploy-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key)));
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nStrictModes no\nLogLevel VERBOSE\n{extra}",
                d = d.display()
            ),
        )
        .unwrap();
        // The host key is known, not accepted blindly.
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::write(
            d.join("bin/ssh"),
            format!(
                "#!/bin/sh\necho \"$*\" >> {d}/ssh-calls\nexec /usr/bin/ssh -F {d}/ssh_config \"$@\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            d.join("bin/ssh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        // sshd's privilege separation directory (made by its init script otherwise).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("{sshd} cannot start: {err}"));
        let sshd = Self { dir, port, child };
        let up = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "sshd did not listen: {}", sshd.log());
        sshd
    }

    /// PATH with the test's `ssh` first.
    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ssh-calls")).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_build_over_ssh_runs_on_the_remote_daemon_and_ssh_ends_with_deploy() {
    let bed = Testbed::get();
    let sshd = Sshd::start("");
    let fixture = Fixture::unique();
    fixture.write("services/api/src/remote.txt", "over ssh\n");
    let tag = fixture.commit_all("a file the build over ssh copies");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", format!("ssh://root@127.0.0.1:{}", sshd.port))
        .env_remove("DOCKER_TLS_VERIFY")
        .env("DOCKER_BUILDKIT", "1")
        .env("PATH", sshd.path_env())
        .args(PUSH_API)
        .run();
    out.success();

    // deploy went through ssh to `docker system dial-stdio` (the remote here is the
    // machine's own daemon, behind sshd), which built and pushed the commit.
    let calls = sshd.calls();
    assert!(
        calls.contains(&format!(
            "-l root -p {} -- 127.0.0.1 docker system dial-stdio",
            sshd.port
        )),
        "ssh was not run as the docker CLI runs it: {calls}\nsshd: {}",
        sshd.log()
    );
    let image = format!("{}/api:{tag}", bed.registry);
    let content = run(Command::new("docker").args(cat_remote_txt(&image)));
    assert_eq!(content, "over ssh\n");
    assert!(bed.registry_has("api", &tag), "api:{tag} was not pushed");
    // No ssh outlives deploy.
    let marker = sshd.dir.path().join("ssh_config").display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&marker)
            .is_empty()),
        "ssh processes left after deploy exited: {:?}",
        processes_with(&marker)
    );
}

#[test]
fn ctrl_c_during_a_build_over_ssh_cancels_the_remote_build_and_leaves_no_ssh() {
    let bed = Testbed::get();
    let sshd = Sshd::start("");
    let fixture = Fixture::unique();
    let marker = fixture.slow_build();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", format!("ssh://root@127.0.0.1:{}", sshd.port))
        .env("PATH", sshd.path_env())
        .args(PUSH_API)
        .own_process_group()
        .spawn();
    // The slow step runs on the remote daemon (here the machine's, behind sshd).
    run.wait_for_the_slow_build(&marker);
    let interrupted = std::time::Instant::now();
    run.interrupt_group();
    let ended = run.finish();
    // As Ctrl-C at a terminal: the signal goes to deploy's process group (ssh runs in
    // one of its own). The run ends as an interrupted build ends on a local daemon, the
    // remote step is cancelled, and no ssh is left. (With ssh in deploy's group, ssh
    // dies of the SIGINT and the build is cancelled all the same: this test does not
    // tell the two apart.)
    ended.code(130).printed("interrupted");
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "stopped promptly: {ended}"
    );
    assert!(
        eventually(Duration::from_secs(15), || processes_with(&marker)
            .is_empty()),
        "the remote build step still runs after the interrupt: {:?}",
        processes_with(&marker)
    );
    let ssh = sshd.dir.path().join("ssh_config").display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&ssh).is_empty()),
        "ssh processes left after deploy was interrupted: {:?}",
        processes_with(&ssh)
    );
}

#[test]
fn an_ssh_host_deploy_cannot_reach_or_without_docker_is_one_clear_error_in_sshs_words() {
    let bed = Testbed::get();
    // Logins get a PATH without docker: the host has no docker CLI.
    let sshd = Sshd::start("SetEnv PATH=/nonexistent\n");
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let closed = free_port();
    for (host, said) in [
        (
            format!("ssh://root@127.0.0.1:{closed}"),
            format!("connect to host 127.0.0.1 port {closed}: Connection refused"),
        ),
        (
            format!("ssh://nosuchuser@127.0.0.1:{}", sshd.port),
            "Permission denied (publickey)".to_owned(),
        ),
        (
            format!("ssh://root@127.0.0.1:{}", sshd.port),
            "docker: command not found".to_owned(),
        ),
    ] {
        let out = fixture
            .deploy()
            .aws(&env, &bed)
            .env("DOCKER_HOST", &host)
            .env("PATH", sshd.path_env())
            .args(PUSH_API)
            .run();
        out.code(1)
            .stderr_has(&format!("cannot reach the Docker daemon at {host}"))
            .stderr_has(&said)
            .stderr_has("docker system dial-stdio");
        assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
    }
}
