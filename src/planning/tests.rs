//! The plan as [`super::plan`] makes it from a request, and as the decisions made once
//! AWS is read change it (`decisions`), on the integration tests' fixture platform.

use super::*;
use crate::model::config::ChangesMode;
use crate::model::plan::{
    shell_words, Cause, Decision, Head, SpaSource, SpaSources, SAVED_PLAN_NAME,
};

mod decisions;
mod environments;
mod spas;

/// The integration tests' fixture platform (9 services, 2 SPAs, the terraform root);
/// its tracked `example.tfvars` names the workspace `example`.
pub(crate) fn fixture() -> Platform {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/platform");
    crate::checkout::load_platform(&root).unwrap()
}

/// The fixture's SPAs as the working tree holds them: their directories, nothing
/// uncommitted.
pub(crate) fn fixture_sources() -> SpaSources {
    ["admin-ui", "simulator"]
        .map(|name| (name.to_owned(), SpaSource::Dirty(Vec::new())))
        .into()
}

const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";
const OLD: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn head(sha: &str) -> Head {
    Head {
        sha: sha.to_owned(),
        short_sha: sha[..7].to_owned(),
        branch: Some("main".into()),
    }
}

/// A run of `selection`, with or without `--skip-tf`, or `deploy rollback OLD`.
pub(crate) fn plan(selection: Selection, skip_tf: bool, rollback: bool) -> Result<Plan> {
    plan_in(selection, skip_tf, rollback, None)
}

/// [`plan`] with `--changed=<mode>` given.
fn plan_in(
    selection: Selection,
    skip_tf: bool,
    rollback: bool,
    changes_mode: Option<ChangesMode>,
) -> Result<Plan> {
    let platform = fixture();
    let request = Request {
        selection,
        var_file: (!skip_tf).then(|| PathBuf::from("tfvars/example.tfvars")),
        skip_spas: false,
        allow_dirty_spas: false,
        skip_tf,
        assume_yes: false,
        dry_run: true,
        rollback: rollback.then(|| OLD.to_owned()),
        changes_mode,
        ..Request::default()
    };
    let context = Context {
        head: head(HEAD),
        uncommitted: Vec::new(),
        cwd: &platform.root,
        registry_env: Default::default(),
        rollback_to: rollback.then(|| head(OLD)),
        spa_sources: fixture_sources(),
    };
    crate::planning::plan(&platform, &request, context)
}

fn named(names: &[&str]) -> Selection {
    Selection::Named(names.iter().map(|name| name.to_string()).collect())
}

/// Each service's action and reason, compactly: `api DEPLOY full deploy`.
fn services(plan: &Plan) -> Vec<String> {
    plan.services
        .iter()
        .map(|s| format!("{} {} {}", s.name, s.action, s.reason))
        .collect()
}

fn spa_actions(plan: &Plan) -> Vec<Action> {
    plan.spas.iter().map(|s| s.action).collect()
}

fn command(plan: &Plan) -> Option<&str> {
    plan.terraform.as_ref().map(TerraformStep::command)
}

