//! The integration harness: runs the real `deploy` binary in temp directories, builds
//! the fixture platform as a real git repository, and finds the test bed (SPEC §7).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Build and push api alone, unattended: no SPAs, no terraform.
pub const PUSH_API: [&str; 7] = [
    "--skip-tf",
    "--skip-spas",
    "--services",
    "api",
    "--profile",
    "testbed",
    "-y",
];

/// A deploy to the sandbox environment, unattended.
pub const DEPLOY_SANDBOX: [&str; 5] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
    "-y",
];

/// Build, push and roll api alone, unattended, in the sandbox environment: no SPAs.
pub const DEPLOY_API: [&str; 8] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--services",
    "api",
    "--skip-spas",
    "--profile",
    "testbed",
    "-y",
];

/// `deploy unlock` for the sandbox environment.
pub const UNLOCK_SANDBOX: [&str; 5] = [
    "unlock",
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
];

/// Who uses the Docker daemon. Docker 20.10's BuildKit panics and takes the daemon
/// down (a nil pointer in its cache manager, seen in dockerd.log during a full test
/// run) when its build cache is pruned while another build runs. So every deploy run
/// uses the daemon shared, and the one run that prunes the build cache uses it alone.
/// Shared users never wait for a user queued to go alone, only for one that is in:
/// a test may start a second run while its first one runs.
pub struct DockerUse {
    alone: bool,
}

static DOCKER_USERS: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));
static DOCKER_CHANGED: std::sync::Condvar = std::sync::Condvar::new();

impl DockerUse {
    /// Waits until no one uses the daemon alone.
    pub fn shared() -> Self {
        Self::enter(false)
    }

    /// Waits until no one else uses the daemon.
    pub fn alone() -> Self {
        Self::enter(true)
    }

    fn enter(alone: bool) -> Self {
        let users = DOCKER_USERS.lock().unwrap_or_else(|e| e.into_inner());
        let mut users = DOCKER_CHANGED
            .wait_while(users, |(shared, someone_alone)| {
                *someone_alone || (alone && *shared > 0)
            })
            .unwrap_or_else(|e| e.into_inner());
        if alone {
            users.1 = true;
        } else {
            users.0 += 1;
        }
        Self { alone }
    }
}

impl Drop for DockerUse {
    fn drop(&mut self) {
        let mut users = DOCKER_USERS.lock().unwrap_or_else(|e| e.into_inner());
        if self.alone {
            users.1 = false;
        } else {
            users.0 -= 1;
        }
        DOCKER_CHANGED.notify_all();
    }
}

/// A `deploy` invocation, built fluently: `Deploy::new().args([..]).in_dir(..).run()`.
pub struct Deploy {
    command: Command,
    alone: bool,
}

impl Deploy {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deploy"));
        command
            .env_remove("RUST_LOG")
            .env_remove("DEPLOY_PROFILE")
            .env_remove("DEPLOY_REGISTRY")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        Self {
            command,
            alone: false,
        }
    }

    /// This run prunes the build cache: no other run may use Docker meanwhile.
    pub fn alone_on_docker(mut self) -> Self {
        self.alone = true;
        self
    }

    fn use_docker(&self) -> DockerUse {
        if self.alone {
            DockerUse::alone()
        } else {
            DockerUse::shared()
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn in_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes a variable from the run's environment (`NO_COLOR`, set by default).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Talks to the fixture's own moto account, pushing to the test bed's registry.
    pub fn aws(mut self, env: &AwsEnv, bed: &Testbed) -> Self {
        env.configure(&mut self.command);
        self.command.env("DEPLOY_REGISTRY", &bed.registry);
        self
    }

    pub fn run(mut self) -> Outcome {
        let _docker = self.use_docker();
        let output = self.command.output().expect("the deploy binary runs");
        Outcome::from(output)
    }

    /// Runs with stdout a pipe whose reader is already gone, as in `deploy status | head -0`.
    pub fn run_with_stdout_closed(mut self) -> Outcome {
        let _docker = self.use_docker();
        let mut child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the deploy binary starts");
        drop(child.stdout.take());
        Outcome::from(child.wait_with_output().expect("the deploy binary runs"))
    }

    /// Starts the run in the background, stdout and stderr piped.
    pub fn spawn(mut self) -> Background {
        let docker = self.use_docker();
        let mut child = self
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the deploy binary starts");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        Background {
            child,
            stderr,
            seen: String::new(),
            _docker: docker,
        }
    }
}

