use super::*;

fn apply(roll: Roll) -> Apply {
    Apply {
        dir: "infra/terraform/aws".into(),
        var_file: "tfvars/sandbox.tfvars".into(),
        workspace: "sandbox".into(),
        roll,
    }
}

#[test]
fn full_roll_sets_the_global_tag() {
    let args = apply(Roll::All {
        tag: "3f2c1ab".into(),
    })
    .plan_args(&TerraformConfig::default(), Path::new("roll.tfplan"));
    assert_eq!(
        args,
        [
            "-chdir=infra/terraform/aws",
            "plan",
            "-input=false",
            "-out=roll.tfplan",
            "-var-file=tfvars/sandbox.tfvars",
            "-var",
            "image_tag=3f2c1ab"
        ]
    );
}

#[test]
fn a_restore_gives_each_service_its_own_tag_and_targets_only_them() {
    let plan = apply(Roll::restore(
        [
            ("auth".into(), "1a2b3c4".into()),
            ("api".into(), "9e8d7c6".into()),
        ]
        .into_iter()
        .collect(),
    ));
    let args = plan.plan_args(&TerraformConfig::default(), Path::new("roll.tfplan"));
    assert!(
        args.contains(&r#"image_tags={"api"="9e8d7c6","auth"="1a2b3c4"}"#.to_owned()),
        "{args:?}"
    );
    assert!(args.contains(&"image_tag=9e8d7c6".to_owned()), "{args:?}");
    let targets: Vec<_> = args
        .iter()
        .filter(|arg| arg.starts_with("-target="))
        .collect();
    assert_eq!(targets.len(), 4, "{targets:?}");
    assert_eq!(
        plan.roll.targeted(),
        Some(vec!["api".into(), "auth".into()])
    );
}

#[test]
fn partial_roll_targets_only_the_named_services_and_gives_image_tag_the_same_tag() {
    let plan = apply(Roll::Only {
        services: vec!["api".into(), "clinical-api".into()],
        tag: "3f2c1ab".into(),
        tags: Default::default(),
        renew: Vec::new(),
    });
    let args = plan.plan_args(&TerraformConfig::default(), Path::new("roll.tfplan"));
    assert!(args.contains(&r#"image_tags={"api"="3f2c1ab","clinical-api"="3f2c1ab"}"#.to_owned()));
    // A root whose image_tag has no default refuses an apply without it; the
    // targets keep it from reaching any other service.
    assert!(args.contains(&"image_tag=3f2c1ab".to_owned()));
    let targets: Vec<_> = args
        .iter()
        .filter(|arg| arg.starts_with("-target="))
        .collect();
    assert_eq!(
        targets,
        [
            r#"-target=aws_ecs_task_definition.service["api"]"#,
            r#"-target=aws_ecs_service.service["api"]"#,
            r#"-target=aws_ecs_task_definition.service["clinical-api"]"#,
            r#"-target=aws_ecs_service.service["clinical-api"]"#,
        ]
    );
}

#[test]
fn the_plan_has_the_applys_variables_and_targets_and_the_saved_apply_has_none() {
    let plan = apply(Roll::Only {
        services: vec!["api".into()],
        tag: "3f2c1ab".into(),
        tags: Default::default(),
        renew: Vec::new(),
    });
    let config = TerraformConfig::default();
    let planned = plan.plan_args(&config, Path::new("/tmp/x/roll.tfplan"));
    assert_eq!(
        planned[..4],
        [
            "-chdir=infra/terraform/aws",
            "plan",
            "-input=false",
            "-out=/tmp/x/roll.tfplan"
        ]
    );
    assert_eq!(
        planned[4..8],
        [
            "-var-file=tfvars/sandbox.tfvars",
            "-var",
            r#"image_tags={"api"="3f2c1ab"}"#,
            "-var"
        ]
    );
    assert_eq!(
        plan.apply_saved_args(Path::new("/tmp/x/roll.tfplan")),
        [
            "-chdir=infra/terraform/aws",
            "apply",
            "-input=false",
            "/tmp/x/roll.tfplan"
        ]
    );
}

#[test]
fn a_queued_run_plans_with_terraforms_lock_timeout_before_the_out_file() {
    let plan = apply(Roll::All {
        tag: "3f2c1ab".into(),
    });
    let config = TerraformConfig::default();
    let out = Path::new("/tmp/x/roll.tfplan");
    let waiting = PlanOptions {
        lock_timeout: Some(std::time::Duration::from_secs(600)),
    };
    let planned = plan.plan_args_with(&config, out, waiting);
    assert_eq!(
        planned[..5],
        [
            "-chdir=infra/terraform/aws",
            "plan",
            "-input=false",
            "-lock-timeout=600s",
            "-out=/tmp/x/roll.tfplan"
        ]
    );
    let mut without = planned.clone();
    without.remove(3);
    assert_eq!(without, plan.plan_args(&config, out));
}

#[test]
fn a_promotion_gives_each_service_its_own_tag() {
    let plan = apply(Roll::Only {
        services: vec!["api".into(), "auth".into()],
        tag: "3f2c1ab".into(),
        tags: [("auth".to_owned(), "9e8d7c6".to_owned())].into(),
        renew: Vec::new(),
    });
    let planned = plan.plan_args(&TerraformConfig::default(), Path::new("x"));
    assert!(
        planned.contains(&r#"image_tags={"api"="3f2c1ab","auth"="9e8d7c6"}"#.to_owned()),
        "{planned:?}"
    );
}

#[test]
fn owners_are_the_rolled_services_with_their_targets() {
    let config = TerraformConfig::default();
    let all: Vec<(String, String)> = ["api", "auth"]
        .iter()
        .map(|s| (s.to_string(), format!("platform/{s}")))
        .collect();
    let only = apply(Roll::Only {
        services: vec!["auth".into()],
        tag: "t".into(),
        tags: Default::default(),
        renew: Vec::new(),
    });
    let owners = only.owners(&config, &all);
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].service, "auth");
    assert_eq!(owners[0].repository, "platform/auth");
    assert_eq!(
        owners[0].targets,
        [
            r#"aws_ecs_task_definition.service["auth"]"#,
            r#"aws_ecs_service.service["auth"]"#
        ]
    );
    let full = apply(Roll::All { tag: "t".into() });
    assert_eq!(full.owners(&config, &all).len(), 2);
}

#[test]
fn workspace_is_the_tfvars_name() {
    assert_eq!(
        workspace_for(Path::new("tfvars/sandbox.tfvars")).as_deref(),
        Some("sandbox")
    );
    assert_eq!(
        workspace_for(Path::new("/x/prod.tfvars.json")).as_deref(),
        Some("prod")
    );
    assert_eq!(workspace_for(Path::new("tfvars/notes.txt")), None);
}

#[test]
fn hcl_strings_escape_quotes_templates_and_controls_but_not_unicode() {
    assert_eq!(hcl_string("api"), r#""api""#);
    assert_eq!(hcl_string("café"), "\"café\"");
    assert_eq!(hcl_string(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(hcl_string("${x} %{y} $z"), r#""$${x} %%{y} $z""#);
    assert_eq!(hcl_string("a\nb\u{7}"), r#""a\nb\u0007""#);
}

fn owned(addresses: &[&str]) -> Vec<String> {
    addresses.iter().map(|a| a.to_string()).collect()
}

#[test]
fn targets_must_match_the_state_or_be_new_instances_of_its_resources() {
    let state = owned(&[
        r#"terraform_data.task_definition["api"]"#,
        r#"terraform_data.service["api"]"#,
        r#"module.ecs["auth"].aws_ecs_service.this"#,
    ]);
    let good = owned(&[
        r#"terraform_data.task_definition["api"]"#,
        // A new service: a new instance of a resource the state has.
        r#"terraform_data.service["billing"]"#,
        // A whole module instance, and a resource without its key.
        r#"module.ecs["auth"]"#,
        "terraform_data.service",
    ]);
    assert!(unmatched_targets(&good, &state).is_empty());
    let bad = owned(&[
        r#"aws_ecs_service.service["api"]"#,
        r#"module.ecs["auth"].aws_ecs_task_definition.this"#,
        r#"terraform_data.task_definitions["api"]"#,
    ]);
    assert_eq!(
        unmatched_targets(&bad, &state),
        bad.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Nothing applied yet: everything would be created.
    assert!(unmatched_targets(&bad, &[]).is_empty());
    assert_eq!(
        addresses_of("api", &state),
        [
            r#"terraform_data.task_definition["api"]"#,
            r#"terraform_data.service["api"]"#
        ]
    );
    assert_eq!(
        addresses_of("auth", &state),
        [r#"module.ecs["auth"].aws_ecs_service.this"#]
    );
}

#[test]
fn a_renewed_service_replaces_its_task_definition_never_its_service() {
    let plan = apply(Roll::Only {
        services: vec!["api".into(), "auth".into()],
        tag: "3f2c1ab".into(),
        tags: [("auth".to_owned(), "a1b2c3d".to_owned())].into(),
        renew: vec!["auth".into()],
    });
    let args = plan.plan_args(&TerraformConfig::default(), Path::new("roll.tfplan"));
    let replaced: Vec<&String> = args.iter().filter(|a| a.starts_with("-replace=")).collect();
    assert_eq!(
        replaced,
        [r#"-replace=aws_ecs_task_definition.service["auth"]"#],
        "{args:?}"
    );
    assert!(super::names_a_task_definition(
        r#"terraform_data.task_definition["auth"]"#
    ));
    assert!(!super::names_a_task_definition(
        r#"aws_ecs_service.service["auth"]"#
    ));
    assert!(!super::names_a_task_definition(
        r#"terraform_data.service["auth"]"#
    ));
}
