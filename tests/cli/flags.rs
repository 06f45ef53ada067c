//! One name, one meaning, one error for a flag across the commands: `--services` on
//! every command that names services (with the same error for an unknown one),
//! `--changed[=MODE]` on `diff` as on a deploy, and the commands that only print
//! (`man`, `completions`) refusing the options that would mean nothing to them.

use crate::support::{Deploy, Fixture};

/// Every command that takes `--services` refuses an unknown name with the same words,
/// before it reads AWS (the fixture's environment has none).
#[test]
fn an_unknown_service_is_one_error_on_every_command() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox").write_tfvars("prod");
    let env = ["--var-file", "tfvars/sandbox.tfvars"];
    let commands: [&[&str]; 8] = [
        &["--skip-tf", "--dry-run"],
        &["status", env[0], env[1]],
        &["history", env[0], env[1]],
        &["undo", env[0], env[1], "--dry-run"],
        &["diff", env[0], env[1]],
        &["rollback", "HEAD", env[0], env[1], "--dry-run"],
        &[
            "promote",
            "--from",
            "tfvars/sandbox.tfvars",
            "--to",
            "tfvars/prod.tfvars",
            "--dry-run",
        ],
        // The old name of history's flag is kept, and answers the same.
        &["history", env[0], env[1], "--service", "nope"],
    ];
    for args in commands {
        let mut deploy = fixture.deploy().args(args);
        if !args.contains(&"--service") {
            deploy = deploy.args(["--services", "api,nope"]);
        }
        let out = deploy.run();
        out.usage_error().stderr_has(
            "error: --services: unknown service nope; the services are: api, auth, billing",
        );
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "deploy {args:?}: one line\n{}",
            out.stderr
        );
    }
}

#[test]
fn man_and_completions_refuse_options_that_mean_nothing_to_them() {
    let cases: [(&[&str], &str); 5] = [
        (&["man", "--output", "json"], "--output"),
        (&["--profile", "prod", "man"], "--profile"),
        (&["man", "-C", "."], "-C/--repo"),
        (&["completions", "bash", "--output", "json"], "--output"),
        (&["-q", "completions", "zsh"], "-q/--quiet"),
    ];
    for (args, flag) in cases {
        let out = Deploy::new().args(args).run();
        out.usage_error()
            .stderr_has(&format!("error: {flag} is not an option of 'deploy"))
            .stderr_has("which only prints");
        assert!(
            out.stdout.is_empty(),
            "deploy {args:?} printed {}",
            out.stdout
        );
    }
    // Set in the environment, an option is not typed: nothing to refuse.
    Deploy::new()
        .args(["man"])
        .env("DEPLOY_OUTPUT", "json")
        .run()
        .success()
        .stdout_has(".TH deploy 1");
}

#[test]
fn diff_takes_the_changed_mode_of_a_deploy() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["diff", "--var-file", "x.tfvars", "--changed", "graph"][..],
        &["--var-file", "x.tfvars", "--changed", "graph"],
    ] {
        Deploy::new()
            .in_dir(dir.path())
            .args(args)
            .run()
            .usage_error()
            .stderr_has("use '--changed=graph'");
    }
    Deploy::new()
        .in_dir(dir.path())
        .args(["diff", "--var-file", "x.tfvars", "--changed=fast"])
        .run()
        .usage_error()
        .stderr_has("[possible values: graph, runbook]");
    Deploy::new()
        .args(["diff", "--help"])
        .run()
        .success()
        .stdout_has("--changed[=<MODE>]");
}
