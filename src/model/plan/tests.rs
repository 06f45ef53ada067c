use super::*;

fn service(name: &str, action: Action) -> ServiceStep {
    ServiceStep {
        name: name.to_owned(),
        action,
        reason: String::new(),
        cause: None,
        repository: name.to_owned(),
        image: format!("{name}:abc1234"),
        restore: None,
    }
}

fn spa(name: &str, action: Action) -> SpaStep {
    SpaStep {
        name: name.to_owned(),
        action,
        reason: String::new(),
        cause: None,
        build: String::new(),
        output: PathBuf::from("dist"),
        bucket: String::new(),
        dirty: Vec::new(),
        recorded_sha: String::new(),
        restore: None,
    }
}

fn plan(services: Vec<ServiceStep>, spas: Vec<SpaStep>) -> Plan {
    Plan {
        repo: PathBuf::from("."),
        config: None,
        head: Head {
            sha: "abc1234".repeat(5),
            short_sha: "abc1234".to_owned(),
            branch: None,
        },
        mode: Mode::Changed,
        image_tag: "abc1234".to_owned(),
        rollback_to: None,
        undo: None,
        registry: Registry {
            host: None,
            source: String::new(),
        },
        uncommitted: Vec::new(),
        services,
        spas,
        terraform: None,
        promotion: None,
    }
}

fn service_names<'a>(steps: impl Iterator<Item = &'a ServiceStep>) -> Vec<&'a str> {
    steps.map(|s| s.name.as_str()).collect()
}

fn spa_names<'a>(steps: impl Iterator<Item = &'a SpaStep>) -> Vec<&'a str> {
    steps.map(|s| s.name.as_str()).collect()
}

#[test]
fn the_named_filters_pick_steps_by_action_in_plan_order() {
    let plan = plan(
        vec![
            service("api", Action::Deploy),
            service("auth", Action::Skip),
            service("web", Action::Check),
            service("jobs", Action::Deploy),
        ],
        vec![spa("admin", Action::Skip), spa("site", Action::Check)],
    );
    assert_eq!(service_names(plan.deploying_services()), ["api", "jobs"]);
    assert_eq!(service_names(plan.services_to(Action::Check)), ["web"]);
    assert_eq!(service_names(plan.services_to(Action::Skip)), ["auth"]);
    assert_eq!(
        service_names(plan.touched_services()),
        ["api", "web", "jobs"]
    );
    assert_eq!(spa_names(plan.spas_to(Action::Check)), ["site"]);
    assert_eq!(spa_names(plan.spas_to(Action::Deploy)), Vec::<&str>::new());
    assert_eq!(spa_names(plan.touched_spas()), ["site"]);
    assert!(plan.has_work());
}

#[test]
fn a_plan_that_skips_everything_has_no_work() {
    let skipped = plan(
        vec![service("api", Action::Skip)],
        vec![spa("site", Action::Skip)],
    );
    assert!(!skipped.has_work());
    assert_eq!(skipped.touched_services().count(), 0);
    // One SPA to check is work, with every service skipped.
    let one_spa = plan(
        vec![service("api", Action::Skip)],
        vec![spa("site", Action::Check)],
    );
    assert!(one_spa.has_work());
}
