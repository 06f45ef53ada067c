//! How a command ended, in its JSON document (`outcome`, `error`), including the
//! failures that come before any result (the command line, the config, the checkout);
//! and the services a plan takes: those of the commit that is built, not the work tree.

use crate::support::{Deploy, Fixture, SERVICES};

/// The one JSON document on stdout, with `outcome` and `error` as every document has.
#[track_caller]
fn document(stdout: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|err| panic!("{err}: not one JSON document:\n{stdout}"));
    assert_eq!(value["schema_version"], 1, "{value}");
    value
}

#[test]
fn a_command_line_clap_refuses_is_still_one_json_document_when_json_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["--skip-tf", "--force", "--output", "json"],
            None,
            "--force",
        ),
        (&["--output=json", "status", "--bogus"], None, "--bogus"),
        (&["history", "--nope"], Some("json"), "--nope"),
    ];
    for (args, env, named) in cases {
        let mut deploy = Deploy::new().in_dir(dir.path()).args(*args);
        if let Some(value) = env {
            deploy = deploy.env("DEPLOY_OUTPUT", value);
        }
        let out = deploy.run();
        out.usage_error().stderr_has(named);
        let json = document(&out.stdout);
        assert_eq!(json["outcome"], "failed", "{args:?}");
        assert_eq!(json["error"]["exit_code"], 2, "{args:?}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{args:?}: {message}");
        assert!(!message.starts_with("error:"), "{message}");
    }
    // Text output, and help, print no document.
    let out = Deploy::new()
        .in_dir(dir.path())
        .args(["--skip-tf", "--force"])
        .run();
    out.usage_error();
    assert!(out.stdout.is_empty(), "{out}");
    let out = Deploy::new()
        .in_dir(dir.path())
        .args(["--output", "json", "--help"])
        .run();
    out.success().stdout_has("Usage:");
}

#[test]
fn a_failure_before_any_result_is_one_json_document_and_the_error_on_stderr() {
    // Outside a repository.
    let dir = tempfile::tempdir().unwrap();
    let out = Deploy::new()
        .in_dir(dir.path())
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run();
    out.usage_error()
        .stderr_has("is not inside a git repository");
    let json = document(&out.stdout);
    assert_eq!(json["outcome"], "failed");
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is not inside a git repository"));

    // A config error, from a command other than deploy.
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture.write("deploy.toml", "[services]\nnmes = [\"api\"]\n");
    let out = fixture
        .deploy()
        .args([
            "history",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--output",
            "json",
        ])
        .run();
    out.usage_error().stderr_has("nmes");
    let json = document(&out.stdout);
    assert_eq!(json["outcome"], "failed");
    assert!(json["error"]["message"].as_str().unwrap().contains("nmes"));
    assert_eq!(out.stdout.matches("schema_version").count(), 1, "{out}");
}

#[test]
fn a_dry_run_document_says_it_succeeded() {
    let fixture = Fixture::new();
    let out = fixture
        .deploy()
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run();
    out.success();
    let json = document(&out.stdout);
    assert_eq!(json["outcome"], "succeeded");
    assert!(json["error"].is_null(), "{json}");
    assert_eq!(json["image_tag"], fixture.short_sha());
}

#[test]
fn a_service_only_in_the_work_tree_is_left_out_and_named_with_how_to_include_it() {
    let fixture = Fixture::new();
    let sha = fixture.short_sha();
    fixture.write("services/ledger/package.json", "{\"name\": \"ledger\"}\n");
    let out = fixture
        .deploy()
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run();
    out.success()
        .stderr_has(&format!(
            "service ledger is in the work tree but not in commit {sha}"
        ))
        .stderr_has("git add services/ledger && git commit");
    let plan = document(&out.stdout);
    let names: Vec<&str> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SERVICES, "ledger is not in commit {sha}");

    // Asked for by name, it is an error that says the same.
    let out = fixture
        .deploy()
        .args(["--skip-tf", "--dry-run", "--services", "ledger"])
        .run();
    out.usage_error()
        .stderr_has(&format!(
            "--services: ledger is in the work tree but not in commit {sha}"
        ))
        .stderr_has("git add services/ledger && git commit");

    // Committed, it is planned at the new commit.
    let sha = fixture.commit_all("ledger");
    let out = fixture
        .deploy()
        .args(["--skip-tf", "--dry-run", "--services", "ledger"])
        .run();
    out.success()
        .stdout_has(&format!("ledger:{sha}"))
        .stderr_lacks("not in commit");
}
