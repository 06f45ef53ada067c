//! The history record's construction (here, beside the report it is finished from): opened from the plan and what ran before when the
//! run takes the lock, finished from the run's report and outcome at its end. Pure: the
//! clock, the run id, the operator and what ran before are read by `deploy::ledger`.

use std::collections::{BTreeMap, HashMap};

use super::RunReport;
use crate::aws::ecs::Settled;
use crate::error::Interrupted;
use crate::model::history::{
    ImageVersion, PlanSummary, Record, RestoreRecord, ServiceChange, SpaChange, State, Who, FORMAT,
};
use crate::model::plan::{Action, Plan};

/// Who opens the record, when, and under which id.
#[derive(Debug, Clone)]
pub struct Opening {
    pub run_id: String,
    /// The terraform workspace.
    pub environment: String,
    /// Unix seconds.
    pub started: u64,
    pub who: Who,
    /// The command line as typed.
    pub command: String,
}

/// What ran before the run (the survey under the lock).
#[derive(Debug, Clone, Default)]
pub struct Previous {
    /// Per service: the tag ECS ran and its digest (absent: nothing readable).
    pub services: BTreeMap<String, ImageVersion>,
    /// Per SPA: the git SHA its bucket recorded.
    pub spa_shas: BTreeMap<String, String>,
    /// Per SPA: the number of its live release.
    pub spa_releases: BTreeMap<String, u64>,
}

/// The record of a run that just took the lock: `running`, each service and SPA the
/// plan deploys with what ran before it.
pub fn opened(plan: &Plan, opening: Opening, previous: &Previous) -> Record {
    let services = plan
        .deploying_services()
        .map(|s| ServiceChange {
            service: s.name.clone(),
            previous: previous.services.get(&s.name).cloned(),
            new: ImageVersion {
                tag: plan.tag_of(&s.name).to_owned(),
                digest: None,
            },
            rolled: false,
            settled: None,
            ecs_deployment: None,
            ecs_ended: None,
            reconciled: None,
            pause_answers: Vec::new(),
        })
        .collect();
    let spas = plan
        .spas_to(Action::Deploy)
        .map(|s| SpaChange {
            name: s.name.clone(),
            previous_sha: previous.spa_shas.get(&s.name).cloned(),
            new_sha: None,
            previous_release: previous.spa_releases.get(&s.name).copied(),
            new_release: None,
            restored_from: None,
            live_since: None,
        })
        .collect();
    Record {
        format: FORMAT,
        run_id: opening.run_id,
        environment: opening.environment,
        started: opening.started,
        finished: None,
        state: State::Running,
        who: opening.who,
        command: opening.command,
        mode: plan.mode,
        head: plan.head.sha.clone(),
        image_tag: plan.image_tag.clone(),
        undo_of: plan.undo.as_ref().map(|undo| undo.run_id.clone()),
        services,
        spas,
        terraform: None,
        stages: Vec::new(),
        error: None,
        restore: None,
    }
}