/// A `deploy` running in the background.
pub struct Background {
    pub child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// stderr read so far.
    pub seen: String,
    _docker: DockerUse,
}

impl Background {
    /// Reads stderr until a line satisfies `found`; panics if the run ends first.
    #[track_caller]
    pub fn wait_for_line(&mut self, what: &str, found: impl Fn(&str) -> bool) {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            assert!(
                self.stderr.read_line(&mut line).unwrap() > 0,
                "deploy ended before {what}: {}",
                self.seen
            );
            self.seen.push_str(&line);
            if found(&line) {
                return;
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C or a script's `kill -INT` would.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Ctrl-C before the roll (during a build, push, upload): the run must end within
    /// 20 s with exit 130, saying it was interrupted and that nothing was applied.
    #[track_caller]
    pub fn interrupt_before_the_roll(self) -> Ended {
        let interrupted = std::time::Instant::now();
        self.interrupt();
        let ended = self.finish();
        ended
            .code(130)
            .printed("interrupted")
            .printed("nothing was applied");
        assert!(
            interrupted.elapsed() < std::time::Duration::from_secs(20),
            "stopped promptly: {ended}"
        );
        ended
    }

    /// SIGKILL: the run gets no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits for the exit: the exit code, the rest of stderr, and stdout.
    pub fn finish(mut self) -> Ended {
        let mut rest = String::new();
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().unwrap();
        // stdout is drained on its own thread, so that neither pipe can fill and block.
        let reader = std::thread::spawn(move || {
            std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
            stdout
        });
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        let status = self.child.wait().unwrap();
        Ended {
            code: status.code(),
            seen: self.seen,
            rest,
            stdout: reader.join().unwrap(),
        }
    }
}

/// How a background run ended.
pub struct Ended {
    pub code: Option<i32>,
    /// stderr read before [`Background::finish`].
    pub seen: String,
    /// stderr read by [`Background::finish`].
    pub rest: String,
    pub stdout: String,
}

impl Ended {
    /// Panics with everything the run printed unless it exited with `expected`.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "{self}");
        self
    }

    /// Panics unless the rest of stderr (or stdout) contains `needle`.
    #[track_caller]
    pub fn printed(&self, needle: &str) -> &Self {
        assert!(
            self.rest.contains(needle) || self.stdout.contains(needle),
            "expected {needle:?} in the output:\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stderr ---\n{}{}\n--- stdout ---\n{}",
            self.code, self.seen, self.rest, self.stdout
        )
    }
}

/// What a run printed and how it exited.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Outcome {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn usage_error(&self) -> &Self {
        self.code(2)
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// stderr with `path` replaced by `[REPO]`, for snapshots.
    pub fn stderr_redacted(&self, path: &Path) -> String {
        redact(&self.stderr, path)
    }

    pub fn stdout_redacted(&self, path: &Path) -> String {
        redact(&self.stdout, path)
    }
}

fn redact(text: &str, path: &Path) -> String {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    text.replace(&canonical.display().to_string(), "[REPO]")
        .replace(&path.display().to_string(), "[REPO]")
}

/// The nine deployable services of the fixture platform, sorted.
pub const SERVICES: [&str; 9] = [
    "api",
    "auth",
    "billing",
    "clinical-api",
    "files",
    "notifications",
    "reports",
    "scheduler",
    "webhooks",
];

