//! Exit codes by class (src/error.rs): a setting the environment lacks is a usage error
//! (exit 2) like a bad flag, the checks a dry run can make locally are made, and the
//! README, `--help` and the man page list the same codes.

use crate::profiles::FakeHome;
use crate::support::{Deploy, Fixture, Listener, OnAccept};

/// A setting that neither deploy.toml nor the terraform outputs give is fixed in
/// config, not by running again: exit 2, with the fix, and AWS never called.
#[test]
fn a_setting_the_environment_lacks_exits_2_before_any_aws_call() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let aws = Listener::start(OnAccept::Drop);
    let nothing = FakeHome::with_outputs("{}");
    let var_file = ["--var-file", "tfvars/sandbox.tfvars"];
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "status",
            &["status"],
            "cannot tell the ECS cluster of sandbox: terraform has no output \"ecs_cluster_name\" (an empty state has none: apply the environment's terraform first), or name the cluster of every environment in deploy.toml: ecs.cluster = \"<name>-{env}\"",
        ),
        (
            "unlock",
            &["unlock"],
            "no bucket for the deploy lock: set lock.bucket in deploy.toml (for every environment at once with {env}: \"<name>-{env}\")",
        ),
        (
            "history",
            &["history"],
            "no bucket for the run history of sandbox: set history.bucket or lock.bucket in deploy.toml (for every environment at once with {env}",
        ),
    ];
    for (what, command, says) in cases {
        let out = nothing
            .deploy(&fixture, &aws)
            .args(*command)
            .args(var_file)
            .run();
        out.usage_error().stderr_has(says);
        assert!(nothing.terraform_ran(), "{what} read the outputs:\n{out}");
        assert_eq!(aws.accepted(), 0, "{what} called AWS:\n{out}");
    }
    // An output of the wrong shape is the same class: fixed in the terraform root.
    let numeric = FakeHome::with_outputs(r#"{"ecs_cluster_name": {"value": 3}}"#);
    numeric
        .deploy(&fixture, &aws)
        .args(["status"])
        .args(var_file)
        .run()
        .usage_error()
        .stderr_has("the terraform output \"ecs_cluster_name\" is a number, not a string");
    assert_eq!(aws.accepted(), 0);
}

/// Images build from the commit: a dry run says when its Dockerfile is not there,
/// naming the services and the path, and whether it is only in the work tree.
#[test]
fn a_dry_run_refuses_a_dockerfile_the_commit_does_not_have() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let dry_run = ["--var-file", "tfvars/sandbox.tfvars", "--dry-run"];
    let dockerfile = std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile"))
        .expect("the fixture's Dockerfile");
    fixture.git(&["rm", "--quiet", "infra/docker/service.Dockerfile"]);
    let sha = fixture.commit_all("no Dockerfile");
    fixture
        .deploy()
        .args(dry_run)
        .args(["--services", "api,auth"])
        .run()
        .usage_error()
        .stderr_has(&format!(
            "cannot build api, auth: the Dockerfile infra/docker/service.Dockerfile (docker.dockerfile, default) is not in commit {sha}, which images are built from; add it, or set docker.dockerfile in deploy.toml"
        ));
    // In the work tree but not committed: the fix is to commit it.
    fixture.write("infra/docker/service.Dockerfile", &dockerfile);
    fixture
        .deploy()
        .args(dry_run)
        .run()
        .usage_error()
        .stderr_has("is not in commit")
        .stderr_has("it is in the work tree but not committed: commit it");
    // A configured path is named with where it was set.
    fixture.write(
        "deploy.toml",
        &format!(
            "{}\n[docker]\ndockerfile = \"infra/docker/api.Dockerfile\"\n",
            std::fs::read_to_string(fixture.path("deploy.toml")).unwrap()
        ),
    );
    fixture.commit_all("a Dockerfile of its own, not committed");
    fixture
        .deploy()
        .args(dry_run)
        .args(["--services", "api"])
        .run()
        .usage_error()
        .stderr_has(
            "cannot build api: the Dockerfile infra/docker/api.Dockerfile (docker.dockerfile in ",
        )
        .stderr_has("deploy.toml) is not in commit");
    // Committed, the dry run plans again; a rollback builds nothing and never asks.
    fixture.write("infra/docker/api.Dockerfile", &dockerfile);
    fixture.commit_all("the Dockerfile");
    fixture
        .deploy()
        .args(dry_run)
        .args(["--services", "api"])
        .run()
        .success();
}

/// `status --compare`: a file that does not exist, or the environment `--var-file`
/// names, is refused before terraform or AWS is asked anything.
#[test]
fn status_compare_checks_its_file_and_that_it_is_another_environment_first() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox").write_tfvars("prod");
    let home = FakeHome::new();
    let aws = Listener::start(OnAccept::Drop);
    let status = |compare: &str| {
        home.deploy(&fixture, &aws)
            .args(["status", "--var-file", "tfvars/sandbox.tfvars"])
            .args(["--compare", compare])
            .run()
    };
    status("tfvars/staging.tfvars")
        .usage_error()
        .stderr_has("--compare tfvars/staging.tfvars: no such file")
        .stderr_has("tfvars/prod.tfvars, tfvars/sandbox.tfvars");
    status("tfvars/sandbox.tfvars").usage_error().stderr_has(
        "--compare tfvars/sandbox.tfvars names the environment --var-file names (sandbox)",
    );
    assert!(!home.terraform_ran());
    assert_eq!(aws.accepted(), 0);
}

/// The codes of the README's table, of `--help` and of the man page's EXIT STATUS.
#[test]
fn the_readme_help_and_man_page_list_the_same_exit_codes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    let mut in_readme: Vec<String> = table
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.split('|').nth(1).map(str::trim))
        .filter(|code| code.parse::<u8>().is_ok())
        .map(str::to_owned)
        .collect();
    in_readme.sort();
    let help = Deploy::new().args(["--help"]).run();
    // Wrapped to the terminal's width: read as one line.
    let help = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let man = Deploy::new().args(["man"]).run();
    let exit_status = man
        .stdout
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .expect("an EXIT STATUS section")
        .split(".SH")
        .next()
        .unwrap()
        .to_owned();
    for code in &in_readme {
        assert!(
            exit_status.contains(&format!("\\fB{code}\\fR")) || exit_status.contains(code),
            "the man page lacks exit code {code}:\n{exit_status}"
        );
        assert!(
            help.contains(&format!(" {code} ")),
            "--help lacks exit code {code}"
        );
    }
    assert_eq!(in_readme, ["0", "1", "129", "130", "143", "2", "3", "4"]);
}
