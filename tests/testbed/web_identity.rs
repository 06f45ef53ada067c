//! CI credentials (README "Deploying from CI"): a role assumed with a web identity token,
//! as OIDC providers hand CI jobs (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`),
//! works through the AWS SDK's default chain with nothing of deploy's own: the test
//! bed's STS answers AssumeRoleWithWebIdentity with keys of the role's account.

use crate::support::{bootstrap_applied, Fixture, Testbed};

#[test]
fn a_web_identity_role_reads_its_account_through_the_default_chain() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let account = env.summary["account_id"].as_str().unwrap();
    let cluster = env.summary["ecs_cluster"].as_str().unwrap();
    let endpoint = env.summary["endpoint_url"].as_str().unwrap();
    let token = fixture.path("oidc-token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmRlcGxveSJ9.c2ln\n",
    )
    .unwrap();
    // No profile, no keys, no AWS files: only the web identity.
    let no_files = fixture.path("no-aws-files");
    std::fs::write(&no_files, "").unwrap();
    let status = |token_file: &std::path::Path| {
        fixture
            .deploy()
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_CONFIG_FILE", &no_files)
            .env("AWS_SHARED_CREDENTIALS_FILE", &no_files)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
            .env(
                "AWS_ROLE_ARN",
                format!("arn:aws:iam::{account}:role/deploy-ci"),
            )
            .env("AWS_ROLE_SESSION_NAME", "github-actions")
            .args([
                "status",
                "--var-file",
                "tfvars/sandbox.tfvars",
                "--output",
                "json",
            ])
            .run()
    };
    let out = status(&token);
    out.success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["cluster"], cluster, "{json}");
    assert!(
        json["services"].as_array().is_some_and(|s| !s.is_empty()),
        "the role's account's ECS services: {json}"
    );
    // The token is what the credentials come from: without it there are none.
    let out = status(&fixture.path("no-such-token"));
    assert_eq!(out.code, 1, "{out}");
    assert!(
        !out.stderr.contains("eyJ"),
        "the token is never printed: {out}"
    );
}
