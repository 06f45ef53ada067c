//! No secret is printed or logged, at any log level (SPEC §4): not the ECR token, not
//! the AWS secret key or session token, not the values in the tfvars file.

use base64::Engine as _;

use crate::support::private_registry::{build_from, path_with, PrivateRegistry};
use crate::support::{
    bootstrap_applied, bootstrap_aws, runtime, AwsEnv, Fixture, Testbed, PUSH_API,
};

/// The ECR authorization token as moto hands it out, and the password inside it (the
/// token is base64 of `AWS:<password>`): the token is the registry credential itself.
fn ecr_token_and_password(env: &AwsEnv) -> (String, String) {
    let token = runtime().block_on(async {
        let ecr = aws_sdk_ecr::Client::new(&env.sdk().await);
        let token = ecr.get_authorization_token().send().await.unwrap();
        token.authorization_data()[0]
            .authorization_token()
            .unwrap()
            .to_owned()
    });
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    let password = String::from_utf8(decoded)
        .unwrap()
        .strip_prefix("AWS:")
        .expect("moto's token is base64 of AWS:<password>")
        .to_owned();
    (token, password)
}

/// Strings shaped like the temporary credentials moto's STS hands out (moto/sts/utils.py,
/// moto/iam/utils.py), fresh at every AssumeRole, so they cannot be known in advance: an
/// access key id `ASIA` + 16 of `[A-Z0-9]`, a 40-character secret of `[A-Za-z0-9+/]`, a
/// session token starting `FQoGZXIvYXdzEBYaD`. Git SHAs (40 hex digits) are not secrets.
fn credential_shapes(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let key_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    for (at, _) in text.match_indices("ASIA") {
        let key = text.get(at..at + 20).unwrap_or("");
        let before = text[..at].chars().next_back();
        let after = text[at..].chars().nth(20);
        if key.len() == 20
            && key.chars().all(key_char)
            && !before.is_some_and(key_char)
            && !after.is_some_and(key_char)
        {
            found.push(key);
        }
    }
    let secret_char = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    for run in text.split(|c: char| !secret_char(c)) {
        let git_sha = run.chars().all(|c| c.is_ascii_hexdigit());
        if run.len() == 40 && !git_sha {
            found.push(run);
        }
        if run.contains("FQoGZXIvYXdzEBYaD") {
            found.push(run);
        }
    }
    found
}

/// Where `secret` appears in `text`: the first line holding it, with it blanked out.
fn leak(text: &str, secret: &str) -> Option<String> {
    text.lines()
        .find(|line| line.contains(secret))
        .map(|line| line.replace(secret, "<SECRET>"))
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
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // The run goes through a profile that assumes a role (as with SSO or a CI role): deploy
    // itself calls STS AssumeRole, and gets temporary keys no one else has seen.
    let config = fixture.path(".aws-test/config");
    let mut profiles = std::fs::read_to_string(&config).unwrap();
    profiles.push_str(&format!(
        "\n[profile deployer]\nrole_arn = arn:aws:iam::{}:role/deployer\nsource_profile = testbed\nregion = us-east-1\nendpoint_url = {}\n",
        env.summary["account_id"].as_str().unwrap(),
        bed.endpoint
    ));
    std::fs::write(&config, profiles).unwrap();
    let credentials = std::fs::read_to_string(fixture.path(".aws-test/credentials")).unwrap();
    let tfvars =
        std::fs::read_to_string(fixture.path("infra/terraform/aws/tfvars/sandbox.tfvars")).unwrap();
    let (ecr_token, ecr_password) = ecr_token_and_password(&env);
    let secrets = [
        ("the ECR authorization token", ecr_token),
        ("the ECR password", ecr_password),
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
            "deployer",
            "-y",
            "-vv",
        ])
        .run();
    // Pushed, so the run did fetch the ECR token; through the role it assumed.
    out.success()
        .stderr_has(":assumed-role/deployer/")
        .stdout_has(&format!("{}/auth:{}", bed.registry, fixture.short_sha()));
    // Verbose logging reached the run: the libraries that talk to AWS and the registry
    // log at DEBUG under their caps (about 40 lines in this run; none without RUST_LOG).
    // Counting every stderr line instead was flaky: terraform's and the progress lines
    // vary, and the total sat at 99-107 around the old bound of 100.
    let debug_lines = out.stderr.lines().filter(|l| l.contains(" DEBUG ")).count();
    assert!(
        debug_lines > 20,
        "verbose logging is on: {debug_lines} DEBUG lines of {}",
        out.stderr.lines().count()
    );
    // deploy's own request log (`-vv`): each AWS request named when sent and answered,
    // with its status and time; the leak checks below cover these lines too.
    let answered = |call: &str| {
        out.stderr.lines().any(|line| {
            line.contains("AWS request answered")
                && line.contains(&format!("call={call} at "))
                && line.contains("status=200")
                && line.contains("millis=")
        })
    };
    for call in ["ecr:GetAuthorizationToken", "ecs:DescribeServices"] {
        assert!(
            answered(call),
            "no answered {call} in the request log:\n{}",
            out.stderr
        );
    }
    assert!(out
        .stderr
        .contains("AWS request sent call=ecr:GetAuthorizationToken at "));
    let logs =
        std::fs::read_dir(fixture.path(&format!(".git/deploy/logs/{}", fixture.short_sha())))
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
    for (channel, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("build logs", &logs),
    ] {
        for (what, secret) in &secrets {
            if let Some(line) = leak(text, secret) {
                panic!("{what} appears in {channel}: {line}");
            }
        }
        if let Some(shape) = credential_shapes(text).first() {
            let line = leak(text, shape).unwrap();
            panic!("something shaped like a temporary AWS credential appears in {channel}: {line}");
        }
    }
}

