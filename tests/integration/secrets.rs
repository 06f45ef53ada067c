//! No secret is printed or logged, at any log level (SPEC §4): not the ECR token, not
//! the AWS secret key or session token, not the values in the tfvars file.

use base64::Engine as _;

use crate::support::{bootstrap_applied, AwsEnv, Fixture, Testbed};

fn ecr_password(env: &AwsEnv) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let ecr = aws_sdk_ecr::Client::new(&env.sdk().await);
            let token = ecr.get_authorization_token().send().await.unwrap();
            let token = token.authorization_data()[0]
                .authorization_token()
                .unwrap()
                .to_owned();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap();
            String::from_utf8(decoded)
                .unwrap()
                .split_once(':')
                .unwrap()
                .1
                .to_owned()
        })
}

/// The value of `key = value` in an ini or tfvars file.
fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("{key} not found"))
}

#[test]
fn a_traced_full_deploy_prints_no_secret() {
    let Some(bed) = Testbed::get("a_traced_full_deploy_prints_no_secret") else {
        return;
    };
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let credentials = std::fs::read_to_string(fixture.path(".aws-test/credentials")).unwrap();
    let tfvars =
        std::fs::read_to_string(fixture.path("infra/terraform/aws/tfvars/sandbox.tfvars")).unwrap();
    let secrets = [
        ("the ECR password", ecr_password(&env)),
        (
            "the AWS secret key",
            value_of(&credentials, "aws_secret_access_key"),
        ),
        (
            "the AWS session token",
            value_of(&credentials, "aws_session_token"),
        ),
        ("a tfvars value", value_of(&tfvars, "db_password")),
    ];
    for (what, secret) in &secrets {
        assert!(secret.len() >= 8, "{what} looks empty: {secret:?}");
    }

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("RUST_LOG", "trace")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "auth",
            "--profile",
            "testbed",
            "-y",
            "-vv",
        ])
        .run();
    out.success();
    assert!(
        out.stderr.lines().count() > 100,
        "trace logging is on: {} lines",
        out.stderr.lines().count()
    );
    let logs =
        std::fs::read_dir(fixture.path(&format!(".git/deploy/logs/{}", fixture.short_sha())))
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
    for (what, secret) in &secrets {
        for (channel, text) in [
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("build logs", &logs),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "{what} appears in {channel}"
            );
        }
    }
}
