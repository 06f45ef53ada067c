//! `deploy history`'s result: the records newest first, each with the state it is
//! shown in (how it reads as a table is `ui::history`).

use serde::Serialize;

use super::{shown_state, Record};

/// `deploy history`'s result: records newest first, each with its shown state.
#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub environment: String,
    /// `--service`: the lineage of one service (only the runs that planned it).
    pub service: Option<String>,
    pub runs: Vec<HistoryEntry>,
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    /// `running`, `interrupted?`, `succeeded`, `failed`, `failed, restored`, ….
    pub outcome: &'static str,
    #[serde(flatten)]
    pub record: Record,
}

impl HistoryView {
    pub fn new(
        environment: &str,
        service: Option<&str>,
        records: Vec<Record>,
        lock_holder: Option<(&str, u32)>,
    ) -> Self {
        let runs = records
            .into_iter()
            .filter(|r| service.is_none_or(|name| r.services.iter().any(|s| s.service == name)))
            .map(|record| HistoryEntry {
                outcome: shown_state(&record, lock_holder),
                record,
            })
            .collect();
        Self {
            environment: environment.to_owned(),
            service: service.map(str::to_owned),
            runs,
        }
    }
}
