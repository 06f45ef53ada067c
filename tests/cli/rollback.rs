//! `deploy rollback <SHA>` before it touches anything: the dry-run plan of an earlier
//! commit's images, and a revision git does not know. The roll itself is in the
//! `testbed` target's `rollback` module.

use crate::support::Fixture;

#[test]
fn rollback_dry_run_plans_the_earlier_tag_and_skip_spas_leaves_spas() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let earlier = fixture.short_sha();
    fixture.write("services/api/src/extra.ts", "export {};\n");
    fixture.commit_all("api: later");
    let head = fixture.short_sha();
    let out = fixture
        .deploy()
        .args([
            "rollback",
            &earlier,
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--dry-run",
        ])
        .run();
    out.success()
        .stdout_has(&format!("Plan: rollback to {earlier} ("))
        .stdout_has(&format!("HEAD is {head}"))
        .stdout_has(&format!("api:{earlier}"))
        .stdout_has(&format!("rolled back to {earlier}: its image, not rebuilt"))
        .stdout_has("--skip-spas")
        .stdout_has(&format!(
            "terraform: terraform -chdir=infra/terraform/aws plan -input=false -out=roll.tfplan -var-file=tfvars/sandbox.tfvars -var image_tag={earlier} && terraform -chdir=infra/terraform/aws apply -input=false roll.tfplan"
        ))
        .stdout_lacks(&format!("api:{head}"));

    // --services narrows it to a targeted roll; JSON says what it is.
    let out = fixture
        .deploy()
        .args([
            "rollback",
            "HEAD~1",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "api",
            "--dry-run",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(plan["mode"], "rollback");
    assert_eq!(plan["image_tag"], earlier.as_str());
    assert_eq!(plan["head"]["short_sha"], head.as_str());
    assert!(plan["rollback_to"]["sha"]
        .as_str()
        .unwrap()
        .starts_with(&earlier));
    assert_eq!(plan["terraform"]["apply"]["roll"]["kind"], "only");
    assert_eq!(plan["terraform"]["apply"]["roll"]["services"][0], "api");
}

#[test]
fn rollback_to_a_revision_git_does_not_know_is_a_usage_error() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture
        .deploy()
        .args([
            "rollback",
            "deadbee",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "-y",
        ])
        .run()
        .usage_error()
        .stderr_has("\"deadbee\" is not a commit in")
        .stderr_has("give a SHA from `git log`");
}

/// `deploy promote` with one environment as both source and target: a usage error
/// (exit 2) before anything is read from AWS; and a missing source tfvars file too.
#[test]
fn promote_needs_two_different_environments_with_tfvars() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture
        .deploy()
        .args([
            "promote",
            "--from",
            "tfvars/sandbox.tfvars",
            "--to",
            "tfvars/sandbox.tfvars",
            "--dry-run",
        ])
        .run()
        .usage_error()
        .stderr_has("--from and --to are the same environment (sandbox)");
    fixture
        .deploy()
        .args([
            "promote",
            "--from",
            "tfvars/staging.tfvars",
            "--to",
            "tfvars/sandbox.tfvars",
            "--dry-run",
        ])
        .run()
        .usage_error()
        .stderr_has("--from tfvars/staging.tfvars: no such file");
}
