//! The ledger: one record per run that took an environment's lock, what `deploy history`
//! lists and `deploy undo` restores from. Pure values and decisions, no I/O: the record
//! built from the run (`record`), the undo set (`undo`), the SPA half (`spas`), the
//! history view (`view`, shown by `ui::history`). Reading and writing records in the
//! environment's private bucket is `aws::history`; the survey they start from is
//! `deploy::ledger`'s.

use serde::{Deserialize, Serialize};

use crate::model::plan::Mode;

mod spas;
mod undo;
mod view;

pub use spas::{SpaChange, SpaUndo};
pub use undo::{undo_set, UndoSet, UndoSource};
pub use view::{HistoryEntry, HistoryView};

/// Where records live in the bucket: `deploy-history/<env>/<UTC timestamp>-<run id>.json`.
pub const PREFIX: &str = "deploy-history";

/// (service, text) pairs: a tag per service, or why a service is left as it is.
pub type ServiceTags = Vec<(String, String)>;

/// The record format; bumped on an incompatible change.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    /// Random per run; with `started` it names the object.
    pub run_id: String,
    pub environment: String,
    /// Unix seconds.
    pub started: u64,
    pub finished: Option<u64>,
    pub state: State,
    pub who: Who,
    /// The command line as typed (deploy takes no secret as an argument).
    pub command: String,
    pub mode: Mode,
    /// HEAD of the checkout that ran (full SHA).
    pub head: String,
    /// The tag the run's images carry (a rollback's target; HEAD's short SHA otherwise).
    pub image_tag: String,
    /// `deploy undo`: the run it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<String>,
    pub services: Vec<ServiceChange>,
    #[serde(default)]
    pub spas: Vec<SpaChange>,
    /// What the reviewed terraform plan changed.
    #[serde(default)]
    pub terraform: Option<PlanSummary>,
    /// Seconds per stage, in the order they ran.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// The error the run ended with (its first line… the whole chain, as printed).
    #[serde(default)]
    pub error: Option<String>,
    /// The automatic rollback after a failed verify, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Written at the start; a run killed mid-way leaves it so.
    Running,
    Succeeded,
    Failed,
    /// Ctrl-C.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// STS GetCallerIdentity's ARN.
    pub caller_arn: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
}

/// One service of the run: what ran before, what the run rolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChange {
    pub service: String,
    /// What ECS ran when the run took the lock (`None`: not running, or unreadable).
    pub previous: Option<ImageVersion>,
    /// What the run rolls it to.
    pub new: ImageVersion,
    /// Whether terraform applied the roll.
    #[serde(default)]
    pub rolled: bool,
    /// Whether it settled on `new` (`None`: not verified).
    #[serde(default)]
    pub settled: Option<bool>,
    /// The ECS service deployment followed, as last seen: `CANARY SUCCESSFUL at
    /// CLEAN_UP (arn…)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_deployment: Option<String>,
    /// `rolled back by ECS (alarm auth-5xx)`: ECS ended the deployment itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_ended: Option<String>,
    /// The tag terraform was re-applied with after ECS's rollback (reconcile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<String>,
    /// `CONTINUE at hook h-1 by ana@laptop, <time>`: pauses answered by `deploy continue`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_answers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVersion {
    pub tag: String,
    /// The registry's digest of that tag, when the registry answered.
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Services whose resources the plan changes.
    pub services: Vec<String>,
    /// Changes outside the deployment, as the review lists them.
    pub other: Vec<String>,
    pub destroyed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub secs: f64,
}

/// The automatic rollback of a run whose verify failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    /// Service → the tag it was restored to.
    pub tags: Vec<(String, String)>,
    /// Whether every restored service settled (and answered its health check).
    pub settled: bool,
    pub error: Option<String>,
}

impl Record {
    /// The object's key under the environment's prefix: the timestamp first, so that
    /// the keys sort by time.
    pub fn key(&self) -> String {
        format!(
            "{}{}-{}.json",
            prefix(&self.environment),
            compact_utc(self.started),
            self.run_id
        )
    }

    /// The services the run changed: rolled to a tag other than the one they ran.
    pub fn changed(&self) -> impl Iterator<Item = &ServiceChange> {
        self.services.iter().filter(|s| {
            s.rolled
                && s.previous
                    .as_ref()
                    .is_none_or(|previous| previous.tag != s.new.tag)
        })
    }

    /// What undoing this run restores: each changed service to the tag it ran before,
    /// and the changed services that cannot be (nothing ran before), with why.
    pub fn restore_set(&self) -> (ServiceTags, ServiceTags) {
        let mut tags = Vec::new();
        let mut left = Vec::new();
        for change in self.changed() {
            match &change.previous {
                Some(previous) => tags.push((change.service.clone(), previous.tag.clone())),
                None => left.push((
                    change.service.clone(),
                    format!(
                        "ran nothing readable before run {}: left on :{}",
                        self.run_id, change.new.tag
                    ),
                )),
            }
        }
        (tags, left)
    }

