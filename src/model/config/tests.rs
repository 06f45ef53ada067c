use super::*;
use std::path::Path;

#[test]
fn empty_file_gives_the_runbook_defaults() {
    let config = Config::parse("").unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.services.exclude, ["slack-agent"]);
    assert_eq!(config.shared.packages.len(), 5);
    assert_eq!(config.shared.build_inputs.len(), 5);
    assert_eq!(
        config.spas.0.keys().collect::<Vec<_>>(),
        ["admin-ui", "simulator"]
    );
    assert_eq!(config.terraform.dir, Path::new("infra/terraform/aws"));
}

#[test]
fn partial_sections_keep_other_defaults() {
    let config = Config::parse("[docker]\nconcurrency = 4\n").unwrap();
    assert_eq!(config.docker.concurrency, 4);
    assert_eq!(
        config.docker.dockerfile,
        Path::new("infra/docker/service.Dockerfile")
    );
}

#[test]
fn unknown_key_is_named_with_its_position() {
    let err = Config::parse("[docker]\nconcurency = 4\n").unwrap_err();
    assert!(err.contains("unknown field `concurency`"), "{err}");
    assert!(err.contains("line 2, column 1"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    let err = Config::parse("[docker]\nconcurrency = \"four\"\n").unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn templates_must_name_the_service() {
    let err = Config::parse("[terraform]\ntargets = [\"aws_ecs_service.all\"]\n").unwrap_err();
    assert!(err.contains("terraform.targets"), "{err}");
    assert!(err.contains("{service}"), "{err}");
}

#[test]
fn spas_table_replaces_the_default_pair() {
    let config = Config::parse("[spas.portal]\nbuild = \"node build.mjs\"\n").unwrap();
    assert_eq!(config.spas.0.keys().collect::<Vec<_>>(), ["portal"]);
}

#[test]
fn zero_concurrency_and_a_negative_shared_context_are_rejected() {
    let err = Config::parse("[docker]\nconcurrency = 0\n").unwrap_err();
    assert!(err.contains("docker.concurrency"), "{err}");
    let err = Config::parse("[docker]\nshared_context_mib = -1\n").unwrap_err();
    assert!(err.contains("docker.shared_context_mib"), "{err}");
    let config = Config::parse("[docker]\nshared_context_mib = 1\n").unwrap();
    assert_eq!(config.docker.shared_context_mib, 1.0);
}

#[test]
fn the_changes_table_selects_the_mode_and_its_globs() {
    assert_eq!(Config::default().changes.mode, ChangesMode::Runbook);
    let config = Config::parse(
        "[changes]\nmode = \"graph\"\nignore = [\"**/*.md\"]\ninputs = [\"infra/docker/**\"]\nservice_inputs = { billing = [\"infra/billing/**\"] }\n",
    )
    .unwrap();
    assert_eq!(config.changes.mode, ChangesMode::Graph);
    assert_eq!(
        config.changes.inputs_of("billing"),
        ["infra/docker/**", "infra/billing/**"]
    );
    assert_eq!(config.changes.inputs_of("api"), ["infra/docker/**"]);
    let err = Config::parse("[changes]\nmode = \"nx\"\n").unwrap_err();
    assert!(err.contains("unknown variant `nx`"), "{err}");
    let err = Config::parse("[changes]\nignore = [\" \"]\n").unwrap_err();
    assert!(err.contains("empty glob"), "{err}");
}
