//! Drift: a service that runs something else than deploy last rolled there (its history
//! record) or than terraform's recorded tags say: changed outside deploy, by a console
//! edit, a direct `UpdateService`, another tool. Pure: what runs, what was recorded, the
//! verdict; reading them is `changes::drift`.

use serde::Serialize;

use crate::model::history::{Record, State};

/// What `--changed` does with a drifted service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftPolicy {
    /// Refuse the run (exit 4), naming the service and the two flags.
    #[default]
    Refuse,
    /// `--adopt-drift`: take what runs as the baseline (the diff starts from it).
    Adopt,
    /// `--restore-drift`: the diff starts from what deploy recorded. Unchanged since:
    /// that recorded image is put back as it is (found in the registry, not built).
    /// Changed since: built and rolled, the new image superseding both.
    Restore,
}

/// What one service runs now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Running {
    pub task_definition: String,
    /// The container image's tag (`None`: a digest-only or untagged reference).
    pub tag: Option<String>,
    /// The image digest, from the service revision (ECS resolves it at deployment) or
    /// the registry, when one of them answered.
    pub digest: Option<String>,
}

/// What deploy's history says it last put on a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRoll {
    pub tag: String,
    pub digest: Option<String>,
    /// The run that rolled it.
    pub run_id: String,
    /// When that run ended (Unix seconds; its start when it never closed its record).
    pub at: u64,
    /// `deploy`, `deploy undo`, `reconciled after ECS's rollback`…: how it got there.
    pub how: String,
}

/// One service: what runs against what was recorded, and whether that is drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDrift {
    pub service: String,
    pub drifted: bool,
    pub running: Running,
    /// Deploy's last roll of it, from the history.
    pub recorded: Option<RecordedRoll>,
    /// Its entry in terraform's `image_tags` output.
    pub terraform_tag: Option<String>,
    /// What differs, one clause each (`runs :b2 but deploy's run … rolled :a1`).
    pub differences: Vec<String>,
    /// Who changed it, where ECS says: the service deployment that put what runs there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

impl ServiceDrift {
    /// `runs :b2 (task definition auth:7) but deploy's run 1a2b recorded :a1; …`.
    pub fn summary(&self) -> String {
        let mut text = self.differences.join("; ");
        if let Some(by) = &self.changed_by {
            text.push_str(&format!("; changed by {by}"));
        }
        text
    }

    /// The tag deploy would put back (`--restore-drift`): its history's, else terraform's.
    pub fn restore_tag(&self) -> Option<&str> {
        self.recorded
            .as_ref()
            .map(|r| r.tag.as_str())
            .or(self.terraform_tag.as_deref())
    }
}

/// The last roll of `service` deploy recorded, newest record first in `records`: what
/// ECS ran at its end by the record's own account (the new tag; the previous one when
/// ECS rolled it back; the reconciled or restored tag when there was one). Runs still
/// `running` (in flight, or killed) are passed over: they do not say where they left it.
pub fn last_recorded(records: &[Record], service: &str) -> Option<RecordedRoll> {
    for record in records {
        if record.state == State::Running {
            continue;
        }
        let Some(change) = record
            .services
            .iter()
            .find(|c| c.service == service && c.rolled)
        else {
            continue;
        };
        let restored = record
            .restore
            .as_ref()
            .and_then(|r| r.tags.iter().find(|(s, _)| s == service))
            .map(|(_, tag)| tag.clone());
        let (tag, digest, how) = if let Some(tag) = &change.reconciled {
            (tag.clone(), None, "reconciled after ECS's rollback")
        } else if let (Some(_), Some(previous)) = (&change.ecs_ended, &change.previous) {
            (
                previous.tag.clone(),
                previous.digest.clone(),
                "rolled back by ECS",
            )
        } else if let Some(tag) = restored {
            (tag, None, "restored after a failed verify")
        } else {
            (
                change.new.tag.clone(),
                change.new.digest.clone(),
                if record.undo_of.is_some() {
                    "deploy undo"
                } else {
                    "deploy"
                },
            )
        };
        return Some(RecordedRoll {
            tag,
            digest,
            run_id: record.run_id.clone(),
            at: record.finished.unwrap_or(record.started),
            how: how.to_owned(),
        });
    }
    None
}

