//! Two environments in one checkout (sandbox and prod, each in its own AWS account):
//! the read-only commands read the environment their `--var-file` names, whichever
//! terraform workspace is selected.

use crate::support::{bootstrap_prod_and_sandbox, Fixture, Testbed};

#[test]
fn status_prune_and_unlock_read_the_environment_their_var_file_names() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let (prod, sandbox) = bootstrap_prod_and_sandbox(&bed, &fixture);
    let prod_run = |args: &[&str]| {
        fixture
            .deploy()
            .aws(&sandbox, &bed)
            .env_remove("AWS_PROFILE")
            .args(args)
            .args(["--var-file", "tfvars/prod.tfvars", "--profile", "prod"])
            .run()
    };

    let status = prod_run(&["status", "--output", "json"]);
    status.success();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["cluster"], "platform-prod", "{json}");
    // `--services`: those services only, and no SPAs.
    let status = prod_run(&["status", "--services", "auth,api", "--output", "json"]);
    status.success();
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let names = |key: &str, field: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry[field].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("services", "name"), ["api", "auth"], "{json}");
    assert_eq!(names("digests", "service"), ["api", "auth"], "{json}");
    assert!(names("spas", "name").is_empty(), "{json}");

    prod_run(&["prune", "--dry-run"])
        .success()
        .stdout_has("dry run");

    // A stale prod lock, in prod's own lock bucket.
    let bucket = prod.summary["deploy_lock_bucket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        Some(bucket.as_str()),
        sandbox.summary["deploy_lock_bucket"].as_str()
    );
    crate::support::runtime().block_on(async {
        let s3 = deploy::aws::s3(&prod.sdk().await);
        s3.put_object()
            .bucket(&bucket)
            .key("deploy-lock/prod.json")
            .body(
                br#"{"user":"ops","host":"gone","pid":1,"since":0,"git_sha":"abc","command":"deploy","token":"t"}"#
                    .to_vec()
                    .into(),
            )
            .send()
            .await
            .unwrap();
    });
    prod_run(&["unlock"])
        .success()
        .stdout_has("broke the deploy lock of prod, held by ops@gone");

    // An environment with tfvars but no workspace yet: said so, and terraform is not
    // left to create an empty workspace by reading it.
    let tfvars =
        std::fs::read_to_string(fixture.path("infra/terraform/aws/tfvars/prod.tfvars")).unwrap();
    fixture.write("infra/terraform/aws/tfvars/staging.tfvars", &tfvars);
    fixture
        .deploy()
        .aws(&sandbox, &bed)
        .args(["status", "--var-file", "tfvars/staging.tfvars"])
        .run()
        .usage_error()
        .stderr_has("the terraform workspace \"staging\" (named by the tfvars file) does not exist")
        .stderr_has("workspace new staging");
    assert!(!fixture
        .path("infra/terraform/aws/terraform.tfstate.d/staging")
        .exists());
}
