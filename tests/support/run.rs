//! The `deploy` runs: the fluent [`Deploy`] builder, runs in the background, and
//! [`Outcome`], what a finished run printed and how it exited.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{AwsEnv, DockerUse, Testbed};

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
        // What CI runners and the README's CI workflow set would change what a test
        // reads: annotations instead of `error:`, results appended to the runner's step
        // summary, flags taken from the environment.
        for name in [
            "GITHUB_ACTIONS",
            "GITHUB_STEP_SUMMARY",
            "DEPLOY_OUTPUT",
            "DEPLOY_LOCK_WAIT",
            "DEPLOY_VAR_FILE",
            "DEPLOY_REPO",
            "DEPLOY_PROFILE_FROM",
        ] {
            command.env_remove(name);
        }
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

    /// The run leads a process group of its own, as a job at a terminal does, so that
    /// [`Background::interrupt_group`] signals it and all it starts in its group, as
    /// Ctrl-C at the terminal does.
    pub fn own_process_group(mut self) -> Self {
        std::os::unix::process::CommandExt::process_group(&mut self.command, 0);
        self
    }

    /// Runs deploy in a UTS namespace of its own whose host name is `name` (root only,
    /// as the test bed runs): what uname(2) says then differs from `/etc/hostname`, as
    /// on a Mac (which has none) or in a container given `--hostname`. deploy keeps its
    /// pid (unshare and the shell exec it).
    pub fn with_hostname(mut self, name: &str) -> Self {
        let mut wrapped = Command::new("unshare");
        wrapped
            .args(["--uts", "sh", "-c", r#"hostname "$0" && exec "$@""#, name])
            .arg(self.command.get_program())
            .args(self.command.get_args());
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped.stdin(Stdio::null());
        self.command = wrapped;
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

    /// Waits until api's image builds and the step `marker` names
    /// ([`super::Fixture::slow_build`]) runs on the daemon: the run is mid-build.
    #[track_caller]
    pub fn wait_for_the_slow_build(&mut self, marker: &str) {
        self.wait_for_line("the build", |line| line.contains("api: building"));
        assert!(
            super::eventually(std::time::Duration::from_secs(60), || {
                !super::processes_with(marker).is_empty()
            }),
            "the slow build step never ran on this machine's daemon"
        );
    }

    /// Sends SIGINT, as Ctrl-C or a script's `kill -INT` would.
    pub fn interrupt(&self) {
        self.send(Sig::Int);
    }

    /// Sends `signal` to deploy alone, as CI cancelling a job (`kill -TERM`), `docker
    /// stop` or a script does.
    pub fn send(&self, signal: Sig) {
        let status = Command::new("kill")
            .args([signal.flag(), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGINT to the run's whole process group ([`Deploy::own_process_group`]), as
    /// Ctrl-C at a terminal sends it.
    pub fn interrupt_group(&self) {
        let status = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Ctrl-C before the roll (during a build, push, upload): the run must end within
    /// 20 s with exit 130, saying it was interrupted and that nothing was applied.
    #[track_caller]
    pub fn interrupt_before_the_roll(self) -> Outcome {
        self.stop_before_the_roll(Sig::Int)
    }

    /// `signal` before the roll: the run must end within 20 s with the signal's exit
    /// code, saying what interrupted it and that nothing was applied.
    #[track_caller]
    pub fn stop_before_the_roll(self, signal: Sig) -> Outcome {
        let interrupted = std::time::Instant::now();
        self.send(signal);
        let ended = self.finish();
        ended
            .code(signal.exit_code())
            .printed(&format!("{}: builds", signal.says()))
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
    pub fn finish(mut self) -> Outcome {
        let mut stderr = self.seen;
        let waited = stderr.len();
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().unwrap();
        // stdout is drained on its own thread, so that neither pipe can fill and block.
        let reader = std::thread::spawn(move || {
            std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
            stdout
        });
        std::io::Read::read_to_string(&mut self.stderr, &mut stderr).unwrap();
        let status = self.child.wait().unwrap();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: reader.join().unwrap(),
            stderr,
            waited,
        }
    }
}

/// The signals that interrupt a run, with what the README promises for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGTERM: CI cancelling a job, `docker stop`, systemd, ECS.
    Term,
    /// SIGHUP: the terminal went away.
    Hup,
}

impl Sig {
    pub fn flag(self) -> &'static str {
        match self {
            Sig::Int => "-INT",
            Sig::Term => "-TERM",
            Sig::Hup => "-HUP",
        }
    }

    /// 128 + the signal's number (README "Exit codes").
    pub fn exit_code(self) -> i32 {
        match self {
            Sig::Int => 130,
            Sig::Term => 143,
            Sig::Hup => 129,
        }
    }

    /// How deploy's message begins.
    pub fn says(self) -> &'static str {
        match self {
            Sig::Int => "interrupted",
            Sig::Term => "interrupted by SIGTERM",
            Sig::Hup => "interrupted by SIGHUP",
        }
    }
}

/// What a finished run printed and how it exited, whether it ran in the foreground
/// ([`Deploy::run`]) or in the background ([`Background::finish`]).
pub struct Outcome {
    /// The exit code; -1 when a signal ended the run.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// How much of `stderr` a background run had read (in [`Background::wait_for_line`])
    /// before it finished; 0 for a foreground run.
    waited: usize,
}

impl From<Output> for Outcome {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            waited: 0,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.code, self.stderr, self.stdout
        )
    }
}

impl Outcome {
    /// Panics with everything the run printed unless it exited with `expected`.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\n{self}");
        self
    }

    /// stderr printed after what a background run waited for (all of it for a
    /// foreground run): what the run said once the test acted.
    pub fn rest(&self) -> &str {
        &self.stderr[self.waited..]
    }

    /// Panics unless the rest of stderr (see [`Outcome::rest`]) or stdout contains
    /// `needle`.
    #[track_caller]
    pub fn printed(&self, needle: &str) -> &Self {
        assert!(
            self.rest().contains(needle) || self.stdout.contains(needle),
            "expected {needle:?} in the output:\n{self}"
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
