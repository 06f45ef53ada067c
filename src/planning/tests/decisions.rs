//! The decisions made once AWS is read, applied to the plan: `--changed` narrowing the
//! roll, graph mode's SPAs and causes, `deploy undo`'s tags.

use super::*;
use crate::model::plan::Undo;

#[test]
fn decisions_narrow_the_roll_to_what_deploys() {
    let platform = fixture();
    let mut plan = plan(Selection::Changed, false, false).unwrap();
    let decisions = vec![
        (
            "files".to_owned(),
            Decision::deploy("services/files/src/a.ts changed"),
        ),
        (
            "api".to_owned(),
            Decision::deploy("shared package packages/common changed"),
        ),
        (
            "auth".to_owned(),
            Decision::skip("unchanged since live 0011223"),
        ),
    ];
    plan.decide(decisions, &Default::default(), &platform.config.terraform);
    let api = &plan.services[0];
    assert_eq!(
        (api.action, api.reason.as_str()),
        (Action::Deploy, "shared package packages/common changed")
    );
    assert_eq!(plan.services[1].action, Action::Skip);
    // Services without a decision stay as they were planned.
    assert_eq!(plan.services[2].action, Action::Check);
    assert_eq!(
        command(&plan),
        Some(partial_roll("0123456", &["api", "files"]).as_str())
    );
    assert!(plan.has_work());
}

#[test]
fn nothing_changed_means_no_work_and_nothing_to_roll() {
    let platform = fixture();
    let mut plan = plan(Selection::Changed, false, false).unwrap();
    let decisions = plan
        .services
        .iter()
        .map(|s| (s.name.clone(), Decision::skip("live tag 0123456 is HEAD")))
        .collect();
    plan.decide(decisions, &Default::default(), &platform.config.terraform);
    assert!(!plan.has_work());
    assert!(plan.to_string().ends_with("\nterraform: nothing to roll\n"));
}

#[test]
fn graph_mode_decides_spas_and_carries_the_chain_as_data() {
    // Runbook --changed skips SPAs; graph mode leaves them to the bucket's recorded SHA.
    let runbook = plan_in(Selection::Changed, false, false, None).unwrap();
    assert_eq!(spa_actions(&runbook), [Action::Skip, Action::Skip]);
    let mut graph = plan_in(Selection::Changed, false, false, Some(ChangesMode::Graph)).unwrap();
    assert_eq!(spa_actions(&graph), [Action::Deploy, Action::Deploy]);
    let chain = Cause::Package {
        path: "packages/events/src/x.ts".into(),
        chain: vec![
            "@platform/events".into(),
            "@platform/common".into(),
            "billing".into(),
        ],
    };
    graph.decide(
        vec![("billing".into(), Decision::because(chain.clone()))],
        &Default::default(),
        &fixture().config.terraform,
    );
    graph.decide_spas(vec![(
        "admin-ui".into(),
        Decision::skip(format!("unchanged since recorded {OLD}")),
    )]);
    let billing = graph.services.iter().find(|s| s.name == "billing").unwrap();
    assert_eq!(
        billing.reason,
        "packages/events/src/x.ts → @platform/events ← @platform/common ← billing"
    );
    let json = serde_json::to_value(&graph).unwrap();
    let billing_json = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "billing")
        .unwrap();
    assert_eq!(billing_json["cause"]["kind"], "package");
    assert_eq!(billing_json["cause"]["chain"][1], "@platform/common");
    assert_eq!(spa_actions(&graph), [Action::Skip, Action::Deploy]);
    // The runbook's plan has no cause at all in its JSON.
    let runbook_json = serde_json::to_string(&runbook).unwrap();
    assert!(!runbook_json.contains("cause"), "{runbook_json}");
}

#[test]
fn an_undo_restores_each_changed_service_to_its_own_tag_and_skips_the_rest() {
    let platform = fixture();
    let request = Request {
        var_file: Some(PathBuf::from("tfvars/example.tfvars")),
        skip_spas: true,
        dry_run: true,
        undo: true,
        ..Request::default()
    };
    let context = Context {
        head: head(HEAD),
        uncommitted: Vec::new(),
        cwd: &platform.root,
        registry_env: Default::default(),
        rollback_to: None,
        spa_sources: fixture_sources(),
    };
    let mut plan = crate::planning::plan(&platform, &request, context).unwrap();
    assert_eq!(plan.mode, Mode::Undo);
    assert!(plan.spas.iter().all(|s| s.action == Action::Skip));
    plan.restore(
        Undo {
            run_id: "r1".into(),
            tags: [
                ("api".into(), "aaaaaaa".into()),
                ("auth".into(), "bbbbbbb".into()),
            ]
            .into_iter()
            .collect(),
            left: vec![("files".into(), "ran nothing readable before run r1".into())],
        },
        &platform.config.terraform,
    );
    let deploying: Vec<(&str, &str)> = plan
        .services
        .iter()
        .filter(|s| s.action == Action::Deploy)
        .map(|s| (s.name.as_str(), s.image.as_str()))
        .collect();
    assert_eq!(
        deploying,
        [("api", "api:aaaaaaa"), ("auth", "auth:bbbbbbb")]
    );
    assert_eq!(plan.tag_of("auth"), "bbbbbbb");
    let files = plan.services.iter().find(|s| s.name == "files").unwrap();
    assert_eq!(files.reason, "ran nothing readable before run r1");
    let command = command(&plan).unwrap();
    assert!(
        command.contains(r#"image_tags={"api"="aaaaaaa","auth"="bbbbbbb"}"#),
        "{command}"
    );
    assert!(!command.contains(r#"["files"]"#), "{command}");
    assert!(plan.to_string().starts_with("Plan: undo of run r1"));
}

#[test]
fn a_restored_drift_rolls_its_recorded_tag_beside_the_built_ones() {
    let platform = fixture();
    let mut plan = plan(Selection::Changed, false, false).unwrap();
    let decisions = vec![
        ("api".to_owned(), Decision::deploy("services/api changed")),
        (
            "auth".to_owned(),
            Decision::deploy("drifted (runs :zz): restoring recorded :a1b2c3d, not rebuilt"),
        ),
        ("files".to_owned(), Decision::skip("unchanged")),
    ];
    // A restore for a skipped service is ignored: only a deployed one is rolled to it.
    let restore = std::collections::BTreeMap::from([
        ("auth".to_owned(), "a1b2c3d".to_owned()),
        ("files".to_owned(), "ffffff0".to_owned()),
    ]);
    plan.decide(decisions, &restore, &platform.config.terraform);
    assert_eq!(plan.tag_of("auth"), "a1b2c3d");
    assert_eq!(plan.tag_of("api"), "0123456");
    assert!(plan.is_restored("auth") && !plan.is_restored("api"));
    assert!(!plan.is_restored("files"));
    assert_eq!(plan.tag_of("files"), "0123456");
    let roll = command(&plan).unwrap();
    assert!(
        roll.contains(r#"image_tags={"api"="0123456","auth"="a1b2c3d"}"#),
        "{roll}"
    );
    // Terraform's state already holds the recorded tag: its task definition is renewed.
    assert!(
        roll.contains(r#"-replace=terraform_data.task_definition["auth"]"#)
            && !roll.contains(r#"-replace=terraform_data.service"#)
            && !roll.contains(r#"-replace=terraform_data.task_definition["api"]"#),
        "{roll}"
    );
    let json = serde_json::to_value(&plan).unwrap();
    let auth = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "auth")
        .unwrap();
    assert_eq!(auth["restore"], "a1b2c3d", "{auth}");
}
