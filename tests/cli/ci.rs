//! The CI conventions (README "Deploying from CI"): JSON documents carry
//! `schema_version`, the common flags come from `DEPLOY_*` variables too, GitHub Actions
//! gets annotations and a step summary, and `minimum_version` in deploy.toml stops an
//! older binary.

use crate::support::{Deploy, Fixture};

#[test]
fn every_json_document_starts_with_its_schema_version() {
    let fixture = Fixture::new();
    let out = fixture
        .deploy()
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run();
    out.success();
    assert!(
        out.stdout.starts_with("{\n  \"schema_version\": 1,\n"),
        "{}",
        out.stdout
    );
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["schema_version"], 1);
    assert_eq!(
        plan["mode"], "full",
        "the plan's own keys stay at the top level"
    );
}

#[test]
fn common_flags_come_from_deploy_variables_too() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let out = fixture
        .deploy()
        .env("DEPLOY_OUTPUT", "json")
        .env("DEPLOY_VAR_FILE", "tfvars/sandbox.tfvars")
        .env("DEPLOY_LOCK_WAIT", "10m")
        .args(["--dry-run"])
        .run();
    out.success();
    let plan: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("JSON from DEPLOY_OUTPUT");
    assert!(
        plan["terraform"]
            .to_string()
            .contains("tfvars/sandbox.tfvars"),
        "DEPLOY_VAR_FILE: {plan}"
    );
    // A flag wins over its variable.
    fixture
        .deploy()
        .env("DEPLOY_OUTPUT", "json")
        .args(["--skip-tf", "--dry-run", "--output", "text"])
        .run()
        .success()
        .stdout_has("Plan: full deploy");
    // A pipeline-wide DEPLOY_LOCK_WAIT does not break a run that takes no lock.
    fixture
        .deploy()
        .env("DEPLOY_LOCK_WAIT", "10m")
        .args(["--skip-tf", "--dry-run"])
        .run()
        .success();
    // A bad value is a usage error, as the flag's.
    fixture
        .deploy()
        .env("DEPLOY_LOCK_WAIT", "soon")
        .args(["--dry-run"])
        .run()
        .usage_error()
        .stderr_has("--lock-wait");
    // The subcommands read them as well.
    fixture
        .deploy()
        .env("DEPLOY_VAR_FILE", "tfvars/none.tfvars")
        .args(["history"])
        .run()
        .usage_error()
        .stderr_has("tfvars/none.tfvars");
}

#[test]
fn help_names_the_variables() {
    let out = Deploy::new().args(["--help"]).run();
    out.success();
    for variable in [
        "DEPLOY_OUTPUT",
        "DEPLOY_LOCK_WAIT",
        "DEPLOY_VAR_FILE",
        "DEPLOY_REPO",
        "DEPLOY_PROFILE",
    ] {
        out.stdout_has(&format!("[env: {variable}="));
    }
}

#[test]
fn github_actions_gets_annotations_and_plain_runs_do_not() {
    let fixture = Fixture::new();
    fixture.write("deploy.toml", "[docker]\nconcurrency = 0\n");
    let out = fixture
        .deploy()
        .env("GITHUB_ACTIONS", "true")
        .args(["--skip-tf", "--dry-run"])
        .run();
    out.usage_error();
    assert!(
        out.stderr.starts_with("::error::invalid config ")
            && out.stderr.contains("docker.concurrency must be at least 1"),
        "{}",
        out.stderr
    );
    let out = fixture.deploy().args(["--skip-tf", "--dry-run"]).run();
    out.usage_error();
    assert!(
        out.stderr.starts_with("error: invalid config "),
        "{}",
        out.stderr
    );
}

#[test]
fn the_step_summary_gets_the_plan_as_text_whatever_the_output() {
    let fixture = Fixture::new();
    let summary = fixture.path("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    fixture
        .deploy()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run()
        .success();
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("# earlier step\n```text\nPlan: full deploy of "),
        "appended, as text:\n{text}"
    );
    assert!(
        text.contains("SERVICE ") && text.ends_with("```\n\n"),
        "{text}"
    );
}

#[test]
fn minimum_version_stops_an_older_binary_before_anything_else() {
    let fixture = Fixture::new();
    // A config from the future: a newer minimum and a key this binary does not know.
    fixture.write(
        "deploy.toml",
        "minimum_version = \"999.0.0\"\n[future]\nkey = 1\n",
    );
    let out = fixture.deploy().args(["--skip-tf", "--dry-run"]).run();
    out.usage_error()
        .stderr_has("this repository needs deploy 999.0.0 or newer (minimum_version)")
        .stderr_has(concat!("this is deploy ", env!("CARGO_PKG_VERSION")));
    assert!(!out.stderr.contains("future"), "{}", out.stderr);
    fixture.write(
        "deploy.toml",
        concat!("minimum_version = \"", env!("CARGO_PKG_VERSION"), "\"\n"),
    );
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .success();
}
