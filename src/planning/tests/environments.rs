//! deploy.toml's names as each environment sees them: expanded once, in
//! [`platform_in`], for the run's environment and (promote) its source.

use super::*;
use crate::model::config::Config;

/// The fixture platform with `text` as its deploy.toml.
fn fixture_with(text: &str) -> Platform {
    let mut platform = fixture();
    platform.config = Config::parse(text).unwrap();
    platform.spas = crate::model::platform::resolve_spas(&platform.config);
    platform
}

const PER_ENVIRONMENT: &str = r#"
[registry]
repository = "{env}/{service}"
host = "registry-{env}.example:5000"
[ecs]
cluster = "{env}-cluster"
[spas.admin-ui]
bucket = "{env}-admin"
[spas.simulator]
bucket = "simulator"
[env.prod]
ecs.cluster = "production"
"#;

fn request(var_file: PathBuf, promote_from: Option<PathBuf>) -> Request {
    Request {
        selection: Selection::All,
        var_file: Some(var_file),
        dry_run: true,
        promote: promote_from.map(|from_var_file| crate::request::Promotion {
            from_var_file,
            profile_from: None,
        }),
        ..Request::default()
    }
}

fn plan_of(platform: &Platform, request: &Request) -> Result<Plan> {
    crate::planning::plan(
        platform,
        request,
        Context {
            head: head(HEAD),
            uncommitted: Vec::new(),
            cwd: &platform.root,
            registry_env: Default::default(),
            rollback_to: None,
            spa_sources: fixture_sources(),
        },
    )
}

#[test]
fn the_plan_reads_the_names_of_its_environment() {
    let platform = fixture_with(PER_ENVIRONMENT);
    let plan = plan_of(&platform, &request("tfvars/example.tfvars".into(), None)).unwrap();
    assert_eq!(plan.services[0].repository, "example/api");
    assert_eq!(plan.services[0].image, "example/api:0123456");
    assert_eq!(
        plan.registry.host.as_deref(),
        Some("registry-example.example:5000")
    );
    let buckets: Vec<&str> = plan.spas.iter().map(|s| s.bucket.as_str()).collect();
    assert_eq!(buckets, ["example-admin", "simulator"]);
}

#[test]
fn a_promotion_reads_each_environment_s_own_names() {
    let platform = fixture_with(PER_ENVIRONMENT);
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("prod.tfvars");
    std::fs::write(&from, "").unwrap();
    let plan = plan_of(
        &platform,
        &request("tfvars/example.tfvars".into(), Some(from)),
    )
    .unwrap();
    let promotion = plan.promotion.unwrap();
    assert_eq!(promotion.from_workspace, "prod");
    assert_eq!(
        promotion.from_registry.host.as_deref(),
        Some("registry-prod.example:5000")
    );
    assert_eq!(
        plan.registry.host.as_deref(),
        Some("registry-example.example:5000")
    );
}

#[test]
fn platform_in_expands_for_each_environment_from_the_config_as_loaded() {
    let platform = fixture_with(PER_ENVIRONMENT);
    let example = platform_in(&platform, Some("example")).unwrap();
    assert_eq!(
        example.config.ecs.cluster.as_deref(),
        Some("example-cluster")
    );
    assert_eq!(example.spas[0].bucket.as_deref(), Some("example-admin"));
    // From one environment's platform to another's: the templates, not the names.
    let prod = platform_in(&example, Some("prod")).unwrap();
    assert_eq!(prod.config.ecs.cluster.as_deref(), Some("production"));
    assert_eq!(prod.spas[0].bucket.as_deref(), Some("prod-admin"));
    assert_eq!(prod.config.registry.repository, "prod/{service}");
    // An environment's platform needs no environment named again.
    assert_eq!(
        platform_in(&prod, None).unwrap().config,
        prod.config,
        "already one environment's"
    );
}

#[test]
fn names_that_depend_on_an_environment_need_one_named() {
    let platform = fixture_with(PER_ENVIRONMENT);
    let err = platform_in(&platform, None).unwrap_err();
    assert!(err.is::<UsageError>(), "{err}");
    let message = err.to_string();
    for part in [
        "ecs.cluster, registry.repository, registry.host, spas.admin-ui.bucket, [env.prod] in ",
        "deploy.toml depend on the environment, and none was named",
        "pass --var-file tfvars/<workspace>.tfvars",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // A --skip-tf run names none.
    let skip_tf = Request {
        skip_tf: true,
        var_file: None,
        ..request("tfvars/example.tfvars".into(), None)
    };
    let err = plan_of(&platform, &skip_tf).unwrap_err();
    assert!(
        err.to_string().contains("depend on the environment"),
        "{err}"
    );
    // Unless its --var-file names one: then it reads that environment's names.
    let skip_tf = Request {
        names_var_file: Some("tfvars/example.tfvars".into()),
        ..skip_tf
    };
    let plan = plan_of(&platform, &skip_tf).unwrap();
    assert_eq!(plan.services[0].image, "example/api:0123456");
    assert!(plan.terraform.is_none());
    // Without such names, nothing changes.
    let plain = fixture();
    assert_eq!(platform_in(&plain, None).unwrap().config, plain.config);
}
