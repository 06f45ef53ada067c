//! The SPA half of the plan (`model::plan::spas`), decided per mode and flag on the
//! fixture platform (read from disk here, which `model` itself never does).

use std::path::Path;

use crate::error::UsageError;
use crate::model::plan::spas::*;
use crate::model::plan::{Action, Context, Head, Mode, SpaStep};
use crate::planning::tests::fixture;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn context(sources: &[(&str, SpaSource)]) -> Context<'static> {
    Context {
        head: Head {
            sha: SHA.to_owned(),
            short_sha: SHA[..7].to_owned(),
            branch: Some("main".into()),
        },
        uncommitted: Vec::new(),
        cwd: Path::new("."),
        registry_env: Default::default(),
        rollback_to: None,
        spa_sources: sources
            .iter()
            .map(|(name, source)| (name.to_string(), source.clone()))
            .collect(),
    }
}

fn clean() -> Context<'static> {
    context(&[
        ("admin-ui", SpaSource::Dirty(Vec::new())),
        ("simulator", SpaSource::Dirty(Vec::new())),
    ])
}

fn shown(steps: &[SpaStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| format!("{} {:?} {} {}", s.name, s.action, s.recorded_sha, s.reason))
        .collect()
}

#[test]
fn each_mode_and_flag_decides_whether_spas_build() {
    let platform = fixture();
    let skip = |reason: &str| {
        vec![
            format!("admin-ui Skip {SHA} {reason}"),
            format!("simulator Skip {SHA} {reason}"),
        ]
    };
    let built = vec![
        format!("admin-ui Deploy {SHA} built and uploaded"),
        format!("simulator Deploy {SHA} built and uploaded"),
    ];
    let graph = SpaAsk {
        graph: true,
        ..SpaAsk::default()
    };
    let skipping = SpaAsk {
        skip: true,
        ..SpaAsk::default()
    };
    let cases = [
        (Mode::Full, SpaAsk::default(), built.clone()),
        (Mode::Services, SpaAsk::default(), built.clone()),
        (Mode::Changed, graph, built),
        (Mode::Full, skipping, skip("--skip-spas")),
        (
            Mode::Changed,
            SpaAsk::default(),
            skip("--changed covers backend services only; deploy SPAs with a full deploy"),
        ),
        (
            Mode::Promote,
            SpaAsk::default(),
            skip("not promoted: an SPA build embeds its environment's settings; deploy SPAs to this environment with a normal deploy (`deploy --var-file <its tfvars>`)"),
        ),
    ];
    for (mode, ask, expected) in cases {
        let steps = plan_spas(&platform, &ask, mode, &clean()).unwrap();
        assert_eq!(shown(&steps), expected, "{mode:?} {ask:?}");
    }
    // A skipped SPA needs nothing of the working tree.
    let unread = context(&[]);
    let steps = plan_spas(&platform, &SpaAsk::default(), Mode::Promote, &unread).unwrap();
    assert!(steps.iter().all(|s| s.action == Action::Skip));
}

#[test]
fn what_the_working_tree_holds_refuses_or_marks_the_build() {
    let platform = fixture();
    let dirty = context(&[
        (
            "admin-ui",
            SpaSource::Dirty(vec!["apps/admin-ui/x.ts".into()]),
        ),
        ("simulator", SpaSource::Dirty(Vec::new())),
    ]);
    let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &dirty).unwrap_err();
    assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
    assert!(
        err.to_string()
            .contains("  SPA admin-ui:\n    apps/admin-ui/x.ts\nAn upload"),
        "{err}"
    );
    let allowed = SpaAsk {
        allow_dirty: true,
        ..SpaAsk::default()
    };
    let steps = plan_spas(&platform, &allowed, Mode::Full, &dirty).unwrap();
    assert_eq!(
        shown(&steps[..1]),
        [format!(
            "admin-ui Deploy {SHA}-dirty built from the working tree with 1 uncommitted path(s) (--allow-dirty-spas): recorded as 0123456-dirty"
        )]
    );
    assert_eq!(steps[0].dirty, ["apps/admin-ui/x.ts"]);
    // No directory (or not read at all): a usage error naming where dir was set.
    for missing in [context(&[("admin-ui", SpaSource::NoDir)]), context(&[])] {
        let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &missing).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
        assert!(
            err.to_string()
                .starts_with("SPA admin-ui has no directory "),
            "{err}"
        );
    }
    let unreadable = context(&[(
        "admin-ui",
        SpaSource::Unreadable("cannot parse apps/admin-ui/package.json".into()),
    )]);
    let err = plan_spas(&platform, &SpaAsk::default(), Mode::Full, &unreadable).unwrap_err();
    assert_eq!(err.to_string(), "cannot parse apps/admin-ui/package.json");
}

#[test]
fn a_restore_checks_each_spa_unless_left_out() {
    let platform = fixture();
    let mut rollback = clean();
    rollback.rollback_to = Some(Head {
        sha: "f".repeat(40),
        short_sha: "fffffff".into(),
        branch: None,
    });
    let actions = |ask: &SpaAsk, mode: Mode| -> Vec<Action> {
        plan_spas(&platform, ask, mode, &rollback)
            .unwrap()
            .iter()
            .map(|s| s.action)
            .collect()
    };
    let named = |names: &[&str]| SpaAsk {
        named: Some(names.iter().map(|n| n.to_string()).collect()),
        ..SpaAsk::default()
    };
    let services = SpaAsk {
        services_named: true,
        ..SpaAsk::default()
    };
    let cases = [
        (
            SpaAsk::default(),
            Mode::Rollback,
            [Action::Check, Action::Check],
        ),
        (
            named(&["simulator"]),
            Mode::Rollback,
            [Action::Skip, Action::Check],
        ),
        (
            services.clone(),
            Mode::Rollback,
            [Action::Skip, Action::Skip],
        ),
        // `undo --services`, as `rollback --services`: SPAs only with --spas.
        (services, Mode::Undo, [Action::Skip, Action::Skip]),
    ];
    for (ask, mode, expected) in cases {
        assert_eq!(actions(&ask, mode), expected, "{ask:?} {mode:?}");
    }
    let steps = plan_spas(&platform, &SpaAsk::default(), Mode::Rollback, &rollback).unwrap();
    assert_eq!(
        steps[0].reason,
        "its kept release of fffffff, or the newest before it"
    );
    let err = plan_spas(&platform, &named(&["nope"]), Mode::Undo, &rollback).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--spas nope: no such SPA (this checkout has admin-ui, simulator)"
    );
    // Every unknown SPA is named at once.
    let names = named(&["nope", "admin-ui", "gone"]);
    let err = plan_spas(&platform, &names, Mode::Undo, &rollback).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--spas nope,gone: no such SPAs (this checkout has admin-ui, simulator)"
    );
}
