//! Preflight stops the run before any build, with one clear message each: terraform
//! missing or too old, credentials that do not work. (Workspace mismatch, missing
//! var-file and an unreachable Docker daemon are tested beside their features.)

use crate::support::{bootstrap_applied, Fixture, Testbed, DEPLOY_SANDBOX, DEPLOY_SERVICES};

/// A directory holding only a fake `terraform` that reports `version`.
fn fake_terraform(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terraform");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho '{{\"terraform_version\":\"{version}\",\"platform\":\"linux_amd64\"}}'\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn terraform_missing_or_too_old_stops_before_any_build() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let args = DEPLOY_SERVICES;

    let old = fake_terraform("1.5.7");
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("PATH", old.path())
        .args(args)
        .run();
    out.code(1);
    assert!(
        !out.stdout.contains("Summary"),
        "nothing was built: {}",
        out.stdout
    );
    insta::assert_snapshot!("preflight_terraform_too_old", out.stderr);

    let empty = tempfile::tempdir().unwrap();
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("PATH", empty.path())
        .args(args)
        .run();
    out.code(1);
    assert!(
        !out.stdout.contains("Summary"),
        "nothing was built: {}",
        out.stdout
    );
    insta::assert_snapshot!("preflight_terraform_missing", out.stderr);
}

#[test]
fn a_profile_without_credentials_names_the_profile_and_the_fix() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = crate::support::bootstrap_aws(&bed, &fixture, "sandbox");
    let config = fixture.path(".aws-test/config");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[profile broken]\nregion = us-east-1\n"),
    )
    .unwrap();
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--skip-tf", "--skip-spas", "--profile", "broken", "-y"])
        .run();
    out.code(1)
        .stderr_has("aws sso login --profile broken")
        .stderr_has("nothing was touched");
    assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
}

#[test]
fn a_missing_spa_build_tool_stops_before_any_build() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // terraform (the test bed's shim) is there, node is not.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("PATH", bed.terraform.parent().unwrap())
        .args(DEPLOY_SANDBOX)
        .run();
    out.code(1)
        .stderr_has("node (the build command of SPA admin-ui: `node build.mjs`) is not installed")
        .stderr_has("--skip-spas");
    assert!(
        !out.stdout.contains("Summary"),
        "nothing was built: {}",
        out.stdout
    );
}

#[test]
fn preflight_warns_when_the_docker_host_has_less_free_disk_than_a_deploy_needs() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = crate::support::bootstrap_aws(&bed, &fixture, "sandbox");
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    let args = crate::support::PUSH_API;

    // No Docker host has a petabyte free: warned, and the deploy goes on.
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[docker]\nmin_free_gb = 1000000\n"),
    );
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(args)
        .run()
        .success()
        .stderr_has("warning: the Docker host has")
        .stderr_has("less than the 1000000 GB a full deploy needs (docker.min_free_gb)")
        .stderr_has("`deploy prune`")
        .stdout_has("built, pushed");

    // The free space comes from the system, not from a `df` on PATH (there is none here).
    let empty = tempfile::tempdir().unwrap();
    fixture.write("services/api/src/free.ts", "export {};\n");
    fixture.commit_all("another commit");
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("PATH", empty.path())
        .args(args)
        .run()
        .success()
        .stderr_has("warning: the Docker host has")
        .stdout_has("built, pushed");

    // Every host has 0 GB free: no warning.
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[docker]\nmin_free_gb = 0\n"),
    );
    let out = fixture.deploy().aws(&env, &bed).args(args).run();
    out.success().stdout_has("already in registry");
    assert!(!out.stderr.contains("GB free"), "{}", out.stderr);
}
