//! The fixture platform (`tests/fixtures/platform`) as a real git repository in a temp
//! dir, and the argument sets of its usual runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{unique_marker, AwsEnv, Deploy, Outcome, Testbed};

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

/// Build and push `services` (comma-separated), unattended: no SPAs, no terraform.
pub fn push(services: &str) -> [&str; 7] {
    [
        "--skip-tf",
        "--skip-spas",
        "--services",
        services,
        "--profile",
        "testbed",
        "-y",
    ]
}

/// A deploy to the sandbox environment, unattended.
pub const DEPLOY_SANDBOX: [&str; 5] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
    "-y",
];

/// A deploy of every service to the sandbox environment without SPAs, unattended.
pub const DEPLOY_SERVICES: [&str; 6] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--skip-spas",
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

    /// After a run a signal interrupted, under the lock: its history record says
    /// `interrupted` (not `running`), no deploy lock is left, nothing runs in the checkout
    /// (terraform, its provisioners, build tools), and terraform's state lock is free.
    #[track_caller]
    pub fn assert_interrupted_cleanly(&self, env: &AwsEnv, bed: &Testbed) {
        let history = self
            .deploy()
            .aws(env, bed)
            .args(["history", "--var-file", "tfvars/sandbox.tfvars"])
            .args(["--profile", "testbed", "--output", "json"])
            .run();
        history.success();
        let view: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
        assert_eq!(view["runs"][0]["state"], "interrupted", "{view:#}");
        // What terraform's provisioners started ends with the SIGINT deploy passed on;
        // the kernel may take a moment to let the last one go.
        super::eventually(std::time::Duration::from_secs(3), || {
            super::processes_in(self.root()).is_empty()
        });
        let left: Vec<String> = super::processes_in(self.root())
            .into_iter()
            .map(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                format!(
                    "{pid} {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                )
            })
            .collect();
        assert!(left.is_empty(), "processes left in the checkout: {left:#?}");
        self.unlock(env, bed)
            .success()
            .stdout_has("no deploy lock held for sandbox");
        let plan = self.terraform(
            env,
            bed,
            &[
                "plan",
                "-input=false",
                "-refresh=false",
                "-lock-timeout=0s",
                "-no-color",
                "-var-file=tfvars/sandbox.tfvars",
                "-var=image_tag=bootstrap",
            ],
        );
        let stderr = String::from_utf8_lossy(&plan.stderr);
        assert!(
            plan.status.success(),
            "terraform's state lock is free: {stderr}"
        );
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

    /// Runs the test bed's terraform in the fixture's terraform root, as the operator
    /// would beside a deploy: `-chdir=infra/terraform/aws` and the environment's profile.
    pub fn terraform(&self, env: &AwsEnv, bed: &Testbed, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(&bed.terraform);
        command
            .arg("-chdir=infra/terraform/aws")
            .args(args)
            .current_dir(self.root());
        env.configure(&mut command);
        command.output().expect("terraform runs")
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