/// The verdict for one running service.
pub fn verdict(
    service: &str,
    running: Running,
    recorded: Option<RecordedRoll>,
    terraform_tag: Option<String>,
) -> ServiceDrift {
    let runs = format!(
        ":{} (task definition {})",
        running.tag.as_deref().unwrap_or("?"),
        short_task_definition(&running.task_definition)
    );
    let mut differences = Vec::new();
    if let Some(roll) = &recorded {
        if running.tag.as_deref() != Some(roll.tag.as_str()) {
            differences.push(format!(
                "runs {runs} but deploy's last roll (run {}, {}) put :{}",
                roll.run_id, roll.how, roll.tag
            ));
        } else if let (Some(here), Some(there)) = (&running.digest, &roll.digest) {
            if here != there {
                differences.push(format!(
                    "runs :{} as {} but deploy rolled it as {} (run {}): the tag was pushed again",
                    roll.tag,
                    short_digest(here),
                    short_digest(there),
                    roll.run_id
                ));
            }
        }
    }
    if let Some(tag) = &terraform_tag {
        if running.tag.as_deref() != Some(tag.as_str()) {
            differences.push(format!("runs {runs} but terraform's image_tags say :{tag}"));
        }
    }
    ServiceDrift {
        service: service.to_owned(),
        drifted: !differences.is_empty(),
        running,
        recorded,
        terraform_tag,
        differences,
        changed_by: None,
    }
}

/// What `--restore-drift` does with one drifted service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restoration {
    /// Its inputs did not change since deploy's recorded roll: that image (`tag`) is
    /// rolled again as it is, found in the registry, not built.
    Recorded { tag: String, reason: String },
    /// They did (or nothing recorded can be put back): built from HEAD and rolled, the
    /// new image superseding both what runs and what was recorded.
    Build { reason: String },
}

/// The `--restore-drift` decision for `drift`, given the `--changed` decision of its
/// recorded tag against HEAD (`since_recorded`: whether its inputs changed since, and
/// the diff's words; `None` when nothing recorded was compared).
pub fn restoration(drift: &ServiceDrift, since_recorded: Option<(bool, &str)>) -> Restoration {
    let runs = drift.running.tag.as_deref().unwrap_or("?");
    match (drift.restore_tag(), since_recorded) {
        (Some(tag), Some((false, why))) => Restoration::Recorded {
            tag: tag.to_owned(),
            reason: format!(
                "drifted (runs :{runs}): restoring recorded :{tag}, not rebuilt ({why})"
            ),
        },
        (Some(tag), Some((true, why))) => Restoration::Build {
            reason: format!(
                "drifted (runs :{runs}, recorded :{tag}): changed since the recorded roll ({why}); the new image supersedes both"
            ),
        },
        (Some(tag), None) => Restoration::Build {
            reason: format!(
                "drifted (runs :{runs}, recorded :{tag}): cannot tell what changed since; the new image supersedes both"
            ),
        },
        (None, _) => Restoration::Build {
            reason: format!(
                "drifted (runs :{runs}): no recorded image to restore; the new image supersedes it"
            ),
        },
    }
}

/// `auth:7` from `arn:aws:ecs:…:task-definition/auth:7`.
pub fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// The refusal of `--changed` when services drifted: each named with what runs and
/// what was recorded, then the two ways on.
pub fn refusal(drifted: &[&ServiceDrift]) -> String {
    let names: Vec<&str> = drifted.iter().map(|d| d.service.as_str()).collect();
    let mut text = format!(
        "{} changed outside deploy, so --changed cannot tell what to roll from what runs; nothing was built or applied:",
        names.join(", ")
    );
    for drift in drifted {
        text.push_str(&format!("\n  {}: {}", drift.service, drift.summary()));
    }
    text.push_str(
        "\nRe-run with --adopt-drift to take what runs as the baseline (the diff starts from it), or with --restore-drift to put back the image deploy recorded (rebuilt only where the service changed since; `deploy status` shows the drift)",
    );
    text
}

#[cfg(test)]
mod tests;
