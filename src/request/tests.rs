use super::*;
use clap::Parser;

fn parse(args: &[&str]) -> (Globals, CommandRequest) {
    let cli = Cli::try_parse_from(std::iter::once("deploy").chain(args.iter().copied())).unwrap();
    (Globals::from_cli(&cli), CommandRequest::from_cli(&cli))
}

#[test]
fn globals_are_read_wherever_they_are_typed() {
    let (globals, request) = parse(&[
        "status",
        "-q",
        "--profile",
        "prod",
        "--output",
        "json",
        "-C",
        "/tmp",
    ]);
    assert_eq!(
        globals,
        Globals {
            verbose: 0,
            quiet: true,
            output: OutputFormat::Json,
            repo: Some("/tmp".into()),
            profile: Some("prod".into()),
        }
    );
    assert!(matches!(
        request,
        CommandRequest::Status(StatusRequest { var_file: None, .. })
    ));
}

#[test]
fn a_deploy_trims_names_and_drops_the_var_file_and_lock_wait_with_skip_tf() {
    let (_, request) = parse(&[
        "--skip-tf",
        "--var-file",
        "x.tfvars",
        "--services",
        "api, auth",
        "--lock-wait",
        "5m",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert_eq!(
        request.selection,
        Selection::Named(vec!["api".into(), "auth".into()])
    );
    assert_eq!(request.var_file, None);
    assert_eq!(request.lock_wait, None, "no lock to wait for");
    assert!(request.skip_tf && request.rollback.is_none());
}

#[test]
fn a_promotion_is_a_deploy_request_to_the_target_without_spas() {
    let (globals, request) = parse(&[
        "promote",
        "--from",
        "tfvars/sandbox.tfvars",
        "--to",
        "tfvars/prod.tfvars",
        "--services",
        "api,auth",
        "--profile",
        "prod",
        "--profile-from",
        "sandbox",
        "-y",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy request: {request:?}");
    };
    assert_eq!(globals.profile.as_deref(), Some("prod"));
    assert_eq!(
        request.var_file.as_deref(),
        Some(std::path::Path::new("tfvars/prod.tfvars"))
    );
    assert_eq!(
        request.promote,
        Some(Promotion {
            from_var_file: "tfvars/sandbox.tfvars".into(),
            profile_from: Some("sandbox".into()),
        })
    );
    assert_eq!(
        request.selection,
        Selection::Named(vec!["api".into(), "auth".into()])
    );
    assert!(request.skip_spas && request.assume_yes && !request.dry_run);
}

#[test]
fn a_rollback_is_a_deploy_request_restoring_spas_unless_told() {
    let (_, request) = parse(&[
        "rollback",
        "HEAD~1",
        "--var-file",
        "tfvars/prod.tfvars",
        "-y",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert_eq!(request.rollback.as_deref(), Some("HEAD~1"));
    assert_eq!(request.selection, Selection::All);
    assert!(!request.skip_spas && request.assume_yes && !request.dry_run);
    let (_, request) = parse(&[
        "rollback",
        "HEAD~1",
        "--var-file",
        "tfvars/prod.tfvars",
        "--spas",
        "admin-ui, simulator",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert_eq!(
        request.spas,
        Some(vec!["admin-ui".to_owned(), "simulator".to_owned()])
    );
    assert!(Cli::try_parse_from([
        "deploy",
        "rollback",
        "HEAD~1",
        "--var-file",
        "x.tfvars",
        "--spas",
        "a",
        "--skip-spas"
    ])
    .is_err());
}

#[test]
fn diff_is_a_read_only_deploy_request_needing_no_confirmation() {
    let (_, request) = parse(&["diff", "--var-file", "tfvars/prod.tfvars", "--changed"]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert!(request.diff_only && request.assume_yes && request.skip_spas);
    assert!(!request.allow_infra_changes && !request.dry_run);
    assert_eq!(request.selection, Selection::Changed);
    let (_, request) = parse(&[
        "rollback",
        "HEAD~1",
        "--var-file",
        "tfvars/prod.tfvars",
        "--allow-infra-changes",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert!(request.allow_infra_changes && !request.diff_only);
}

#[test]
fn undo_is_a_deploy_request_building_nothing_and_history_is_read_only() {
    let (_, request) = parse(&[
        "undo",
        "--var-file",
        "tfvars/prod.tfvars",
        "-y",
        "--rollback-on-failure",
    ]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert!(request.undo && !request.skip_spas && request.assume_yes);
    assert!(request.rollback_on_failure && request.rollback.is_none());
    assert_eq!(request.selection, Selection::All);
    let (_, request) = parse(&[
        "history",
        "--var-file",
        "tfvars/prod.tfvars",
        "--services",
        "api, auth",
    ]);
    assert!(matches!(
        request,
        CommandRequest::History(HistoryRequest { limit: 20, services: Some(ref s), .. }) if s == &["api", "auth"]
    ));
    // `--service`, the old name, is kept as a hidden alias.
    let (_, request) = parse(&["history", "--var-file", "x.tfvars", "--service", "api"]);
    assert!(matches!(
        request,
        CommandRequest::History(HistoryRequest { services: Some(ref s), .. }) if s == &["api"]
    ));
    let (_, request) = parse(&["undo", "--var-file", "x.tfvars", "--services", "api"]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert!(request.undo);
    assert_eq!(request.selection, Selection::Named(vec!["api".into()]));
    let (_, request) = parse(&["status", "--services", "api"]);
    assert!(matches!(
        request,
        CommandRequest::Status(StatusRequest { services: Some(ref s), .. }) if s == &["api"]
    ));
    let (_, request) = parse(&["--var-file", "x.tfvars", "--rollback-on-failure"]);
    let CommandRequest::Deploy(request) = request else {
        panic!("not a deploy: {request:?}")
    };
    assert!(request.rollback_on_failure && !request.undo);
    assert!(Cli::try_parse_from(["deploy", "undo"]).is_err());
    assert!(Cli::try_parse_from(["deploy", "--skip-tf", "--rollback-on-failure"]).is_err());
}

#[test]
fn prune_and_unlock_carry_their_flags() {
    let (_, request) = parse(&["prune", "--keep", "5", "--skip-live-check"]);
    assert!(matches!(
        request,
        CommandRequest::Prune(PruneRequest {
            keep: 5,
            dry_run: false,
            skip_live_check: true,
            var_file: None
        })
    ));
    let (_, request) = parse(&["unlock", "--var-file", "tfvars/sandbox.tfvars"]);
    assert!(matches!(
        request,
        CommandRequest::Unlock(UnlockRequest { var_file }) if var_file == std::path::Path::new("tfvars/sandbox.tfvars")
    ));
}

#[test]
fn diff_changed_takes_the_mode_of_a_deploy() {
    for (flag, mode) in [
        ("--changed", None),
        ("--changed=graph", Some(ChangesMode::Graph)),
        ("--changed=runbook", Some(ChangesMode::Runbook)),
    ] {
        let (_, request) = parse(&["diff", "--var-file", "x.tfvars", flag]);
        let CommandRequest::Deploy(request) = request else {
            panic!("not a deploy: {request:?}")
        };
        assert!(request.diff_only);
        assert_eq!(request.selection, Selection::Changed, "{flag}");
        assert_eq!(request.changes_mode, mode, "{flag}");
    }
}