/// The `-var`/`-target` part the fixture's config adds for a partial roll of `services`.
fn partial_roll(tag: &str, services: &[&str]) -> String {
    let entries: Vec<String> = services
        .iter()
        .map(|s| format!(r#""{s}"="{tag}""#))
        .collect();
    let targets: Vec<String> = services
        .iter()
        .map(|s| {
            format!(r#"'-target=terraform_data.task_definition["{s}"]' '-target=terraform_data.service["{s}"]'"#)
        })
        .collect();
    format!(
        "terraform -chdir=infra/terraform/aws plan -input=false -out=roll.tfplan -var-file=tfvars/example.tfvars -var 'image_tags={{{}}}' -var image_tag={tag} {}{APPLY_SAVED}",
        entries.join(","),
        targets.join(" ")
    )
}

/// The second half of every terraform command: the saved plan applied.
const APPLY_SAVED: &str = " && terraform -chdir=infra/terraform/aws apply -input=false roll.tfplan";

#[test]
fn a_full_deploy_builds_everything_and_rolls_the_global_tag() {
    let plan = plan(Selection::All, false, false).unwrap();
    assert_eq!(plan.mode, Mode::Full);
    assert_eq!(plan.image_tag, "0123456");
    assert!(services(&plan)
        .iter()
        .all(|s| s.ends_with(" DEPLOY full deploy")));
    assert_eq!(plan.services.len(), 9);
    assert_eq!(plan.services[0].image, "api:0123456");
    assert_eq!(spa_actions(&plan), [Action::Deploy, Action::Deploy]);
    assert_eq!(
        command(&plan),
        Some(
            format!("terraform -chdir=infra/terraform/aws plan -input=false -out=roll.tfplan -var-file=tfvars/example.tfvars -var image_tag=0123456{APPLY_SAVED}").as_str()
        )
    );
}

#[test]
fn a_full_deploy_with_skip_tf_has_no_terraform_step() {
    let plan = plan(Selection::All, true, false).unwrap();
    assert_eq!(plan.mode, Mode::Full);
    assert_eq!(spa_actions(&plan), [Action::Deploy, Action::Deploy]);
    assert!(plan.terraform.is_none());
    assert!(plan.has_work());
}

#[test]
fn changed_checks_every_service_and_skips_the_spas() {
    let plan = plan(Selection::Changed, false, false).unwrap();
    assert_eq!(plan.mode, Mode::Changed);
    assert!(plan.services.iter().all(|s| s.action == Action::Check));
    assert_eq!(spa_actions(&plan), [Action::Skip, Action::Skip]);
    // Undecided, the roll names every service still to be checked.
    let every: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        command(&plan),
        Some(partial_roll("0123456", &every).as_str())
    );
}

#[test]
fn named_services_deploy_alone_and_roll_alone() {
    let plan = plan(named(&["webhooks", "auth", "auth"]), false, false).unwrap();
    assert_eq!(plan.mode, Mode::Services);
    let deploying: Vec<String> = services(&plan)
        .into_iter()
        .filter(|s| !s.ends_with("SKIP not selected"))
        .collect();
    assert_eq!(
        deploying,
        [
            "auth DEPLOY selected with --services",
            "webhooks DEPLOY selected with --services"
        ]
    );
    assert_eq!(
        command(&plan),
        Some(partial_roll("0123456", &["auth", "webhooks"]).as_str())
    );
}

#[test]
fn named_services_with_skip_tf_push_only() {
    let plan = plan(named(&["api"]), true, false).unwrap();
    assert_eq!(plan.mode, Mode::Services);
    assert_eq!(plan.services[0].action, Action::Deploy);
    assert!(plan.services[1..].iter().all(|s| s.action == Action::Skip));
    assert!(plan.terraform.is_none());
}

#[test]
fn a_rollback_of_everything_rolls_the_old_tag_globally_and_checks_the_spas() {
    let plan = plan(Selection::All, false, true).unwrap();
    assert_eq!(plan.mode, Mode::Rollback);
    assert_eq!(plan.image_tag, "fedcba9");
    assert_eq!(plan.commit(), OLD);
    assert!(services(&plan)
        .iter()
        .all(|s| s.ends_with(" DEPLOY rolled back to fedcba9: its image, not rebuilt")));
    assert_eq!(plan.services[0].image, "api:fedcba9");
    // Their kept releases decide, once the manifests are read (deploy::spa_restore).
    assert_eq!(spa_actions(&plan), [Action::Check, Action::Check]);
    assert_eq!(
        plan.spas[0].reason,
        "its kept release of fedcba9, or the newest before it"
    );
    assert_eq!(
        command(&plan),
        Some(
            format!("terraform -chdir=infra/terraform/aws plan -input=false -out=roll.tfplan -var-file=tfvars/example.tfvars -var image_tag=fedcba9{APPLY_SAVED}").as_str()
        )
    );
}

#[test]
fn a_rollback_of_named_services_rolls_only_them() {
    let plan = plan(named(&["billing"]), false, true).unwrap();
    assert_eq!(plan.mode, Mode::Rollback);
    let billing = plan.services.iter().find(|s| s.name == "billing").unwrap();
    assert_eq!(
        billing.reason,
        "rolled back to fedcba9: its image, not rebuilt"
    );
    assert!(plan
        .services
        .iter()
        .filter(|s| s.name != "billing")
        .all(|s| s.action == Action::Skip && s.reason == "not selected"));
    assert_eq!(
        command(&plan),
        Some(partial_roll("fedcba9", &["billing"]).as_str())
    );
    assert!(plan.spas.iter().all(|s| s.action == Action::Skip
        && s.reason == "--services names services only: add --spas to restore SPAs too"));
}

#[test]
fn a_rollback_restores_the_spas_named_or_none() {
    let platform = fixture();
    let names: Vec<String> = platform.spas.iter().map(|s| s.name.clone()).collect();
    // --spas, --skip-spas, --services → each SPA's action
    for (spas, skip, services, expected) in [
        (
            Some(vec![names[0].clone()]),
            false,
            false,
            [Action::Check, Action::Skip],
        ),
        (
            Some(vec![names[1].clone()]),
            false,
            true,
            [Action::Skip, Action::Check],
        ),
        (None, true, false, [Action::Skip, Action::Skip]),
        (None, false, false, [Action::Check, Action::Check]),
    ] {
        let request = Request {
            selection: if services {
                named(&["api"])
            } else {
                Selection::All
            },
            var_file: Some(PathBuf::from("tfvars/example.tfvars")),
            skip_spas: skip,
            spas: spas.clone(),
            dry_run: true,
            rollback: Some(OLD.to_owned()),
            ..Request::default()
        };
        let context = Context {
            head: head(HEAD),
            uncommitted: Vec::new(),
            cwd: &platform.root,
            registry_env: Default::default(),
            rollback_to: Some(head(OLD)),
            spa_sources: fixture_sources(),
        };
        let plan = crate::planning::plan(&platform, &request, context).unwrap();
        assert_eq!(spa_actions(&plan), expected, "{spas:?} {skip} {services}");
    }
    let request = Request {
        var_file: Some(PathBuf::from("tfvars/example.tfvars")),
        spas: Some(vec!["nope".to_owned()]),
        rollback: Some(OLD.to_owned()),
        ..Request::default()
    };
    let context = Context {
        head: head(HEAD),
        uncommitted: Vec::new(),
        cwd: &platform.root,
        registry_env: Default::default(),
        rollback_to: Some(head(OLD)),
        spa_sources: fixture_sources(),
    };
    let err = crate::planning::plan(&platform, &request, context).unwrap_err();
    assert!(
        err.to_string().starts_with("--spas nope: no such SPA"),
        "{err}"
    );
}

#[test]
fn bad_service_names_are_usage_errors() {
    for (names, message) in [
        (vec![], "--services needs service names separated by commas, e.g. --services api,auth"),
        (vec!["api", ""], "--services needs service names separated by commas, e.g. --services api,auth"),
        (vec!["slack-agent"], "--services: slack-agent deploys on its own and is never part of a run (services.exclude, default)"),
        (vec!["nope", "api", "gone"], "--services: unknown services nope, gone; the services are: api, auth, billing, clinical-api, files, notifications, reports, scheduler, webhooks"),
    ] {
        let err = plan(named(&names), false, false).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
        assert_eq!(format!("{err:#}"), message);
    }
}

#[test]
fn the_plan_table() {
    let mut plan = plan(Selection::Changed, false, false).unwrap();
    let decisions = vec![
        (
            "api".to_owned(),
            Decision::deploy("lockfile pnpm-lock.yaml changed"),
        ),
        (
            "auth".to_owned(),
            Decision::skip("unchanged since live fedcba9"),
        ),
        (
            "billing".to_owned(),
            Decision::deploy(r#"live tag "latest" is not a git SHA"#),
        ),
    ];
    plan.decide(decisions, &Default::default(), &fixture().config.terraform);
    plan.uncommitted = vec!["services/api/notes.txt".into()];
    let text = crate::ui::table::without_colour(&plan.to_string())
        .replace(&plan.repo.display().to_string(), "[REPO]");
    insta::assert_snapshot!(text);
}

#[test]
fn shell_words_quote_only_what_needs_it() {
    let line =
        shell_words(["terraform", "-var", r#"image_tags={"api"="abc"}"#, "it's"].map(String::from));
    assert_eq!(
        line,
        r#"terraform -var 'image_tags={"api"="abc"}' 'it'\''s'"#
    );
}

/// The displayed command is for pasting into a shell: a POSIX shell (the `shell-words`
/// crate's splitter) must read back exactly the arguments terraform gets. The crate's
/// own `join` is not used to print it: it also quotes every `=` (`'-chdir=…'`,
/// `'image_tag=…'`), which would change the command the README and snapshots show.
#[test]
fn the_terraform_command_splits_back_into_its_arguments() {
    let platform = fixture();
    let mut plan = plan(named(&["api", "clinical-api"]), false, false).unwrap();
    let step = plan.terraform.as_mut().unwrap();
    step.apply.var_file = PathBuf::from("tfvars/café's env.tfvars");
    let roll = step.apply.roll.clone();
    step.set_roll(roll, &platform.config.terraform);
    let args = step
        .apply
        .plan_args(&platform.config.terraform, Path::new(SAVED_PLAN_NAME));
    let (planning, applying) = step.command().split_once(" && ").unwrap();
    let split = shell_words::split(planning).unwrap();
    assert_eq!(split[0], "terraform");
    assert_eq!(split[1..], args);
    assert_eq!(
        shell_words::split(applying).unwrap()[1..],
        step.apply.apply_saved_args(Path::new(SAVED_PLAN_NAME))
    );
    assert!(step
        .command()
        .contains(r"'-var-file=tfvars/café'\''s env.tfvars'"));
    for arg in [
        "", "a b", "$HOME", "`x`", "a\"b", "!x", "*", "~", "é", "{a,b}", "a\nb",
    ] {
        let line = shell_words(["echo".to_owned(), arg.to_owned()]);
        assert_eq!(shell_words::split(&line).unwrap(), ["echo", arg], "{line}");
    }
}