/// A copy of `tests/fixtures/platform` in a temp dir, committed as a real git repository.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("deploy-fixture-")
            .tempdir()
            .expect("temp dir");
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platform");
        copy_tree(&template, dir.path());
        let fixture = Self { dir };
        fixture.git(&["init", "--quiet", "--initial-branch=main"]);
        fixture.commit_all("platform");
        fixture
    }

    /// A fixture whose commit no other test shares: its SHA tags images in the shared
    /// registry, so parallel tests must never collide on it.
    pub fn unique() -> Self {
        let fixture = Self::new();
        fixture.write(
            "services/api/src/nonce.ts",
            &format!(
                "// {}-{:?}\n",
                std::process::id(),
                std::time::SystemTime::now()
            ),
        );
        fixture.commit_all("unique");
        fixture
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub fn write(&self, relative: &str, text: &str) -> &Self {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Runs git in the fixture with a fixed identity; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .env("GIT_AUTHOR_NAME", "Fixture")
            .env("GIT_AUTHOR_EMAIL", "fixture@example.invalid")
            .env("GIT_COMMITTER_NAME", "Fixture")
            .env("GIT_COMMITTER_EMAIL", "fixture@example.invalid")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub fn commit_all(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.short_sha()
    }

    /// What `git rev-parse --short HEAD` prints.
    pub fn short_sha(&self) -> String {
        self.git(&["rev-parse", "--short", "HEAD"])
    }

    /// A `deploy` run started in the fixture root.
    pub fn deploy(&self) -> Deploy {
        Deploy::new().in_dir(self.root())
    }

    /// `deploy unlock` for the sandbox environment.
    pub fn unlock(&self, env: &AwsEnv, bed: &Testbed) -> Outcome {
        self.deploy().aws(env, bed).args(UNLOCK_SANDBOX).run()
    }

    /// `deploy status --output json`: what ECS runs, as JSON text.
    pub fn live_images(&self, env: &AwsEnv, bed: &Testbed) -> String {
        let out = self
            .deploy()
            .aws(env, bed)
            .args(["status", "--profile", "testbed", "--output", "json"])
            .run();
        out.success();
        out.stdout
    }

    /// After a run that failed or was interrupted: ECS still runs the bootstrap api
    /// image, and the run left no deploy lock behind.
    #[track_caller]
    pub fn assert_nothing_rolled_and_no_lock_left(&self, env: &AwsEnv, bed: &Testbed) {
        assert!(self.live_images(env, bed).contains("/api:bootstrap"));
        self.unlock(env, bed)
            .success()
            .stdout_has("no deploy lock held for sandbox");
    }

    /// Adds a build step that takes a minute and commits it, so that a test can act
    /// in the middle of a build. Returns the marker the step's shell carries on its
    /// command line (see [`processes_with`]).
    pub fn slow_build(&self) -> String {
        let dockerfile =
            std::fs::read_to_string(self.path("infra/docker/service.Dockerfile")).unwrap();
        let marker = unique_marker("slow-step");
        self.write(
            "infra/docker/service.Dockerfile",
            // `&& true`: the shell stays (no exec of the last command), marker and all.
            &format!("{dockerfile}\nRUN echo {marker} && sleep 60 && true\n"),
        );
        self.commit_all("a slow build");
        marker
    }

    /// Creates the per-environment tfvars file (gitignored, as in the platform).
    pub fn write_tfvars(&self, env: &str) -> &Self {
        self.write(
            &format!("infra/terraform/aws/tfvars/{env}.tfvars"),
            &format!("environment = \"{env}\"\n"),
        )
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The running test bed, as `testbed/testbed.sh up` exported it.
pub struct Testbed {
    pub endpoint: String,
    pub registry: String,
    pub base_image: String,
    pub python: PathBuf,
    pub terraform: PathBuf,
    pub dir: PathBuf,
}

impl Testbed {
    /// The test bed, or `None` (with a loud message) when tests run outside
    /// `scripts/check`. Under CI a missing test bed is a failure, never a skip.
    pub fn get(test: &str) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        if var("DEPLOY_TESTBED").is_none() {
            let message = format!(
                "SKIPPED {test}: no test bed (DEPLOY_TESTBED unset). Run `scripts/check`, or `testbed/testbed.sh up` and source .testbed/env"
            );
            if var("CI").is_some() {
                panic!("{message}; under CI the test bed is required");
            }
            eprintln!("\n!!!!! {message}\n");
            return None;
        }
        let required =
            |name: &str| var(name).unwrap_or_else(|| panic!("the test bed did not export {name}"));
        Some(Self {
            endpoint: required("AWS_ENDPOINT_URL"),
            registry: required("DEPLOY_TESTBED_REGISTRY"),
            base_image: required("DEPLOY_TESTBED_BASE_IMAGE"),
            python: required("DEPLOY_TESTBED_PYTHON").into(),
            terraform: required("DEPLOY_TESTBED_TERRAFORM").into(),
            dir: required("DEPLOY_TESTBED_DIR").into(),
        })
    }
}

impl Testbed {
    /// Whether the test bed's registry holds `repository:tag` (its own HTTP API).
    pub fn registry_has(&self, repository: &str, tag: &str) -> bool {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.registry).unwrap();
        write!(
            stream,
            "GET /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n",
            self.registry
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.starts_with("HTTP/1.1 200")
    }
}

/// A fixture environment bootstrapped in moto (what the platform's bootstrap.sh would
/// have created), isolated in an account of its own.
pub struct AwsEnv {
    pub summary: serde_json::Value,
    vars: Vec<(String, String)>,
}

impl AwsEnv {
    /// Environment for a child process: the fixture's own profile. The test bed's
    /// static keys are removed, since they would win over the profile.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    /// An SDK config for the fixture's account, for assertions made from the test.
    // aws_config re-exports the profile-file types only under their deprecated names.
    #[allow(deprecated)]
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        let path = |name: &str| {
            self.vars
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        let files = || {
            ProfileFiles::builder()
                .with_file(ProfileFileKind::Config, path("AWS_CONFIG_FILE"))
                .with_file(
                    ProfileFileKind::Credentials,
                    path("AWS_SHARED_CREDENTIALS_FILE"),
                )
                .build()
        };
        let profile = path("AWS_PROFILE");
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_files(files())
            .profile_name(&profile)
            .build();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .profile_files(files())
            .profile_name(&profile)
            .credentials_provider(credentials)
            .load()
            .await
    }

    pub fn configure(&self, command: &mut Command) {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(self.vars());
    }
}

/// Runs `testbed/fixture_bootstrap.py` for the fixture: ECR repositories, the ECS
/// cluster and services, SPA buckets and distributions, the tfvars file, a credentials
/// profile `testbed`, and the terraform workspace `env`.
pub fn bootstrap(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &["--terraform"])
}

/// As after a real bootstrap: terraform initialised, workspace `env` selected, and a
/// first apply (tag `bootstrap`) so that state and outputs exist.
pub fn bootstrap_applied(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &["--initial-apply"])
}

