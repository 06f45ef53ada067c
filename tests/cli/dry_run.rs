//! The plan as a value: discovery on the fixture platform and the dry run, which prints
//! the plan and touches nothing.

use crate::support::{Fixture, SERVICES};

#[test]
fn dry_run_lists_the_nine_services_both_spas_and_the_terraform_command() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let tag = fixture.short_sha();
    let out = fixture
        .deploy()
        .args(["--var-file", "tfvars/sandbox.tfvars", "--dry-run"])
        .run();
    out.success();
    for service in SERVICES {
        out.stdout_has(&format!("{service}:{tag}"));
    }
    out.stdout_lacks("slack-agent")
        .stdout_has("admin-ui")
        .stdout_has("simulator")
        .stdout_has(&format!(
            "terraform: terraform -chdir=infra/terraform/aws plan -input=false -out=roll.tfplan -var-file=tfvars/sandbox.tfvars -var image_tag={tag} && terraform -chdir=infra/terraform/aws apply -input=false roll.tfplan"
        ))
        .stdout_has("workspace   sandbox");
    let table = out.stdout_redacted(fixture.root()).replace(&tag, "[SHA]");
    insta::assert_snapshot!("dry_run_full", table);
}

#[test]
fn dry_run_works_from_a_subdirectory_and_the_tag_is_git_short_sha() {
    let fixture = Fixture::new();
    let out = fixture
        .deploy()
        .in_dir(fixture.path("services/api/src"))
        .args(["--skip-tf", "--dry-run", "--output", "json"])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(plan["image_tag"], fixture.short_sha());
    assert_eq!(plan["mode"], "full");
    assert!(plan["terraform"].is_null());
    let names: Vec<&str> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SERVICES);
}

#[test]
fn detached_head_works_and_tags_with_the_short_sha() {
    let fixture = Fixture::new();
    fixture.write("services/api/src/extra.ts", "export {};\n");
    let first = fixture.commit_all("second");
    fixture.git(&["checkout", "--quiet", "--detach", "HEAD"]);
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .success()
        .stdout_has(&format!("{first} (detached HEAD)"));
}

#[test]
fn services_selects_a_subset_and_rolls_only_it() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let tag = fixture.short_sha();
    let out = fixture
        .deploy()
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "auth,api",
            "--dry-run",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let deployed: Vec<&str> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "DEPLOY")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(deployed, ["api", "auth"]);
    let command = plan["terraform"]["command"].as_str().unwrap();
    assert!(
        command.contains(&format!(r#"'image_tags={{"api"="{tag}","auth"="{tag}"}}'"#)),
        "{command}"
    );
    // The global variable gets the same tag, for roots that require it; the targets
    // below confine the apply to the two services (rollout.rs checks ECS).
    assert!(
        command.contains(&format!("-var image_tag={tag}")),
        "{command}"
    );
    assert!(
        command.contains(r#"'-target=terraform_data.service["auth"]'"#),
        "{command}"
    );
    assert!(!command.contains(r#"["billing"]"#), "{command}");
}

#[test]
fn uncommitted_paths_are_listed() {
    let fixture = Fixture::new();
    fixture.write("services/api/src/index.ts", "// edited\n");
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .success()
        .stdout_has("uncommitted 1 path(s)")
        .stdout_has("services/api/src/index.ts");
}

/// Usage errors found after parsing (they need the repository) still exit 2 before
/// anything outside is touched.
#[test]
fn repository_dependent_usage_errors() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "unknown_service",
            &["--skip-tf", "--services", "api,ghost"],
            "unknown service ghost",
        ),
        (
            "empty_services",
            &["--skip-tf", "--services", ""],
            "--services needs service names",
        ),
        (
            "excluded_service",
            &["--skip-tf", "--services", "slack-agent"],
            "slack-agent deploys on its own",
        ),
        (
            "missing_var_file",
            &["--var-file", "tfvars/nope.tfvars"],
            "--var-file tfvars/nope.tfvars: no such file",
        ),
        (
            "var_file_is_a_directory",
            &["--var-file", "tfvars"],
            "is a directory",
        ),
    ];
    for (name, args, message) in cases {
        let out = fixture.deploy().args(*args).args(["--dry-run"]).run();
        out.usage_error().stderr_has(message);
        assert!(out.stdout.is_empty(), "{name}: nothing printed on stdout");
        insta::assert_snapshot!(format!("usage_{name}"), out.stderr_redacted(fixture.root()));
    }
}

#[test]
fn bad_config_names_the_key_the_file_and_the_position() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "config_unknown_key",
            "[docker]\nconcurency = 4\n",
            "unknown field `concurency`",
        ),
        (
            "config_wrong_type",
            "[docker]\nconcurrency = \"four\"\n",
            "invalid type",
        ),
        ("config_invalid_toml", "[docker\n", "line 1"),
        (
            "config_missing_service",
            "[services]\nnames = [\"api\", \"ghost\"]\n",
            "services.names",
        ),
    ];
    for (name, text, message) in cases {
        let fixture = Fixture::new();
        fixture.write("deploy.toml", text);
        let out = fixture.deploy().args(["--skip-tf", "--dry-run"]).run();
        out.usage_error()
            .stderr_has(message)
            .stderr_has("deploy.toml");
        insta::assert_snapshot!(format!("usage_{name}"), out.stderr_redacted(fixture.root()));
    }
}

