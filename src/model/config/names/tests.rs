use super::*;

const EVERY_NAME: &str = r#"
[ecs]
cluster = "platform-{env}"
service = "{env}-{service}"
container = "{service}-{env}"
[registry]
repository = "{env}/{service}"
host = "registry.{env}.example:5000"
[lock]
bucket = "{env}-ops"
[history]
bucket = "{env}-history"
[health]
base_url = "https://api.{env}.example.com"
[spas.admin-ui]
bucket = "{env}-admin"
distribution_id = "E-{env}"
[spas.simulator]
dir = "apps/simulator"
"#;

#[test]
fn every_name_takes_the_environment_placeholder() {
    let loaded = Config::parse(EVERY_NAME).unwrap();
    assert_eq!(loaded.environment(), None);
    let prod = loaded.for_environment("prod");
    assert_eq!(prod.environment(), Some("prod"));
    // Table: each key and what prod reads.
    let admin = &prod.spas.0["admin-ui"];
    for (key, value, expected) in [
        ("ecs.cluster", prod.ecs.cluster.as_deref(), "platform-prod"),
        (
            "ecs.service",
            Some(prod.ecs.service.as_str()),
            "prod-{service}",
        ),
        ("ecs.container", Some(&prod.ecs.container), "{service}-prod"),
        (
            "registry.repository",
            Some(&prod.registry.repository),
            "prod/{service}",
        ),
        (
            "registry.host",
            prod.registry.host.as_deref(),
            "registry.prod.example:5000",
        ),
        ("lock.bucket", prod.lock.bucket.as_deref(), "prod-ops"),
        (
            "history.bucket",
            prod.history.bucket.as_deref(),
            "prod-history",
        ),
        (
            "health.base_url",
            prod.health.base_url.as_deref(),
            "https://api.prod.example.com",
        ),
        (
            "spas.admin-ui.bucket",
            admin.bucket.as_deref(),
            "prod-admin",
        ),
        (
            "spas.admin-ui.distribution_id",
            admin.distribution_id.as_deref(),
            "E-prod",
        ),
    ] {
        assert_eq!(value, Some(expected), "{key}");
    }
    // The per-service templates still take the service afterwards.
    assert_eq!(super::super::expand(&prod.ecs.service, "api"), "prod-api");
    // What is not a name is left as it is.
    assert_eq!(prod.docker, loaded.docker);
    assert_eq!(prod.spas.0["simulator"], loaded.spas.0["simulator"]);
}

#[test]
fn another_environment_starts_again_from_the_config_as_loaded() {
    let loaded = Config::parse(EVERY_NAME).unwrap();
    let prod = loaded.for_environment("prod");
    let sandbox = prod.for_environment("sandbox");
    assert_eq!(sandbox, loaded.for_environment("sandbox"));
    assert_eq!(sandbox.ecs.cluster.as_deref(), Some("platform-sandbox"));
    assert_eq!(sandbox.environment(), Some("sandbox"));
}

#[test]
fn an_environment_table_sets_its_names_over_the_top_level_ones() {
    let config = Config::parse(
        r#"
[ecs]
cluster = "{env}-cluster"
[lock]
bucket = "shared-ops"
[env.prod]
ecs.cluster = "production"
lock.bucket = "{env}-ops-locked"
spas.admin-ui.distribution_id = "E2PRODADMIN"
registry.repository = "prod-images/{service}"
[env.sandbox.spas.simulator]
bucket = "sim-{env}"
"#,
    )
    .unwrap();
    let prod = config.for_environment("prod");
    assert_eq!(prod.ecs.cluster.as_deref(), Some("production"));
    assert_eq!(prod.lock.bucket.as_deref(), Some("prod-ops-locked"));
    assert_eq!(
        prod.spas.0["admin-ui"].distribution_id.as_deref(),
        Some("E2PRODADMIN")
    );
    assert_eq!(prod.registry.repository, "prod-images/{service}");
    assert_eq!(prod.spas.0["simulator"].bucket, None);
    let sandbox = config.for_environment("sandbox");
    assert_eq!(sandbox.ecs.cluster.as_deref(), Some("sandbox-cluster"));
    assert_eq!(sandbox.lock.bucket.as_deref(), Some("shared-ops"));
    assert_eq!(sandbox.spas.0["admin-ui"].distribution_id, None);
    assert_eq!(
        sandbox.spas.0["simulator"].bucket.as_deref(),
        Some("sim-sandbox")
    );
    // An environment with no table reads the top-level names.
    let staging = config.for_environment("staging");
    assert_eq!(staging.ecs.cluster.as_deref(), Some("staging-cluster"));
    assert_eq!(staging.registry.repository, "{service}");
}

#[test]
fn the_keys_that_depend_on_the_environment_are_named() {
    assert!(Config::default().environment_keys().is_empty());
    let config = Config::parse(
        "[ecs]\ncluster = \"{env}-c\"\n[lock]\nbucket = \"ops\"\n[env.prod]\nhistory.bucket = \"h\"\n",
    )
    .unwrap();
    assert_eq!(config.environment_keys(), ["ecs.cluster", "[env.prod]"]);
    assert!(config.for_environment("prod").environment_keys().is_empty());
}