/// Two environments in one checkout, each applied in an account of its own, with
/// profiles named after them; sandbox, bootstrapped last, is the selected workspace.
pub fn bootstrap_prod_and_sandbox(bed: &Testbed, fixture: &Fixture) -> (AwsEnv, AwsEnv) {
    let prod = bootstrap_with(
        bed,
        fixture,
        "prod",
        &["--initial-apply", "--profile", "prod"],
    );
    let sandbox = bootstrap_with(
        bed,
        fixture,
        "sandbox",
        &["--initial-apply", "--profile", "sandbox"],
    );
    (prod, sandbox)
}

/// The AWS side only: no terraform init/workspace.
pub fn bootstrap_aws(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &[])
}

/// Bootstraps with extra `fixture_bootstrap.py` arguments (`--profile NAME`, ...).
pub fn bootstrap_with(bed: &Testbed, fixture: &Fixture, env: &str, extra: &[&str]) -> AwsEnv {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/fixture_bootstrap.py");
    let output = Command::new(&bed.python)
        .arg(&script)
        .args(["--repo"])
        .arg(fixture.root())
        .args(["--env", env])
        .args(extra)
        .output()
        .expect("the bootstrap script runs");
    assert!(
        output.status.success(),
        "fixture bootstrap failed\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the bootstrap prints JSON");
    let aws_dir = fixture.path(".aws-test");
    let vars = vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            aws_dir.join("credentials").display().to_string(),
        ),
        (
            "AWS_CONFIG_FILE".to_owned(),
            aws_dir.join("config").display().to_string(),
        ),
        (
            "AWS_PROFILE".to_owned(),
            summary["profile"].as_str().unwrap_or("testbed").to_owned(),
        ),
    ];
    AwsEnv { summary, vars }
}

/// A current-thread runtime for SDK calls made by the tests themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Makes ECS run `image` for `service` behind terraform's back (a new task definition
/// revision, then UpdateService), or deletes the service when `image` is `None`.
pub fn set_live_image(env: &AwsEnv, service: &str, image: Option<&str>) {
    let cluster = env.summary["ecs_cluster"].as_str().unwrap().to_owned();
    runtime().block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
        let Some(image) = image else {
            ecs.delete_service()
                .cluster(&cluster)
                .service(service)
                .force(true)
                .send()
                .await
                .unwrap();
            return;
        };
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name(service)
            .image(image)
            .memory(128)
            .build();
        let td = ecs
            .register_task_definition()
            .family(service)
            .container_definitions(container)
            .send()
            .await
            .unwrap();
        let arn = td
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_owned();
        ecs.update_service()
            .cluster(&cluster)
            .service(service)
            .task_definition(arn)
            .send()
            .await
            .unwrap();
    });
}

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