#[test]
fn credential_shapes_are_told_from_git_shas() {
    let key = "ASIARZPUZDIKDRHOVNTL";
    let secret = "kRjGq0B1S2/+uZ4xW9vT7yLmNp3cE5aD8fH6iJ0o";
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let text = format!(
        "Credential={key}/20260716/us-east-1/sts <SecretAccessKey>{secret}</SecretAccessKey> at {sha} FQoGZXIvYXdzEBYaDCSd+x/y"
    );
    assert_eq!(
        credential_shapes(&text),
        [key, secret, "FQoGZXIvYXdzEBYaDCSd+x/y"]
    );
    assert!(credential_shapes(&format!("commit {sha}, key ASIA{sha}")).is_empty());
}

/// The plan's review shows no value, sensitive or not: terraform's `show -json` holds
/// the tfvars values and the task definition's secret (db_password, which terraform
/// marks in after_sensitive), old and new, and only the attribute's name may get out.
#[test]
fn the_plan_review_names_a_changed_secret_but_never_shows_it() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let path = fixture.path("infra/terraform/aws/tfvars/sandbox.tfvars");
    let tfvars = std::fs::read_to_string(&path).unwrap();
    let old = value_of(&tfvars, "db_password");
    let new = format!("rotated-{}", &old[old.len() - 8..]);
    std::fs::write(&path, tfvars.replace(&old, &new)).unwrap();

    for output in ["text", "json"] {
        let out = fixture
            .deploy()
            .aws(&env, &bed)
            .env("RUST_LOG", "trace")
            .args([
                "diff",
                "--var-file",
                "tfvars/sandbox.tfvars",
                "--services",
                "auth",
                "--profile",
                "testbed",
                "--output",
                output,
                "-vv",
            ])
            .run();
        out.success()
            .stdout_has("triggers_replace.db_password (sensitive)");
        for (channel, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for (what, secret) in [("the old db_password", &old), ("the new db_password", &new)] {
                if let Some(line) = leak(text, secret) {
                    panic!("{what} appears in {channel} ({output}): {line}");
                }
            }
        }
    }
}

/// A base image's registry login (from a credential helper for BuildKit's session, from
/// the config file for the classic builder's `X-Registry-Config`) is used, never shown:
/// not the password, not the config file's base64 `auth`.
#[test]
fn a_private_base_images_login_is_never_printed_at_any_log_level() {
    let bed = Testbed::get();
    let private = PrivateRegistry::get();
    let fixture = Fixture::unique();
    build_from(&fixture, &private.base_image);
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let helper = private.credential_helper("deploy-testbed");
    let helper_config = PrivateRegistry::docker_config(r#"{"credsStore": "deploy-testbed"}"#);
    let file_config = private.logged_in_config();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", private.user, private.password));
    let secrets = [
        ("the registry password", private.password.clone()),
        ("the config file's auth", auth),
    ];

    let buildkit = fixture
        .deploy()
        .aws(&env, &bed)
        .env("RUST_LOG", "trace")
        .env("DOCKER_CONFIG", helper_config.path())
        .env("PATH", path_with(helper.path()))
        .args(PUSH_API)
        .args(["-vv"])
        .run();
    buildkit.success();
    let classic_image = private.unique_base_image();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("FROM {classic_image}\nARG SERVICE\nRUN echo \"$SERVICE\" > /SERVICE\n"),
    );
    fixture.commit_all("a classic Dockerfile on a private base image");
    let classic = fixture
        .deploy()
        .aws(&env, &bed)
        .env("RUST_LOG", "trace")
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", file_config.path())
        .args(PUSH_API)
        .args(["-vv"])
        .run();
    let _ = std::process::Command::new("docker")
        .args(["rmi", &classic_image])
        .output();
    classic.success();

    let logs = std::fs::read_dir(fixture.path(".git/deploy/logs"))
        .unwrap()
        .flat_map(|commit| std::fs::read_dir(commit.unwrap().path()).unwrap())
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for (channel, text) in [
        ("stdout (BuildKit)", &buildkit.stdout),
        ("stderr (BuildKit)", &buildkit.stderr),
        ("stdout (classic)", &classic.stdout),
        ("stderr (classic)", &classic.stderr),
        ("build logs", &logs),
    ] {
        for (what, secret) in &secrets {
            if let Some(line) = leak(text, secret) {
                panic!("{what} appears in {channel}: {line}");
            }
        }
    }
    // The logins were used (so the absence above means something), and said so at debug.
    buildkit.stderr_has(&format!(
        "registry login for {}: from docker-credential-deploy-testbed",
        private.host
    ));
}
