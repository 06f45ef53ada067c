//! An unknown AWS profile is one usage error in every command that reads AWS: exit 2,
//! the same message naming the files looked in and the profiles there, before any AWS
//! call and before terraform (which reads AWS with the profile too).

use std::path::Path;

use crate::support::{Deploy, Fixture, Listener, OnAccept};

/// A HOME whose AWS config and credentials files define two profiles (`sandbox` in
/// the config file, `ci` in the credentials file), and a `terraform` on PATH that
/// records being run.
pub(crate) struct FakeHome {
    dir: tempfile::TempDir,
}

impl FakeHome {
    /// Its `terraform` fails at once (after recording that it ran).
    pub(crate) fn new() -> Self {
        Self::with_terraform("exit 1")
    }

    /// Its `terraform` knows the workspaces default, sandbox and prod, and prints
    /// `outputs` (`terraform output -json`'s shape) for every one.
    pub(crate) fn with_outputs(outputs: &str) -> Self {
        Self::with_terraform(&format!(
            "for arg; do case \"$arg\" in\n  workspace) printf '* default\\n  sandbox\\n  prod\\n'; exit 0;;\n  output) cat <<'EOF'\n{outputs}\nEOF\n  exit 0;;\nesac; done\nexit 1"
        ))
    }

    fn with_terraform(script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(
            aws.join("config"),
            "[profile sandbox]\nregion = eu-west-1\n[sso-session corp]\nsso_region = eu-west-1\n",
        )
        .unwrap();
        std::fs::write(
            aws.join("credentials"),
            "[ci]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = example\n",
        )
        .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let terraform = bin.join("terraform");
        std::fs::write(
            &terraform,
            format!(
                "#!/bin/sh\ntouch {}\n{script}\n",
                dir.path().join("terraform-ran").display()
            ),
        )
        .unwrap();
        let mut permissions = std::fs::metadata(&terraform).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&terraform, permissions).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn terraform_ran(&self) -> bool {
        self.path().join("terraform-ran").exists()
    }

    /// `deploy` in `fixture` with this HOME, AWS pointed at `aws` (which counts
    /// connections) and Docker at a socket that does not exist.
    pub(crate) fn deploy(&self, fixture: &Fixture, aws: &Listener) -> Deploy {
        let path = format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        fixture
            .deploy()
            .env("HOME", self.path())
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_PROFILE")
            .env("AWS_ENDPOINT_URL", format!("http://{}", aws.address))
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "example")
            .env(
                "DOCKER_HOST",
                format!("unix://{}/no-docker.sock", self.path().display()),
            )
            .env("PATH", path)
    }
}

#[test]
fn an_unknown_profile_is_the_same_usage_error_in_every_command_before_any_aws_call() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox").write_tfvars("prod");
    let home = FakeHome::new();
    let aws = Listener::start(OnAccept::Drop);
    let var_file = ["--var-file", "tfvars/sandbox.tfvars"];
    let both = [
        "--from",
        "tfvars/sandbox.tfvars",
        "--to",
        "tfvars/prod.tfvars",
    ];
    // (what, the flag that names the unknown profile, the arguments after `deploy`)
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("deploy", "--profile", [&var_file[..], &["-y"]].concat()),
        (
            "deploy --dry-run",
            "--profile",
            [&var_file[..], &["--dry-run"]].concat(),
        ),
        (
            "deploy --changed --dry-run",
            "--profile",
            [&var_file[..], &["--changed", "--dry-run"]].concat(),
        ),
        ("diff", "--profile", [&["diff"][..], &var_file].concat()),
        (
            "rollback",
            "--profile",
            [&["rollback", "HEAD"][..], &var_file, &["-y"]].concat(),
        ),
        ("status", "--profile", [&["status"][..], &var_file].concat()),
        (
            "status --compare",
            "--compare-profile",
            [
                &["status"][..],
                &var_file,
                &["--compare", "tfvars/prod.tfvars"],
            ]
            .concat(),
        ),
        ("prune", "--profile", [&["prune"][..], &var_file].concat()),
        (
            "promote",
            "--profile",
            [&["promote"][..], &both, &["-y"]].concat(),
        ),
        (
            "promote --profile-from",
            "--profile-from",
            [&["promote"][..], &both, &["-y"]].concat(),
        ),
        (
            "history",
            "--profile",
            [&["history"][..], &var_file].concat(),
        ),
        ("unlock", "--profile", [&["unlock"][..], &var_file].concat()),
        (
            "undo",
            "--profile",
            [&["undo"][..], &var_file, &["-y"]].concat(),
        ),
    ];
    let files = format!(
        "{} and {}",
        home.path().join(".aws/config").display(),
        home.path().join(".aws/credentials").display()
    );
    for (what, flag, args) in &cases {
        let out = home
            .deploy(&fixture, &aws)
            .args(args)
            .args([*flag, "nosuch"])
            .run();
        out.usage_error().stderr_has(&format!(
            "error: {flag} nosuch: no such AWS profile in {files}; profiles there: ci, sandbox. Pass one of those, or create it with `aws configure --profile nosuch`"
        ));
        assert_eq!(aws.accepted(), 0, "{what} called AWS:\n{out}");
        assert!(!home.terraform_ran(), "{what} ran terraform:\n{out}");
    }
    // A profile that exists passes the check: the run goes on to terraform (which fails
    // here), so the check is what stopped the runs above.
    let out = home
        .deploy(&fixture, &aws)
        .args([
            "status",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--profile",
            "ci",
        ])
        .run();
    out.stderr_lacks("no such AWS profile");
    assert!(home.terraform_ran(), "status with a known profile:\n{out}");
}

/// `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` move where profiles are looked
/// up, and the message names those files.
#[test]
fn the_profile_files_named_by_the_environment_are_the_ones_read_and_named() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let home = FakeHome::new();
    let aws = Listener::start(OnAccept::Drop);
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("aws-config");
    std::fs::write(&config, "[default]\nregion = eu-west-1\n[profile prod]\n").unwrap();
    let credentials = elsewhere.path().join("missing-credentials");
    let run = |profile: &str| {
        home.deploy(&fixture, &aws)
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .args(["--var-file", "tfvars/sandbox.tfvars", "--dry-run"])
            .args(["--profile", profile])
            .run()
    };
    run("sandbox").usage_error().stderr_has(&format!(
        "--profile sandbox: no such AWS profile in {} and {}; profiles there: default, prod.",
        config.display(),
        credentials.display()
    ));
    run("prod").success();
    assert_eq!(aws.accepted(), 0);
}
