//! Diagnostics as a pipe or a file gets them (CI logs): no colour codes, `warning:` as
//! the README promises, and the AWS SDK's own warnings (its region chain asking IMDS,
//! multi-line debug dumps) turned into one line of ours or kept out.

use std::net::TcpListener;

use crate::support::{bootstrap_applied, Fixture, Outcome, Testbed};

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The SDK's lines we keep out, and what a terminal would show but a pipe must not.
fn assert_plain_and_ours(case: &str, out: &Outcome, profiles: &std::path::Path) {
    let stderr = &out.stderr;
    assert!(
        !stderr.contains('\x1b'),
        "{case}: escape bytes in\n{stderr}"
    );
    for sdk in ["IMDS", "WARN", "aws_config", "ProviderError", "{ "] {
        assert!(!stderr.contains(sdk), "{case}: `{sdk}` in\n{stderr}");
    }
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    let expected = format!(
        "warning: no AWS region is set: set AWS_REGION, or `region` in the `[profile testbed]` section of {}",
        profiles.display()
    );
    assert_eq!(warnings, [expected.as_str()], "{case}:\n{stderr}");
    // And the call that fails for it says why, not "no usable AWS credentials?", with the
    // warning's advice: the profile's section and file.
    let advice = expected.trim_start_matches("warning: ");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("error:") && line.ends_with(advice)),
        "{case}:\n{stderr}"
    );
    assert!(!stderr.contains("credentials"), "{case}:\n{stderr}");
}

/// No region anywhere (no variable, a profile without one) and IMDS enabled, as on a
/// laptop or a CI runner outside EC2: the SDK's region chain asks IMDS (here a dead
/// local port) and logs its failure at warn, several lines of debug output. A piped
/// stderr gets one plain warning line of ours instead, with NO_COLOR honoured even when
/// CLICOLOR_FORCE asks for colour.
#[test]
fn without_a_region_a_piped_run_says_so_in_one_plain_warning() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let profiles = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(profiles.path(), "[profile testbed]\n").unwrap();
    let imds = format!("http://127.0.0.1:{}", dead_port());
    let colour: [(&str, &[(&str, &str)]); 2] = [
        ("piped", &[]),
        (
            "NO_COLOR beside CLICOLOR_FORCE",
            &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
        ),
    ];
    for (case, vars) in colour {
        let mut run = fixture
            .deploy()
            .aws(&env, &bed)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env("AWS_CONFIG_FILE", profiles.path())
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds);
        for (key, value) in vars {
            run = run.env(key, value);
        }
        let out = run
            .args([
                "history",
                "--var-file",
                "tfvars/sandbox.tfvars",
                "--profile",
                "testbed",
            ])
            .run();
        assert_plain_and_ours(case, &out, profiles.path());
    }
}
