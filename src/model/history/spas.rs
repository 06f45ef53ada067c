//! The SPA half of a history record (issue 29): per SPA, the release live before the
//! run and the one it made live, and what undoing the run does to it.

use serde::{Deserialize, Serialize};

use super::Record;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaChange {
    pub name: String,
    /// The git SHA the bucket recorded before the upload.
    pub previous_sha: Option<String>,
    /// The git SHA this upload recorded (`None`: not uploaded).
    pub new_sha: Option<String>,
    /// The release live before the run (its number in the SPA's manifest; `None`:
    /// none, or a record from before releases were kept).
    #[serde(default)]
    pub previous_release: Option<u64>,
    /// The release the run made live (an upload, or a restore).
    #[serde(default)]
    pub new_release: Option<u64>,
    /// A restore: the release it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// When the new release went live (RFC 3339, UTC).
    #[serde(default)]
    pub live_since: Option<String>,
}

impl SpaChange {
    /// Whether the run put another release live: a new commit, or a restore.
    pub fn changed(&self) -> bool {
        self.new_release.is_some()
            && (self.new_sha != self.previous_sha || self.restored_from.is_some())
    }

    /// `abc1234 → def5678 (#4)`, `#4 = #1 (abc1234)` for a restore.
    pub fn transition(&self) -> String {
        let short = |sha: &Option<String>| {
            sha.as_deref()
                .map_or("-".to_owned(), |s| s[..s.len().min(7)].to_owned())
        };
        let release = match (self.new_release, self.restored_from) {
            (Some(number), Some(from)) => format!(" (#{number} = #{from})"),
            (Some(number), None) => format!(" (#{number})"),
            (None, _) => String::new(),
        };
        format!(
            "{} → {}{release}",
            short(&self.previous_sha),
            short(&self.new_sha)
        )
    }
}

/// What undoing a run does to one SPA it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaUndo {
    /// Put back the release live before the run.
    Restore { release: u64 },
    /// Nothing of deploy's was live before: left as it is, with why.
    Leave(String),
    /// Something was live, but the record names no release (a run from before
    /// releases were kept).
    NoRecord,
}

impl Record {
    /// Per SPA the run changed: what undoing it does.
    pub fn spa_undo_set(&self) -> Vec<(String, SpaUndo)> {
        self.spas
            .iter()
            .filter(|spa| spa.changed())
            .map(|spa| {
                let undo = match (spa.previous_release, &spa.previous_sha) {
                    (Some(release), _) => SpaUndo::Restore { release },
                    (None, Some(_)) => SpaUndo::NoRecord,
                    (None, None) => SpaUndo::Leave(format!(
                        "nothing of deploy's was live before run {}: left on its release",
                        self.run_id
                    )),
                };
                (spa.name.clone(), undo)
            })
            .collect()
    }
}
