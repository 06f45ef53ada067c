//! The undo set (`deploy undo`): which run is undone, each service it changed back to
//! the tag it ran before (if this checkout still deploys it), and what undoing it does
//! to each SPA; or why nothing can be undone. Pure, over the records read before.

use anyhow::{bail, Result};

use crate::error::UsageError;

use super::{last_undoable, Record, SpaUndo};
use crate::model::plan::Undo;

/// Where the records came from, for the messages.
#[derive(Debug, Clone, Copy)]
pub struct UndoSource<'a> {
    pub environment: &'a str,
    /// `s3://<bucket>/<prefix>`.
    pub location: &'a str,
    /// The tfvars file, as `deploy history --var-file` takes it.
    pub var_file: &'a str,
    /// The run to undo, by id (`deploy continue --rollback`'s reconcile); `None`: the
    /// newest that succeeded and changed something.
    pub run_id: Option<&'a str>,
}

/// What `deploy undo` restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoSet {
    /// The services: each to its tag before the undone run, or left with why.
    pub undo: Undo,
    /// Per SPA the undone run changed: what undoing it does.
    pub spas: Vec<(String, SpaUndo)>,
}

/// Decides the undo from `records` (newest first): the newest run that succeeded and
/// changed a service or an SPA. `services`: the services this checkout deploys
/// (terraform targets them by name); `named`: `--services`, the only ones restored;
/// `checked_spas`: the SPAs the plan checks. An error when no run is undoable, when it
/// changed nothing that can be restored, or when a service named is not one it restores.
pub fn undo_set(
    records: &[Record],
    services: &[&str],
    named: Option<&[String]>,
    checked_spas: &[&str],
    source: UndoSource<'_>,
) -> Result<UndoSet> {
    let environment = source.environment;
    if let Some(run_id) = source.run_id {
        if !records.iter().any(|r| r.run_id == run_id) {
            bail!(
                "run {run_id} is not among the {} newest recorded runs of {environment} ({}): nothing was touched",
                records.len(),
                source.location
            );
        }
    }
    let pinned = |r: &&Record| source.run_id.is_some_and(|id| r.run_id == id);
    let Some(last) = records.iter().find(pinned).or_else(|| {
        source
            .run_id
            .is_none()
            .then(|| last_undoable(records))
            .flatten()
    }) else {
        bail!(
            "nothing to undo in {environment}: none of its {} newest recorded runs ({}) succeeded and changed a service or an SPA. `deploy history --var-file {}` lists them",
            records.len(),
            source.location,
            source.var_file
        );
    };
    let (restorable, mut left) = last.restore_set();
    let mut tags = Vec::new();
    for (service, tag) in restorable {
        if services.contains(&service.as_str()) {
            tags.push((service, tag));
        } else {
            left.push((service, "no longer a service of this checkout".to_owned()));
        }
    }
    if let Some(named) = named {
        select_named(&mut tags, &mut left, named, &last.run_id, environment)?;
    }
    let spas = last.spa_undo_set();
    let restores_spas = spas.iter().any(|(name, undo)| {
        !matches!(undo, SpaUndo::Leave(_)) && checked_spas.contains(&name.as_str())
    });
    if tags.is_empty() && !restores_spas {
        bail!(
            "cannot undo run {} of {environment}: none of the services it changed can be restored ({}). Nothing was touched",
            last.run_id,
            left.iter()
                .map(|(service, why)| format!("{service}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(UndoSet {
        undo: Undo {
            run_id: last.run_id.clone(),
            tags: tags.into_iter().collect(),
            left,
        },
        spas,
    })
}

/// `undo --services`: only the services named are restored, the others of the set are
/// left "not selected"; a service named that the run undone does not restore is an
/// error naming why, and what it does restore.
fn select_named(
    tags: &mut Vec<(String, String)>,
    left: &mut Vec<(String, String)>,
    named: &[String],
    run_id: &str,
    environment: &str,
) -> Result<()> {
    let missing: Vec<String> = named
        .iter()
        .filter(|name| !tags.iter().any(|(service, _)| &service == name))
        .map(
            |name| match left.iter().find(|(service, _)| service == name) {
                Some((_, why)) => format!("{name} ({why})"),
                None => format!("{name} (not changed by that run)"),
            },
        )
        .collect();
    if !missing.is_empty() {
        let restorable: Vec<&str> = tags.iter().map(|(service, _)| service.as_str()).collect();
        return Err(UsageError::new(format!(
            "--services: undoing run {run_id} of {environment} cannot restore {}; it restores {}. Nothing was touched",
            missing.join(", "),
            if restorable.is_empty() {
                "no service".to_owned()
            } else {
                restorable.join(", ")
            }
        ))
        .into());
    }
    let (chosen, others): (Vec<_>, Vec<_>) = std::mem::take(tags)
        .into_iter()
        .partition(|(service, _)| named.contains(service));
    *tags = chosen;
    left.extend(
        others
            .into_iter()
            .map(|(service, _)| (service, "not selected with --services".to_owned())),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::tests::{change, record};
    use crate::model::history::{SpaChange, State};

    const SOURCE: UndoSource<'static> = UndoSource {
        run_id: None,
        environment: "sandbox",
        location: "s3://private/deploy-history/sandbox/",
        var_file: "tfvars/sandbox.tfvars",
    };

    fn spa(name: &str, previous_release: Option<u64>, previous_sha: Option<&str>) -> SpaChange {
        SpaChange {
            name: name.to_owned(),
            previous_sha: previous_sha.map(str::to_owned),
            new_sha: Some("b".to_owned()),
            previous_release,
            new_release: Some(9),
            restored_from: None,
            live_since: None,
        }
    }

    fn tags(set: &UndoSet) -> Vec<(&str, &str)> {
        set.undo
            .tags
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect()
    }

    #[test]
    fn the_newest_successful_change_is_undone_for_the_services_still_deployed() {
        let records = vec![
            record(
                "failed",
                3,
                State::Failed,
                vec![change("api", Some("b"), "c", true)],
            ),
            record(
                "ok",
                2,
                State::Succeeded,
                vec![
                    change("api", Some("aaa"), "bbb", true),
                    change("gone", Some("aaa"), "bbb", true),
                    change("files", None, "bbb", true),
                ],
            ),
        ];
        let set = undo_set(&records, &["api", "files"], None, &[], SOURCE).unwrap();
        assert_eq!(set.undo.run_id, "ok");
        assert_eq!(tags(&set), [("api", "aaa")]);
        assert_eq!(
            set.undo.left,
            [
                (
                    "files".to_owned(),
                    "ran nothing readable before run ok: left on :bbb".to_owned()
                ),
                (
                    "gone".to_owned(),
                    "no longer a service of this checkout".to_owned()
                ),
            ]
        );
        assert!(set.spas.is_empty());
    }

    #[test]
    fn a_run_named_by_id_is_undone_whatever_its_state_and_an_unknown_id_is_refused() {
        let records = vec![
            record(
                "failed",
                3,
                State::Failed,
                vec![change("auth", Some("old"), "new", true)],
            ),
            record(
                "ok",
                2,
                State::Succeeded,
                vec![change("api", Some("aaa"), "bbb", true)],
            ),
        ];
        let pinned = UndoSource {
            run_id: Some("failed"),
            ..SOURCE
        };
        let set = undo_set(&records, &["api", "auth"], None, &[], pinned).unwrap();
        assert_eq!(set.undo.run_id, "failed");
        assert_eq!(tags(&set), [("auth", "old")]);
        let unknown = UndoSource {
            run_id: Some("elsewhere"),
            ..SOURCE
        };
        let err = undo_set(&records, &["api", "auth"], None, &[], unknown).unwrap_err();
        assert_eq!(
            err.to_string(),
            "run elsewhere is not among the 2 newest recorded runs of sandbox (s3://private/deploy-history/sandbox/): nothing was touched"
        );
    }

    #[test]
    fn no_undoable_run_says_where_it_looked() {
        let records = vec![record(
            "same",
            1,
            State::Succeeded,
            vec![change("api", Some("a"), "a", true)],
        )];
        let err = undo_set(&records, &["api"], None, &[], SOURCE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nothing to undo in sandbox: none of its 1 newest recorded runs (s3://private/deploy-history/sandbox/) succeeded and changed a service or an SPA. `deploy history --var-file tfvars/sandbox.tfvars` lists them"
        );
        let err = undo_set(&[], &["api"], None, &[], SOURCE).unwrap_err();
        assert!(err.to_string().contains("none of its 0 newest"), "{err}");
    }

    #[test]
    fn a_run_whose_changes_cannot_be_restored_is_refused() {
        let records = vec![record(
            "r1",
            1,
            State::Succeeded,
            vec![
                change("files", None, "bbb", true),
                change("gone", Some("a"), "b", true),
            ],
        )];
        let err = undo_set(&records, &["files"], None, &[], SOURCE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot undo run r1 of sandbox: none of the services it changed can be restored (files: ran nothing readable before run r1: left on :bbb; gone: no longer a service of this checkout). Nothing was touched"
        );
    }

    #[test]
    fn an_spa_alone_is_enough_to_undo_when_the_plan_checks_it() {
        let mut run = record("spa", 1, State::Succeeded, Vec::new());
        run.spas = vec![
            spa("admin-ui", Some(3), Some("a")),
            spa("new-ui", None, None),
            spa("old-ui", None, Some("a")),
        ];
        let records = vec![run];
        // Checked: admin-ui restores its release, old-ui has no record (refused later).
        for checked in [&["admin-ui"][..], &["old-ui"]] {
            let set = undo_set(&records, &["api"], None, checked, SOURCE).unwrap();
            assert!(set.undo.tags.is_empty());
            assert_eq!(
                set.spas,
                [
                    ("admin-ui".to_owned(), SpaUndo::Restore { release: 3 }),
                    (
                        "new-ui".to_owned(),
                        SpaUndo::Leave(
                            "nothing of deploy's was live before run spa: left on its release"
                                .into()
                        )
                    ),
                    ("old-ui".to_owned(), SpaUndo::NoRecord),
                ]
            );
        }
        // Only an SPA that is left, or none the plan checks (`--skip-spas`): nothing to do.
        for checked in [&["new-ui"][..], &[]] {
            let err = undo_set(&records, &["api"], None, checked, SOURCE).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("cannot undo run spa of sandbox"),
                "{err}"
            );
        }
    }

    #[test]
    fn undo_services_restores_only_those_named_and_refuses_one_it_does_not_restore() {
        let records = vec![record(
            "ok",
            2,
            State::Succeeded,
            vec![
                change("api", Some("aaa"), "bbb", true),
                change("auth", Some("aaa"), "bbb", true),
                change("files", None, "bbb", true),
            ],
        )];
        let services = ["api", "auth", "files", "billing"];
        let named = ["auth".to_owned()];
        let set = undo_set(&records, &services, Some(&named), &[], SOURCE).unwrap();
        assert_eq!(tags(&set), [("auth", "aaa")]);
        assert!(set
            .undo
            .left
            .contains(&("api".to_owned(), "not selected with --services".to_owned())));
        let named = ["api".to_owned(), "billing".to_owned(), "files".to_owned()];
        let err = undo_set(&records, &services, Some(&named), &[], SOURCE).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert_eq!(
            err.to_string(),
            "--services: undoing run ok of sandbox cannot restore billing (not changed by that run), files (ran nothing readable before run ok: left on :bbb); it restores api, auth. Nothing was touched"
        );
    }
}
