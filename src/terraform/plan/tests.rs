use serde_json::json;

use super::*;

/// A full plan captured from the test bed's terraform (Terraform 1.15) on the fixture
/// platform, trimmed to api, auth, webhooks and the alarm: api and auth roll to
/// `abc1234`, webhooks was dropped from `services` (destroyed), the alarm's threshold
/// moved from 80 to 90. `variables` still holds the fake db_password, as terraform
/// writes it.
const FULL_PLAN: &str = include_str!("../testdata/plan_full.json");
const SECRET: &str = "s3cr3t-0123456789abcdef";

fn owner(service: &str) -> ServiceResources {
    ServiceResources {
        service: service.into(),
        repository: service.into(),
        targets: vec![
            format!(r#"terraform_data.task_definition["{service}"]"#),
            format!(r#"terraform_data.service["{service}"]"#),
        ],
    }
}

fn full_review() -> Review {
    let plan = PlanDiff::from_show_json(FULL_PLAN).unwrap();
    Review::new(&plan, &[owner("api"), owner("auth"), owner("webhooks")])
}

#[test]
fn actions_map_to_one_kind() {
    let kind = |actions: &[&str]| {
        ChangeKind::from_actions(&actions.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(kind(&["delete", "create"]), ChangeKind::Replace);
    assert_eq!(kind(&["create", "delete"]), ChangeKind::Replace);
    assert_eq!(kind(&["delete"]), ChangeKind::Delete);
    assert_eq!(kind(&["update"]), ChangeKind::Update);
    assert_eq!(kind(&["no-op"]), ChangeKind::NoOp);
    assert_eq!(kind(&["read"]), ChangeKind::Read);
    assert_eq!(kind(&["forget"]), ChangeKind::Forget);
}

#[test]
fn a_captured_plan_gives_each_service_its_tag_change_and_lists_other_infrastructure() {
    let review = full_review();
    let api = &review.services[0];
    assert_eq!(api.service, "api");
    assert_eq!(
        api.image,
        Some(ImageChange {
            from: Some("bootstrap".into()),
            to: Some("abc1234".into())
        })
    );
    // The image (and triggers_replace, the same string) is the tag change; ids and
    // outputs are known only after the apply; db_password did not change.
    assert!(api.attributes.is_empty(), "{:?}", api.attributes);
    assert_eq!(
        api.resources,
        [
            AddressChange {
                address: r#"terraform_data.service["api"]"#.into(),
                action: ChangeKind::Replace
            },
            AddressChange {
                address: r#"terraform_data.task_definition["api"]"#.into(),
                action: ChangeKind::Replace
            },
        ]
    );
    assert_eq!(
        review.other,
        [AddressChange {
            address: "terraform_data.alarm".into(),
            action: ChangeKind::Update
        }]
    );
    let webhooks = &review.services[2];
    assert_eq!(
        webhooks.image,
        Some(ImageChange {
            from: Some("bootstrap".into()),
            to: None
        })
    );
    assert_eq!(
        review.destroyed,
        [
            r#"terraform_data.service["webhooks"]"#,
            r#"terraform_data.task_definition["webhooks"]"#
        ]
    );
    // The alarm and both destroys need the flag; api's replacements are its roll.
    let accepted: Vec<String> = review
        .needs_acceptance()
        .into_iter()
        .map(|c| c.address)
        .collect();
    assert_eq!(
        accepted,
        [
            "terraform_data.alarm",
            r#"terraform_data.service["webhooks"]"#,
            r#"terraform_data.task_definition["webhooks"]"#
        ]
    );
}

#[test]
fn a_targeted_plan_of_own_resources_needs_no_acceptance() {
    let plan = PlanDiff::from_show_json(FULL_PLAN).unwrap();
    let only_api = PlanDiff {
        changes: plan
            .changes
            .into_iter()
            .filter(|c| c.address.contains(r#"["api"]"#))
            .collect(),
    };
    let review = Review::new(&only_api, &[owner("api")]);
    assert!(review.other.is_empty());
    assert!(review.needs_acceptance().is_empty());
    let text = review.render(false);
    assert!(text.contains("api  image bootstrap → abc1234"), "{text}");
    assert!(text.contains("no other infrastructure changes"), "{text}");
}

#[test]
fn the_rendered_block_names_changes_and_paints_only_destroys_red() {
    let review = full_review();
    let plain = review.render(false);
    assert!(
        plain.contains("auth      image bootstrap → abc1234"),
        "{plain}"
    );
    assert!(
        plain.contains("webhooks  image bootstrap → (none)"),
        "{plain}"
    );
    assert!(
        plain.contains("1 change(s) to infrastructure outside the deployment"),
        "{plain}"
    );
    assert!(
        plain.contains("~   update   terraform_data.alarm"),
        "{plain}"
    );
    assert!(!plain.contains('\x1b'));
    let coloured = review.render(true);
    let red: Vec<&str> = coloured
        .lines()
        .filter(|line| line.starts_with("\x1b[1;31m") && line.ends_with("\x1b[0m"))
        .map(|line| line.trim_start_matches("\x1b[1;31m").trim())
        .collect();
    assert_eq!(
        red,
        [
            "-   destroy  terraform_data.service[\"webhooks\"]\x1b[0m",
            "-   destroy  terraform_data.task_definition[\"webhooks\"]\x1b[0m"
        ],
        "{coloured}"
    );
}

#[test]
fn no_value_of_the_plan_reaches_the_text_or_the_json() {
    let review = full_review();
    let json = serde_json::to_string(&review).unwrap();
    for shown in [review.render(false), json] {
        assert!(!shown.contains(SECRET), "{shown}");
        // The alarm's old and new thresholds are values too.
        assert!(!shown.contains("90") && !shown.contains("80"), "{shown}");
    }
}

#[test]
fn a_changed_secret_is_named_as_sensitive_and_its_values_never_shown() {
    let mut plan = PlanDiff::from_show_json(FULL_PLAN).unwrap();
    plan.changes
        .retain(|c| c.address == r#"terraform_data.task_definition["api"]"#);
    plan.changes[0].after["triggers_replace"]["db_password"] = json!("s3cr3t-rotated");
    let review = Review::new(&plan, &[owner("api")]);
    assert_eq!(
        review.services[0].attributes,
        ["triggers_replace.db_password (sensitive)"]
    );
    let shown = format!(
        "{}{}",
        review.render(false),
        serde_json::to_string(&review).unwrap()
    );
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

fn update(before: Value, after: Value, after_sensitive: Value) -> ResourceChange {
    ResourceChange {
        address: r#"aws_ecs_task_definition.service["api"]"#.into(),
        kind: ChangeKind::Replace,
        before,
        after,
        before_sensitive: json!({}),
        after_sensitive,
        after_unknown: json!({"arn": true, "revision": true}),
    }
}

fn ecs_owner() -> ServiceResources {
    ServiceResources {
        service: "api".into(),
        repository: "platform/api".into(),
        targets: vec![
            r#"aws_ecs_task_definition.service["api"]"#.into(),
            r#"aws_ecs_service.service["api"]"#.into(),
        ],
    }
}

fn containers(image: &str, cpu: u32, env: &[(&str, &str)]) -> String {
    let environment: Vec<Value> = env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!([{"name": "api", "image": image, "cpu": cpu, "environment": environment}]).to_string()
}

#[test]
fn an_ecs_task_definition_gives_the_tag_from_container_definitions_and_names_not_values() {
    let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let change = update(
        json!({
            "arn": "arn:old",
            "family": "api",
            "memory": "512",
            "container_definitions": containers(
                &format!("{registry}/platform/api:1111111"),
                256,
                &[("LOG_LEVEL", "info"), ("DB_HOST", "db-a.internal")],
            ),
            "secret_token": "hunter2-old",
        }),
        json!({
            "family": "api",
            "memory": "1024",
            "container_definitions": containers(
                &format!("{registry}/platform/api:2222222"),
                512,
                &[("LOG_LEVEL", "debug"), ("DB_HOST", "db-a.internal"), ("NEW_FLAG", "on")],
            ),
            "secret_token": "hunter2-new",
        }),
        json!({"secret_token": true}),
    );
    let review = Review::new(
        &PlanDiff {
            changes: vec![change],
        },
        &[ecs_owner()],
    );
    let api = &review.services[0];
    assert_eq!(
        api.image,
        Some(ImageChange {
            from: Some("1111111".into()),
            to: Some("2222222".into())
        })
    );
    assert_eq!(
        api.attributes,
        [
            "container_definitions[api].cpu",
            "container_definitions[api].environment[LOG_LEVEL].value",
            "container_definitions[api].environment[NEW_FLAG]",
            "memory",
            "secret_token (sensitive)",
        ]
    );
    let shown = format!(
        "{}{}",
        review.render(false),
        serde_json::to_string(&review).unwrap()
    );
    for value in ["hunter2", "debug", "db-a.internal", "1024"] {
        assert!(!shown.contains(value), "{value} leaked: {shown}");
    }
}

#[test]
fn the_image_rule_wants_the_services_repository_and_skips_sensitive_values() {
    assert_eq!(
        image_tag_of("r.example/api:abc", "api").as_deref(),
        Some("abc")
    );
    assert_eq!(image_tag_of("api:abc", "api").as_deref(), Some("abc"));
    assert_eq!(
        image_tag_of("127.0.0.1:5000/api:abc", "api").as_deref(),
        Some("abc")
    );
    assert_eq!(
        image_tag_of("r.example/api@sha256:00ff", "api").as_deref(),
        Some("sha256:00ff")
    );
    // Another service's repository, a repository that only ends like it, no tag.
    assert_eq!(image_tag_of("r.example/clinical-api:abc", "api"), None);
    assert_eq!(image_tag_of("r.example/myapi:abc", "api"), None);
    assert_eq!(image_tag_of("127.0.0.1:5000/api", "api"), None);
    // A sensitive value that happens to look like an image is never read.
    let value = json!({"secret": "r.example/api:leaked", "image": "r.example/api:good"});
    assert_eq!(
        first_image(&value, &json!({"secret": true}), "api").as_deref(),
        Some("good")
    );
    assert_eq!(first_image(&value, &json!(true), "api"), None);
}

#[test]
fn not_a_plan_is_an_error_that_quotes_nothing() {
    let err = PlanDiff::from_show_json(r#"{"resource_changes": "s3cr3t"}"#).unwrap_err();
    assert!(!format!("{err:#}").contains("s3cr3t"), "{err:#}");
}
