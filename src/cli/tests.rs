use super::*;
use clap::CommandFactory;

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    parse_from(std::iter::once("deploy").chain(args.iter().copied()))
}

#[test]
fn global_options_are_accepted_before_and_after_a_command() {
    for args in [
        &[
            "-C",
            "dir",
            "-q",
            "--output",
            "json",
            "--profile",
            "p",
            "status",
        ][..],
        &[
            "status",
            "-C",
            "dir",
            "-q",
            "--output",
            "json",
            "--profile",
            "p",
        ][..],
    ] {
        let cli = parse(args).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Status { .. })),
            "{args:?}"
        );
        assert_eq!(cli.repo, Some(PathBuf::from("dir")), "{args:?}");
        assert!(cli.quiet, "{args:?}");
        assert_eq!(cli.output, OutputFormat::Json, "{args:?}");
        assert_eq!(cli.profile.as_deref(), Some("p"), "{args:?}");
    }
    assert_eq!(
        parse(&["-vv", "history", "--var-file", "x"])
            .unwrap()
            .verbose,
        2
    );
}

#[test]
fn a_deploy_flag_before_a_command_is_refused_naming_it() {
    for (args, flag) in [
        (&["--skip-tf", "status"][..], "--skip-tf"),
        (&["--var-file", "x.tfvars", "status"][..], "--var-file"),
        (&["-y", "unlock", "--var-file", "x"][..], "--yes"),
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{args:?}"
        );
        assert!(err.to_string().contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn changed_with_its_mode_after_a_space_suggests_the_equals_sign() {
    for mode in ["graph", "runbook"] {
        let err = parse(&["--var-file", "x", "--changed", mode]).unwrap_err();
        assert!(
            err.to_string().contains(&format!("--changed={mode}")),
            "{err}"
        );
    }
}

#[test]
fn help_help_is_the_help() {
    let err = parse(&["help", "--help"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
}

#[test]
fn a_bare_deploy_names_the_var_file_and_the_commands() {
    let err = parse(&[]).unwrap_err();
    let text = err.to_string();
    for word in ["--var-file", "status", "rollback", "promote"] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn services_split_on_commas_and_repeat() {
    let cli = parse(&["--skip-tf", "--services", "api,auth", "--services", "files"]).unwrap();
    assert_eq!(cli.services.unwrap(), ["api", "auth", "files"]);
}

#[test]
fn var_file_is_required_unless_skip_tf() {
    let err = parse(&[]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    assert!(parse(&["--skip-tf"]).is_ok());
}

#[test]
fn rollback_takes_a_revision_and_requires_the_environment() {
    let cli = parse(&[
        "rollback",
        "a1b2c3d",
        "--var-file",
        "tfvars/prod.tfvars",
        "--services",
        "api,auth",
        "-y",
    ])
    .unwrap();
    let Some(Command::Rollback {
        revision,
        var_file,
        services,
        roll,
        ..
    }) = cli.command
    else {
        panic!("not a rollback: {:?}", cli.command)
    };
    assert_eq!(revision, "a1b2c3d");
    assert_eq!(var_file, PathBuf::from("tfvars/prod.tfvars"));
    assert_eq!(services.unwrap(), ["api", "auth"]);
    assert!(roll.yes && !roll.dry_run);
    for args in [
        &["rollback", "a1b2c3d"][..],
        &["rollback", "--var-file", "x.tfvars"][..],
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{args:?}"
        );
    }
}

#[test]
fn changed_takes_an_optional_mode_after_an_equals_sign() {
    let mode = |args: &[&str]| parse(args).map(|cli| cli.changed);
    assert_eq!(mode(&["--var-file", "x.tfvars"]).unwrap(), None);
    assert_eq!(
        mode(&["--var-file", "x.tfvars", "--changed"]).unwrap(),
        Some(None)
    );
    assert_eq!(
        mode(&["--var-file", "x.tfvars", "--changed=graph"]).unwrap(),
        Some(Some(ChangedMode::Graph))
    );
    assert_eq!(
        mode(&["--var-file", "x.tfvars", "--changed=runbook"]).unwrap(),
        Some(Some(ChangedMode::Runbook))
    );
    // A space never takes the mode: `--changed graph` is a stray argument.
    assert!(mode(&["--var-file", "x.tfvars", "--changed", "graph"]).is_err());
    let err = mode(&["--var-file", "x.tfvars", "--changed=nx"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
}

#[test]
fn lock_wait_reads_durations_with_units() {
    let secs = |text: &str| parse_wait(text).map(|d| d.as_secs());
    assert_eq!(secs("90"), Ok(90));
    assert_eq!(secs("90s"), Ok(90));
    assert_eq!(secs("10m"), Ok(600));
    assert_eq!(secs("1h30m"), Ok(5400));
    assert_eq!(secs("0s"), Ok(0));
    for bad in ["", "m", "10x", "1.5m", "-3s", "10m5", "25h"] {
        assert!(parse_wait(bad).is_err(), "{bad:?}");
    }
    let cli = parse(&["--var-file", "x.tfvars", "--lock-wait", "5m"]).unwrap();
    assert_eq!(
        cli.lock.lock_wait,
        Some(std::time::Duration::from_secs(300))
    );
    // Accepted with --skip-tf (and ignored: no lock), so that DEPLOY_LOCK_WAIT can
    // be set for a whole pipeline.
    assert!(parse(&["--skip-tf", "--lock-wait", "5m"]).is_ok());
}

#[test]
fn changed_conflicts_with_services_and_skip_tf() {
    for args in [
        &["--var-file", "x.tfvars", "--changed", "--services", "api"][..],
        &["--changed", "--skip-tf"][..],
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{args:?}"
        );
    }
}

#[test]
fn wait_timeout_reads_a_duration_above_zero() {
    let cli = parse(&["--var-file", "x.tfvars", "--wait-timeout", "20m"]).unwrap();
    assert_eq!(cli.wait_timeout, Some(std::time::Duration::from_secs(1200)));
    assert_eq!(cli.wait_until, WaitUntil::Auto);
    assert!(parse_wait_timeout("0s")
        .unwrap_err()
        .contains("stop waiting at once"));
    let err = parse(&["--var-file", "x.tfvars", "--wait-timeout", "0"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
}

#[test]
fn man_and_completions_refuse_the_global_options() {
    for (args, flag) in [
        (&["man", "--output", "json"][..], "--output"),
        (&["--output", "json", "man"][..], "--output"),
        (&["man", "--profile", "p"][..], "--profile"),
        (&["-C", "dir", "man"][..], "-C/--repo"),
        (&["completions", "bash", "-q"][..], "-q/--quiet"),
        (&["completions", "-v", "zsh"][..], "-v/--verbose"),
    ] {
        let err = parse(args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{args:?}"
        );
        let text = err.to_string();
        assert!(text.contains(flag), "{args:?}: {text}");
        assert!(text.contains("which only prints"), "{args:?}: {text}");
    }
    assert!(parse(&["man"]).is_ok());
    assert!(parse(&["completions", "fish"]).is_ok());
}

#[test]
fn the_commands_that_name_services_take_services() {
    for args in [
        &["status", "--services", "api,auth"][..],
        &["history", "--var-file", "x", "--services", "api,auth"],
        &["undo", "--var-file", "x", "--services", "api,auth"],
        &["diff", "--var-file", "x", "--services", "api,auth"],
        &[
            "rollback",
            "HEAD~1",
            "--var-file",
            "x",
            "--services",
            "api,auth",
        ],
        &[
            "promote",
            "--from",
            "a",
            "--to",
            "b",
            "--services",
            "api,auth",
        ],
    ] {
        assert!(parse(args).is_ok(), "{args:?}");
    }
    let cli = parse(&["diff", "--var-file", "x", "--changed=graph"]).unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Diff {
            changed: Some(Some(ChangedMode::Graph)),
            ..
        })
    ));
    let err = parse(&["diff", "--var-file", "x", "--changed", "graph"]).unwrap_err();
    assert!(err.to_string().contains("--changed=graph"), "{err}");
}