    /// Seconds from start to finish, when finished.
    pub fn duration(&self) -> Option<u64> {
        self.finished.map(|end| end.saturating_sub(self.started))
    }
}

impl ServiceChange {
    /// `old → new` (`-` when nothing ran before), with what ECS did to the roll.
    pub fn transition(&self) -> String {
        format!(
            "{} → {}{}",
            self.previous.as_ref().map_or("-", |p| p.tag.as_str()),
            self.new.tag,
            match (&self.ecs_ended, &self.reconciled) {
                (Some(ended), Some(tag)) => format!(" ({ended}; reconciled to :{tag})"),
                (Some(ended), None) => format!(" ({ended})"),
                _ => String::new(),
            } + &match self.pause_answers.last() {
                Some(answer) => format!(" (pause answered: {answer})"),
                None => String::new(),
            }
        )
    }
}

/// The key prefix of an environment's records.
pub fn prefix(environment: &str) -> String {
    format!("{PREFIX}/{environment}/")
}

/// `20261201T190300Z`: sorts as time does.
pub fn compact_utc(seconds: u64) -> String {
    crate::timestamp::rfc3339(seconds).replace(['-', ':'], "")
}

/// The newest run `deploy undo` undoes: the newest that succeeded and changed a
/// service or an SPA. `records` newest first.
pub fn last_undoable(records: &[Record]) -> Option<&Record> {
    records.iter().find(|r| {
        r.state == State::Succeeded
            && (r.changed().next().is_some() || r.spas.iter().any(SpaChange::changed))
    })
}

/// How `deploy history` shows a record's state: a `running` record whose run no longer
/// holds the lock was killed mid-way (or lost its connection): `interrupted?`.
pub fn shown_state(record: &Record, lock_holder: Option<(&str, u32)>) -> &'static str {
    match record.state {
        State::Running if lock_holder == Some((record.who.host.as_str(), record.who.pid)) => {
            "running"
        }
        State::Running => "interrupted?",
        State::Succeeded if record.restore.is_some() => "restored",
        State::Succeeded => "succeeded",
        State::Failed if record.restore.as_ref().is_some_and(|r| r.settled) => "failed, restored",
        State::Failed if record.restore.is_some() => "failed, restore failed",
        State::Failed => "failed",
        State::Interrupted => "interrupted",
    }
}