#[test]
fn tables_are_coloured_only_for_a_terminal_or_when_forced() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let dry_run = || {
        fixture
            .deploy()
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .args(["--var-file", "tfvars/sandbox.tfvars", "--dry-run"])
    };

    // Piped (as in a script or CI log): plain text.
    let piped = dry_run().run();
    piped.success().stdout_lacks("\x1b[");

    // CLICOLOR_FORCE=1 colours anyway; NO_COLOR wins over it.
    let forced = dry_run().env("CLICOLOR_FORCE", "1").run();
    forced
        .success()
        .stdout_has("\x1b[1mSERVICE")
        .stdout_has("\x1b[32mDEPLOY\x1b[0m");
    dry_run()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .run()
        .success()
        .stdout_lacks("\x1b[");

    // The colour codes change nothing else: the same table once they are removed.
    let stripped = forced
        .stdout
        .replace("\x1b[0m", "")
        .replace("\x1b[1m", "")
        .replace("\x1b[2m", "")
        .replace("\x1b[32m", "");
    assert_eq!(stripped, piped.stdout);
}

#[test]
fn an_unreadable_var_file_is_a_usage_error() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let path = fixture.path("infra/terraform/aws/tfvars/sandbox.tfvars");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads a mode-000 file anyway; what nobody can open as a file is a socket.
    let _socket = std::fs::File::open(&path).is_ok().then(|| {
        std::fs::remove_file(&path).unwrap();
        std::os::unix::net::UnixListener::bind(&path).unwrap()
    });
    let out = fixture
        .deploy()
        .args(["--var-file", "tfvars/sandbox.tfvars", "--dry-run"])
        .run();
    out.usage_error()
        .stderr_has("tfvars/sandbox.tfvars cannot be read");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn the_tag_is_what_git_rev_parse_short_prints_also_in_a_big_repository() {
    let fixture = Fixture::new();
    // 20,000 objects in a pack, on a side branch: from 16,384 on, git abbreviates to 8
    // characters (libgit2's own short ids stay at 7).
    let mut stream =
        String::from("commit refs/heads/bulk\ncommitter T <t@t> 0 +0000\ndata 4\nbulk\n");
    for i in 0..20_000 {
        let data = format!("{i}\n");
        stream.push_str(&format!(
            "M 100644 inline bulk/{i}\ndata {}\n{data}",
            data.len()
        ));
    }
    let mut import = std::process::Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(fixture.root())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(import.stdin.as_mut().unwrap(), stream.as_bytes()).unwrap();
    drop(import.stdin.take());
    assert!(import.wait().unwrap().success());
    let tag = || {
        let out = fixture
            .deploy()
            .args(["--skip-tf", "--dry-run", "--output", "json"])
            .run();
        out.success();
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        plan["image_tag"].as_str().unwrap().to_owned()
    };
    assert_eq!(fixture.short_sha().len(), 8);
    assert_eq!(tag(), fixture.short_sha());

    // core.abbrev, as git honours it.
    fixture.git(&["config", "core.abbrev", "12"]);
    assert_eq!(fixture.short_sha().len(), 12);
    assert_eq!(tag(), fixture.short_sha());
}

#[test]
fn drift_flags_need_changed_and_exclude_each_other_and_alarms_name_real_services() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let sandbox = ["--var-file", "tfvars/sandbox.tfvars", "--dry-run"];
    for (extra, named) in [
        (&["--adopt-drift"][..], &["--adopt-drift", "--changed"][..]),
        (
            &["--restore-drift"][..],
            &["--restore-drift", "--changed"][..],
        ),
        (
            &["--changed", "--adopt-drift", "--restore-drift"][..],
            &["--adopt-drift", "--restore-drift"][..],
        ),
    ] {
        let out = fixture.deploy().args(sandbox).args(extra).run();
        out.usage_error();
        for flag in named {
            out.stderr_has(flag);
        }
    }
    fixture.write("deploy.toml", "[alarms]\nghost = [\"ghost-5xx\"]\n");
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .usage_error()
        .stderr_has("[alarms] names \"ghost\", which is not a deployable service")
        .stderr_has("deploy.toml");
    // `*` and a real service are accepted.
    fixture.write(
        "deploy.toml",
        "[alarms]\n\"*\" = [\"platform-errors\"]\nauth = [\"auth-5xx\"]\n",
    );
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .success();
}