#[test]
fn unknown_placeholders_are_rejected_at_their_line_and_column() {
    // (config, placeholder, line, the placeholders allowed there)
    for (text, placeholder, line, allowed) in [
        (
            "[ecs]\ncluster = \"{environment}-cluster\"\n",
            "{environment}",
            2,
            "{env}",
        ),
        (
            "[ecs]\ncluster = \"{service}-cluster\"\n",
            "{service}",
            2,
            "{env}",
        ),
        (
            "\n[ecs]\nservice = \"{svc}-{env}\"\n",
            "{svc}",
            3,
            "{service} and {env}",
        ),
        (
            "[registry]\nrepository = \"{ENV}/{service}\"\n",
            "{ENV}",
            2,
            "{service} and {env}",
        ),
        (
            "[lock]\nbucket = \"{workspace}-ops\"\n",
            "{workspace}",
            2,
            "{env}",
        ),
        ("[history]\nbucket = \"h-{stage}\"\n", "{stage}", 2, "{env}"),
        (
            "[health]\nbase_url = \"https://{host}\"\n",
            "{host}",
            2,
            "{env}",
        ),
        (
            "[spas.admin-ui]\nbucket = \"{name}\"\n",
            "{name}",
            2,
            "{env}",
        ),
        (
            "[spas.admin-ui]\ndistribution_id = \"{id}\"\n",
            "{id}",
            2,
            "{env}",
        ),
        (
            "[env.prod]\necs.cluster = \"{envv}\"\n",
            "{envv}",
            2,
            "{env}",
        ),
        (
            "[env.prod.spas.admin-ui]\nbucket = \"{x}\"\n",
            "{x}",
            2,
            "{env}",
        ),
    ] {
        let err = Config::parse(text).unwrap_err();
        assert!(
            err.contains(&format!("unknown placeholder {placeholder}")),
            "{text}: {err}"
        );
        assert!(
            err.contains(&format!("line {line}, column")),
            "{text}: {err}"
        );
        assert!(
            err.contains(&format!("the placeholders here are {allowed}")),
            "{text}: {err}"
        );
    }
}

#[test]
fn environment_tables_are_checked_like_the_rest() {
    let err = Config::parse("[env.prod]\necs.clustre = \"x\"\n").unwrap_err();
    assert!(err.contains("unknown field `clustre`"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let err = Config::parse("[env.prod]\ndocker.concurrency = 2\n").unwrap_err();
    assert!(err.contains("unknown field `docker`"), "{err}");
    let err = Config::parse("[env.prod.spas.portal]\nbucket = \"p\"\n").unwrap_err();
    assert!(err.contains("env.prod.spas.portal"), "{err}");
    assert!(err.contains("admin-ui, simulator"), "{err}");
    let err = Config::parse("[env.prod]\necs.service = \"api\"\n").unwrap_err();
    assert!(err.contains("env.prod.ecs.service"), "{err}");
    assert!(err.contains("{service}"), "{err}");
}

#[test]
fn the_missing_cluster_advice_holds_for_every_environment() {
    let advice = Config::default().for_environment("prod").missing_cluster();
    assert!(
        advice.starts_with("cannot tell the ECS cluster of prod:"),
        "{advice}"
    );
    assert!(
        advice.contains("ecs.cluster = \"<name>-{env}\""),
        "{advice}"
    );
    assert!(advice.contains("[env.prod]"), "{advice}");
    let advice = Config::default().missing_cluster();
    assert!(
        advice.starts_with("cannot tell the ECS cluster:"),
        "{advice}"
    );
    assert!(advice.contains("[env.<workspace>]"), "{advice}");
}

#[test]
fn the_readme_example_reads_as_it_says() {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("### Per-environment names")
        .nth(1)
        .expect("the README's section");
    let example = section
        .split("```toml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its example");
    let example: String = example.lines().map(|l| format!("{}\n", l.trim())).collect();
    let config = Config::parse(&example).unwrap();
    let prod = config.for_environment("prod");
    assert_eq!(prod.ecs.cluster.as_deref(), Some("production"));
    assert_eq!(prod.lock.bucket.as_deref(), Some("prod-ops"));
    assert_eq!(
        prod.spas.0["admin-ui"].distribution_id.as_deref(),
        Some("E2PRODADMIN")
    );
    let sandbox = config.for_environment("sandbox");
    assert_eq!(sandbox.ecs.cluster.as_deref(), Some("platform-sandbox"));
}

#[test]
fn a_table_that_looks_like_a_misspelt_environment_is_found() {
    let config = Config::parse(
        "[env.porduction]\necs.cluster = \"production\"\n[env.dev]\necs.cluster = \"dev\"\n[env.staging]\necs.cluster = \"stg\"\n",
    )
    .unwrap();
    // Table: the run's environment and the tables that look like its misspelling.
    for (env, expected) in [
        ("production", vec!["porduction"]),
        ("prod", vec![]),
        ("dev", vec![]), // it has a table of its own
        // One edit from dev: whether dev is an environment of its own (tfvars/dev.tfvars)
        // is for the caller to tell.
        ("dev2", vec!["dev"]),
        ("stagign", vec!["staging"]),
        ("Staging", vec!["staging"]),
        ("sandbox", vec![]),
    ] {
        let seen = config.for_environment(env);
        assert_eq!(seen.env_tables_like(env), expected, "{env}");
    }
}

#[test]
fn edits_count_a_swapped_pair_once() {
    for (a, b, distance) in [
        ("prod", "prod", 0),
        ("prod", "prd", 1),
        ("prod", "prdo", 1),
        ("porduction", "production", 1),
        ("prod", "dev", 4),
        ("", "abc", 3),
    ] {
        assert_eq!(edit_distance(a, b), distance, "{a} {b}");
    }
}
