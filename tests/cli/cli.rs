//! The command-line contract (SPEC §2): help, version, and every usage error exits 2
//! naming the flags, before anything touches AWS, Docker or terraform.

use crate::support::{Deploy, Fixture};

fn outside_any_repo() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn help_lists_every_flag_of_the_runbook() {
    let out = Deploy::new().args(["--help"]).run();
    out.success();
    for flag in [
        "--var-file",
        "--changed",
        "--services",
        "--skip-spas",
        "--skip-tf",
        "--profile",
        "--yes",
        "--dry-run",
        "--output",
        "--version",
    ] {
        out.stdout_has(flag);
    }
    insta::assert_snapshot!("help", out.stdout);
}

#[test]
fn version_prints_the_crate_version() {
    Deploy::new()
        .args(["--version"])
        .run()
        .success()
        .stdout_has(concat!("deploy ", env!("CARGO_PKG_VERSION")));
}

/// Parse-time mistakes: clap rejects them before the run starts, so they hold even
/// outside a repository (nothing is read).
#[test]
fn parse_time_usage_errors_exit_2_naming_the_flags() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("var_file_required", &[], &["--var-file"]),
        (
            "changed_with_services",
            &[
                "--var-file",
                "tfvars/sandbox.tfvars",
                "--changed",
                "--services",
                "api",
            ],
            &["--changed", "--services"],
        ),
        (
            "changed_with_skip_tf",
            &["--changed", "--skip-tf"],
            &["--changed", "--skip-tf"],
        ),
        (
            "services_without_value",
            &["--skip-tf", "--services"],
            &["--services"],
        ),
        (
            "unknown_output",
            &["--skip-tf", "--output", "yaml"],
            &["--output", "yaml"],
        ),
        ("unknown_flag", &["--skip-tf", "--force"], &["--force"]),
        (
            "verbose_with_quiet",
            &["--skip-tf", "-v", "--quiet"],
            &["--verbose", "--quiet"],
        ),
    ];
    let dir = outside_any_repo();
    for (name, args, named) in cases {
        let out = Deploy::new().in_dir(dir.path()).args(*args).run();
        out.usage_error();
        assert!(out.stdout.is_empty(), "{name}: stdout must stay empty");
        for flag in *named {
            out.stderr_has(flag);
        }
        insta::assert_snapshot!(format!("usage_{name}"), out.stderr);
    }
}

#[test]
fn outside_a_repository_is_a_usage_error() {
    let dir = outside_any_repo();
    let out = Deploy::new()
        .in_dir(dir.path())
        .args(["--skip-tf", "--dry-run"])
        .run();
    out.usage_error()
        .stderr_has("is not inside a git repository")
        .stderr_has("--repo");
}

#[test]
fn a_repository_without_commits_is_a_usage_error() {
    let dir = outside_any_repo();
    std::fs::create_dir_all(dir.path().join("services/api")).unwrap();
    std::fs::write(dir.path().join("services/api/package.json"), "{}").unwrap();
    let status = std::process::Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    Deploy::new()
        .in_dir(dir.path())
        .args(["--skip-tf", "--skip-spas", "--dry-run"])
        .run()
        .usage_error()
        .stderr_has("has no commits yet");
}

#[test]
fn bash_completion_loads_and_completes_flags() {
    let script = Deploy::new().args(["completions", "bash"]).run();
    script.success();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deploy.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(deploy --sk); COMP_CWORD=1; _deploy deploy --sk deploy; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    let completed = String::from_utf8_lossy(&output.stdout);
    assert!(
        completed.contains("--skip-spas") && completed.contains("--skip-tf"),
        "{completed:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_man_page_renders() {
    Deploy::new()
        .args(["man"])
        .run()
        .success()
        .stdout_has(".TH deploy 1")
        .stdout_has("var\\-file")
        // No page per command is referenced; the commands, environment, files and exit
        // status have sections of their own.
        .stdout_lacks("deploy\\-status(1)")
        .stdout_has(".SH \"COMMANDS\"")
        .stdout_has("deploy status \\-\\-help")
        .stdout_has(".SH \"ENVIRONMENT\"")
        .stdout_has("DEPLOY_VAR_FILE")
        .stdout_has("NO_COLOR")
        .stdout_has(".SH \"FILES\"")
        .stdout_has("deploy.toml")
        .stdout_has(".SH \"EXIT STATUS\"");
}

/// `deploy status | head -3`: once the reader has gone, deploy ends quietly with success,
/// as ripgrep does, whichever command was printing (clap_complete used to panic, the rest
/// to print `error: Broken pipe`).
#[test]
fn a_closed_stdout_ends_the_run_quietly_with_success() {
    let fixture = Fixture::new();
    let commands: [&[&str]; 4] = [
        &["completions", "bash"],
        &["man"],
        &["--skip-tf", "--skip-spas", "--dry-run"],
        &["--skip-tf", "--skip-spas", "--dry-run", "--output", "json"],
    ];
    for args in commands {
        let out = fixture.deploy().args(args).run_with_stdout_closed();
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "deploy {args:?} with stdout closed"
        );
    }
}

#[test]
fn no_terminal_and_no_yes_fails_at_once() {
    let fixture = Fixture::new();
    fixture
        .deploy()
        .args(["--skip-tf", "--skip-spas"])
        .run()
        .usage_error()
        .stderr_has("pass -y");
}

/// `-C`, `-q`, `--output`, `--profile` and `-v` are read before a command as after it;
/// a deploy's own flags are not taken with a command.
#[test]
fn global_options_are_read_before_a_command() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let earlier = fixture.short_sha();
    let elsewhere = outside_any_repo();
    let root = fixture.root().display().to_string();
    let out = Deploy::new()
        .in_dir(elsewhere.path())
        .args(["-C", &root, "-q", "--output", "json", "rollback", &earlier])
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--dry-run",
        ])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(plan["mode"], "rollback");

    Deploy::new()
        .in_dir(fixture.root())
        .args(["--skip-tf", "status"])
        .run()
        .usage_error()
        .stderr_has("--skip-tf is a flag of a deploy, not of 'deploy status'");
    Deploy::new()
        .in_dir(fixture.root())
        .args(["--var-file", "tfvars/sandbox.tfvars", "--changed", "graph"])
        .run()
        .usage_error()
        .stderr_has("use '--changed=graph'");
}

#[test]
fn a_missing_repo_dir_is_named_as_missing() {
    let dir = outside_any_repo();
    Deploy::new()
        .in_dir(dir.path())
        .args(["-C", "no-such-dir", "status"])
        .run()
        .usage_error()
        .stderr_has("-C/--repo no-such-dir: does not exist")
        .stderr_lacks("not inside a git repository");
}

#[test]
fn a_bare_deploy_names_the_commands_and_help_help_is_the_help() {
    let dir = outside_any_repo();
    Deploy::new()
        .in_dir(dir.path())
        .run()
        .usage_error()
        .stderr_has("--var-file")
        .stderr_has("status, diff, rollback");
    Deploy::new()
        .args(["help", "--help"])
        .run()
        .success()
        .stdout_has("Usage: deploy");
}

/// A missing `--to` is named as `--to`, with the tfvars files that do exist.
#[test]
fn promote_names_a_missing_to_file_and_lists_the_tfvars_there() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture
        .deploy()
        .args(["promote", "--from", "tfvars/sandbox.tfvars"])
        .args(["--to", "tfvars/prod.tfvars", "--dry-run"])
        .run()
        .usage_error()
        .stderr_has("--to tfvars/prod.tfvars: no such file")
        .stderr_has("tfvars/sandbox.tfvars")
        .stderr_lacks("--var-file");
}
