//! Per-environment names in deploy.toml (`{env}`, `[env.<workspace>]`): expanded for
//! the environment a command names, rejected at load when a placeholder is unknown, and
//! never sent unexpanded when no environment is named.

use crate::support::Fixture;

const PER_ENVIRONMENT: &str = r#"
[registry]
repository = "{env}/{service}"
[ecs]
cluster = "platform-{env}"
[spas.admin-ui]
bucket = "{env}-admin"
[env.prod.spas.admin-ui]
bucket = "production-admin"
"#;

#[test]
fn a_dry_run_plans_with_the_names_of_its_environment() {
    let fixture = Fixture::new();
    fixture.write("deploy.toml", PER_ENVIRONMENT);
    fixture.write_tfvars("sandbox").write_tfvars("prod");
    let tag = fixture.short_sha();
    for (env, bucket) in [("sandbox", "sandbox-admin"), ("prod", "production-admin")] {
        let out = fixture
            .deploy()
            .args(["--dry-run", "--output", "json"])
            .args(["--var-file", &format!("tfvars/{env}.tfvars")])
            .run();
        out.success();
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
        let api = plan["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "api")
            .unwrap();
        assert_eq!(api["image"], format!("{env}/api:{tag}"), "{plan}");
        assert_eq!(plan["spas"][0]["name"], "admin-ui", "{plan}");
        assert_eq!(plan["spas"][0]["bucket"], bucket, "{plan}");
    }
}

#[test]
fn an_unknown_placeholder_is_a_config_error_at_its_line_and_column() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture.write(
        "deploy.toml",
        "[ecs]\ncluster = \"{environment}-cluster\"\n",
    );
    fixture
        .deploy()
        .args(["status", "--var-file", "tfvars/sandbox.tfvars"])
        .run()
        .usage_error()
        .stderr_has("deploy.toml")
        .stderr_has("line 2, column")
        .stderr_has("unknown placeholder {environment} in \"{environment}-cluster\": the placeholders here are {env}");
}

#[test]
fn names_that_depend_on_the_environment_need_one_named() {
    let fixture = Fixture::new();
    fixture.write("deploy.toml", PER_ENVIRONMENT);
    let advice = "ecs.cluster, registry.repository, spas.admin-ui.bucket, [env.prod] in";
    for args in [
        &["status"][..],
        &["prune", "--dry-run"],
        &["--skip-tf", "--dry-run"],
    ] {
        fixture
            .deploy()
            .args(args)
            .run()
            .usage_error()
            .stderr_has(advice)
            .stderr_has("depend on the environment, and none was named: pass --var-file tfvars/<workspace>.tfvars");
    }
    // A --skip-tf run's --var-file names it (and nothing else reads the file).
    fixture.write_tfvars("sandbox");
    let out = fixture
        .deploy()
        .args([
            "--skip-tf",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--dry-run",
        ])
        .run();
    out.success()
        .stdout_has(&format!("sandbox/api:{}", fixture.short_sha()));
}

#[test]
fn a_table_that_looks_like_a_misspelt_environment_is_warned_about() {
    let fixture = Fixture::new();
    fixture.write(
        "deploy.toml",
        "[spas.admin-ui]\nbucket = \"{env}-admin\"\n[env.porduction.spas.admin-ui]\nbucket = \"the-production-admin\"\n",
    );
    fixture.write_tfvars("sandbox").write_tfvars("production");
    let plan = |env: &str| {
        fixture
            .deploy()
            .args(["--dry-run", "--output", "json"])
            .args(["--var-file", &format!("tfvars/{env}.tfvars")])
            .run()
    };
    let out = plan("production");
    out.success()
        .stderr_has("deploy.toml has [env.porduction] but no [env.production]: production (tfvars/production.tfvars) reads the top-level names")
        .stderr_has("reads the top-level names, and no ")
        .stderr_has("porduction.tfvars exists for that table. If it was meant for production, rename it [env.production]");
    // The run reads the top-level names, as the warning says.
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(json["spas"][0]["bucket"], "production-admin", "{json}");
    // The commands that name an environment without a run say it too, before they read
    // anything of it (here AWS is a closed port: they then fail).
    for args in [
        &["history"][..],
        &["status"],
        &["unlock"],
        &["continue", "-y"],
    ] {
        let out = fixture
            .deploy()
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "example")
            .env("AWS_REGION", "us-east-1")
            .env("DEPLOY_AWS_TIMEOUT", "2s")
            .args(args)
            .args(["--var-file", "tfvars/production.tfvars"])
            .run();
        assert!(
            out.stderr.contains(
                "deploy.toml has [env.porduction] but no [env.production]: production (tfvars/production.tfvars) reads the top-level names"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing like sandbox: no warning.
    let out = plan("sandbox");
    out.success();
    assert!(!out.stderr.contains("[env.porduction]"), "{}", out.stderr);
    // A table whose environment has a tfvars file of its own is that environment's.
    fixture.write_tfvars("porduction");
    let out = plan("production");
    out.success();
    assert!(!out.stderr.contains("[env.porduction]"), "{}", out.stderr);
}