/// What the run did, from its report, and how it ended (`finished`: Unix seconds);
/// `digests`: the registry's digest of each image the report names.
pub fn finished(
    record: &mut Record,
    report: &RunReport,
    digests: &HashMap<String, Option<String>>,
    outcome: &anyhow::Result<()>,
    finished: u64,
) {
    record.finished = Some(finished);
    record.state = match outcome {
        Ok(()) => State::Succeeded,
        Err(err) if err.is::<Interrupted>() => State::Interrupted,
        Err(_) => State::Failed,
    };
    record.error = outcome.as_ref().err().map(|err| format!("{err:#}"));
    for change in &mut record.services {
        change.rolled = report.applied;
        let rollout = report.rollouts.iter().find(|r| r.service == change.service);
        change.settled = rollout.map(|r| r.steady);
        note_followed(change, rollout);
        change.reconciled = report
            .reconcile
            .as_ref()
            .filter(|r| r.applied)
            .and_then(|r| r.tags.iter().find(|(s, _)| *s == change.service))
            .map(|(_, tag)| tag.clone());
        if let Some(image) = report.images.iter().find(|i| i.service == change.service) {
            change.new.digest = digests.get(&image.image).cloned().flatten();
        }
    }
    for spa in &mut record.spas {
        let done = report.spas.iter().find(|s| s.name == spa.name);
        spa.new_sha = done.map(|s| s.git_sha.clone());
        spa.new_release = done.and_then(|s| s.release);
        spa.restored_from = done.and_then(|s| s.restored_from);
        spa.live_since = done.and_then(|s| s.live_since.clone());
    }
    record.terraform = report.review.as_ref().map(|review| PlanSummary {
        services: review
            .services
            .iter()
            .filter(|s| !s.resources.is_empty())
            .map(|s| s.service.clone())
            .collect(),
        other: review.other.iter().map(ToString::to_string).collect(),
        destroyed: review.destroyed.clone(),
    });
    record.stages = report.stages.clone();
    record.restore = report.restore.as_ref().map(|restore| RestoreRecord {
        tags: restore.tags.clone(),
        settled: restore.settled(),
        error: restore.error.clone(),
    });
}