/// The mode as one word, for the history table.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Changed => "changed",
        Mode::Services => "services",
        Mode::Rollback => "rollback",
        Mode::Undo => "undo",
        Mode::Promote => "promote",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn change(
        service: &str,
        previous: Option<&str>,
        new: &str,
        rolled: bool,
    ) -> ServiceChange {
        ServiceChange {
            service: service.to_owned(),
            previous: previous.map(|tag| ImageVersion {
                tag: tag.to_owned(),
                digest: None,
            }),
            new: ImageVersion {
                tag: new.to_owned(),
                digest: None,
            },
            rolled,
            settled: Some(rolled),
            ecs_deployment: None,
            ecs_ended: None,
            reconciled: None,
            pause_answers: Vec::new(),
        }
    }

    pub(super) fn record(
        id: &str,
        started: u64,
        state: State,
        services: Vec<ServiceChange>,
    ) -> Record {
        Record {
            format: FORMAT,
            run_id: id.to_owned(),
            environment: "sandbox".to_owned(),
            started,
            finished: Some(started + 42),
            state,
            who: Who {
                caller_arn: "arn:aws:sts::123:assumed-role/x".to_owned(),
                user: "ci".to_owned(),
                host: "runner".to_owned(),
                pid: 7,
            },
            command: "deploy --changed".to_owned(),
            mode: Mode::Changed,
            head: "f".repeat(40),
            image_tag: "fffffff".to_owned(),
            undo_of: None,
            services,
            spas: Vec::new(),
            terraform: None,
            stages: Vec::new(),
            error: None,
            restore: None,
        }
    }

    #[test]
    fn keys_sort_by_time_under_the_environment() {
        let early = record("a1", 1_795_000_000, State::Succeeded, Vec::new());
        let late = record("00", 1_795_000_001, State::Succeeded, Vec::new());
        assert_eq!(
            early.key(),
            "deploy-history/sandbox/20261118T110640Z-a1.json"
        );
        assert!(early.key() < late.key());
    }

    #[test]
    fn undo_restores_only_what_the_last_successful_run_changed() {
        let ok = record(
            "ok",
            2,
            State::Succeeded,
            vec![
                change("api", Some("aaa"), "bbb", true),
                change("auth", Some("bbb"), "bbb", true),
                change("files", None, "bbb", true),
                change("billing", Some("aaa"), "bbb", false),
            ],
        );
        let failed = record(
            "failed",
            3,
            State::Failed,
            vec![change("api", Some("bbb"), "ccc", true)],
        );
        let nothing = record(
            "same",
            4,
            State::Succeeded,
            vec![change("api", Some("bbb"), "bbb", true)],
        );
        let records = vec![nothing, failed, ok];
        let last = last_undoable(&records).unwrap();
        assert_eq!(last.run_id, "ok");
        let (tags, left) = last.restore_set();
        assert_eq!(tags, vec![("api".to_owned(), "aaa".to_owned())]);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].0, "files");
        assert!(last_undoable(&records[..2]).is_none());
    }

    #[test]
    fn undo_puts_back_the_release_each_changed_spa_had_before() {
        let spa =
            |name: &str, before: (Option<&str>, Option<u64>), new: Option<(&str, u64)>| SpaChange {
                name: name.to_owned(),
                previous_sha: before.0.map(str::to_owned),
                previous_release: before.1,
                new_sha: new.map(|(sha, _)| sha.to_owned()),
                new_release: new.map(|(_, n)| n),
                restored_from: None,
                live_since: None,
            };
        let mut run = record("spa", 5, State::Succeeded, Vec::new());
        run.spas = vec![
            spa("admin-ui", (Some("a"), Some(3)), Some(("b", 4))),
            spa("simulator", (Some("a"), Some(2)), Some(("a", 5))),
            spa("new-ui", (None, None), Some(("b", 1))),
            spa("old-ui", (Some("a"), None), Some(("b", 7))),
            spa("skipped", (Some("a"), Some(1)), None),
        ];
        assert_eq!(
            run.spa_undo_set(),
            [
                ("admin-ui".to_owned(), SpaUndo::Restore { release: 3 }),
                (
                    "new-ui".to_owned(),
                    SpaUndo::Leave(
                        "nothing of deploy's was live before run spa: left on its release".into()
                    )
                ),
                ("old-ui".to_owned(), SpaUndo::NoRecord),
            ]
        );
        // A run that changed an SPA alone is undoable.
        assert_eq!(
            last_undoable(std::slice::from_ref(&run)).map(|r| r.run_id.as_str()),
            Some("spa")
        );
        let all = HistoryView::new("sandbox", None, vec![run], None).to_string();
        assert!(all.contains("admin-ui a → b (#4)"), "{all}");
    }

    #[test]
    fn a_running_record_is_interrupted_once_its_run_no_longer_holds_the_lock() {
        let running = record("r", 1, State::Running, Vec::new());
        assert_eq!(shown_state(&running, Some(("runner", 7))), "running");
        assert_eq!(shown_state(&running, Some(("runner", 8))), "interrupted?");
        assert_eq!(shown_state(&running, None), "interrupted?");
        let mut failed = record("f", 1, State::Failed, Vec::new());
        assert_eq!(shown_state(&failed, None), "failed");
        failed.restore = Some(RestoreRecord {
            tags: vec![("api".into(), "aaa".into())],
            settled: true,
            error: None,
        });
        assert_eq!(shown_state(&failed, None), "failed, restored");
    }

    #[test]
    fn the_lineage_of_a_service_lists_only_the_runs_that_planned_it() {
        let records = vec![
            record(
                "two",
                2,
                State::Succeeded,
                vec![change("api", Some("bbb"), "ccc", true)],
            ),
            record(
                "one",
                1,
                State::Succeeded,
                vec![change("auth", Some("aaa"), "bbb", true)],
            ),
        ];
        let view = HistoryView::new("sandbox", Some(&["api".into()]), records.clone(), None);
        assert_eq!(view.runs.len(), 1);
        let text = view.to_string();
        assert!(text.contains("bbb → ccc"), "{text}");
        assert!(text.contains("API"), "{text}");
        let all = HistoryView::new("sandbox", None, records.clone(), None).to_string();
        assert!(all.contains("api bbb → ccc"), "{all}");
        assert!(all.contains("auth aaa → bbb"), "{all}");
        assert!(all.find("two").unwrap() < all.find("one").unwrap(), "{all}");
        let both = HistoryView::new(
            "sandbox",
            Some(&["auth".into(), "api".into()]),
            records,
            None,
        );
        assert_eq!(both.runs.len(), 2);
        let text = both.to_string();
        assert!(
            text.contains("api bbb → ccc") && text.contains("auth aaa → bbb"),
            "{text}"
        );
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let written = record(
            "x",
            1,
            State::Failed,
            vec![change("api", Some("a"), "b", true)],
        );
        let text = serde_json::to_string(&written).unwrap();
        let read: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(read, written);
        assert!(text.contains(r#""mode":"changed""#), "{text}");
    }

    #[test]
    fn a_native_rollback_and_its_reconcile_show_beside_the_service() {
        let mut auth = change("auth", Some("bootstrap"), "1a2b3c4", true);
        assert_eq!(auth.transition(), "bootstrap → 1a2b3c4");
        auth.ecs_ended = Some("rolled back by ECS (alarm auth-5xx)".into());
        assert_eq!(
            auth.transition(),
            "bootstrap → 1a2b3c4 (rolled back by ECS (alarm auth-5xx))"
        );
        auth.reconciled = Some("bootstrap".into());
        assert_eq!(
            auth.transition(),
            "bootstrap → 1a2b3c4 (rolled back by ECS (alarm auth-5xx); reconciled to :bootstrap)"
        );
    }
}