/// What was seen of a service's ECS deployment, into its record: the deployment as
/// last seen, and how ECS ended it when it rolled back or stopped it.
pub fn note_followed(change: &mut ServiceChange, rollout: Option<&Settled>) {
    change.ecs_deployment = rollout.and_then(|r| {
        r.deployment.as_ref().map(|d| {
            format!(
                "{} {}{} ({})",
                d.strategy,
                d.status,
                d.stage
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default(),
                d.arn
            )
        })
    });
    change.ecs_ended = rollout.and_then(|r| r.native_rollback.as_ref().map(|n| n.headline()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Interrupted, Stage as StoppedAt};
    use crate::model::history::Stage;
    use crate::planning::tests::plan;
    use crate::process::Signal;
    use crate::report::{Invalidation, RestoreReport, SpaResult};

    fn opening() -> Opening {
        Opening {
            run_id: "0000002a00000007".to_owned(),
            environment: "sandbox".to_owned(),
            started: 1_795_000_000,
            who: Who {
                caller_arn: "arn:aws:sts::123:assumed-role/ci".to_owned(),
                user: "ci".to_owned(),
                host: "runner".to_owned(),
                pid: 7,
            },
            command: "deploy --var-file tfvars/sandbox.tfvars".to_owned(),
        }
    }

    fn previous() -> Previous {
        Previous {
            services: BTreeMap::from([(
                "api".to_owned(),
                ImageVersion {
                    tag: "aaaaaaa".to_owned(),
                    digest: Some("sha256:aa".to_owned()),
                },
            )]),
            spa_shas: BTreeMap::from([("admin-ui".to_owned(), "a".repeat(40))]),
            spa_releases: BTreeMap::from([("admin-ui".to_owned(), 3)]),
        }
    }

    #[test]
    fn an_opened_record_is_running_with_what_ran_before_each_deploy() {
        let plan = plan(Default::default(), false, false).unwrap();
        let record = opened(&plan, opening(), &previous());
        assert_eq!(record.state, State::Running);
        assert_eq!(record.format, FORMAT);
        assert_eq!(
            (record.run_id.as_str(), record.environment.as_str()),
            ("0000002a00000007", "sandbox")
        );
        assert_eq!((record.started, record.finished), (1_795_000_000, None));
        assert_eq!(record.who.pid, 7);
        assert_eq!((record.mode, record.undo_of.as_deref()), (plan.mode, None));
        assert_eq!(record.head, plan.head.sha);
        let deploying = plan
            .services
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .count();
        assert_eq!(record.services.len(), deploying);
        let api = record.services.iter().find(|s| s.service == "api").unwrap();
        assert_eq!(api.previous, previous().services.get("api").cloned());
        assert_eq!(api.new.tag, plan.image_tag);
        assert_eq!((api.new.digest.as_deref(), api.rolled), (None, false));
        let auth = record
            .services
            .iter()
            .find(|s| s.service == "auth")
            .unwrap();
        assert_eq!(auth.previous, None);
        let spas: Vec<(&str, Option<&str>, Option<u64>)> = record
            .spas
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.previous_sha.as_deref(),
                    s.previous_release,
                )
            })
            .collect();
        let sha = "a".repeat(40);
        assert_eq!(
            spas,
            [
                ("admin-ui", Some(sha.as_str()), Some(3)),
                ("simulator", None, None)
            ]
        );
    }

    #[test]
    fn a_finished_record_says_how_the_run_ended() {
        let plan = plan(Default::default(), false, false).unwrap();
        let interrupted: anyhow::Error =
            Interrupted::new(StoppedAt::AfterApply, Signal::Interrupt).into();
        let cases: [(anyhow::Result<()>, State, Option<&str>); 3] = [
            (Ok(()), State::Succeeded, None),
            (Err(interrupted), State::Interrupted, Some("")),
            (
                Err(anyhow::anyhow!("api did not settle").context("verify failed")),
                State::Failed,
                Some("verify failed: api did not settle"),
            ),
        ];
        for (outcome, state, error) in cases {
            let mut record = opened(&plan, opening(), &previous());
            let report = RunReport::new(&plan);
            finished(
                &mut record,
                &report,
                &HashMap::new(),
                &outcome,
                1_795_000_042,
            );
            assert_eq!(record.state, state, "{outcome:?}");
            assert_eq!(record.finished, Some(1_795_000_042));
            assert_eq!(record.duration(), Some(42));
            match error {
                Some("") => assert!(record.error.is_some()),
                _ => assert_eq!(record.error.as_deref(), error),
            }
            assert!(record
                .services
                .iter()
                .all(|s| !s.rolled && s.settled.is_none()));
        }
    }

    #[test]
    fn a_finished_record_carries_what_the_report_says() {
        let plan = plan(Default::default(), false, false).unwrap();
        let mut record = opened(&plan, opening(), &previous());
        let mut report = RunReport::new(&plan);
        report.applied = true;
        report.spas = vec![SpaResult {
            name: "admin-ui".into(),
            bucket: "admin-ui-sandbox".into(),
            git_sha: "b".repeat(40),
            uploaded: 3,
            unchanged: 12,
            release: Some(4),
            restored_from: None,
            live_since: Some("2026-12-01T19:03:00Z".into()),
            invalidation_id: None,
            invalidation: Invalidation::NoDistribution,
        }];
        report.stages = vec![Stage {
            name: "roll".into(),
            secs: 8.0,
        }];
        report.restore = Some(RestoreReport {
            tags: vec![("api".into(), "aaaaaaa".into())],
            error: Some("api: did not settle".into()),
            ..RestoreReport::default()
        });
        finished(
            &mut record,
            &report,
            &HashMap::new(),
            &Ok(()),
            1_795_000_042,
        );
        assert!(record.services.iter().all(|s| s.rolled));
        let admin = &record.spas[0];
        assert_eq!(
            (
                admin.new_sha.clone(),
                admin.new_release,
                admin.live_since.as_deref()
            ),
            (Some("b".repeat(40)), Some(4), Some("2026-12-01T19:03:00Z"))
        );
        let simulator = &record.spas[1];
        assert_eq!(
            (simulator.new_sha.as_deref(), simulator.new_release),
            (None, None)
        );
        assert_eq!(record.stages, report.stages);
        assert_eq!(
            record.restore,
            Some(RestoreRecord {
                tags: vec![("api".into(), "aaaaaaa".into())],
                settled: false,
                error: Some("api: did not settle".into()),
            })
        );
        assert_eq!(record.terraform, None);
    }
}
