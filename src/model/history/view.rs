//! `deploy history`'s result: the records newest first, each with the state it is
//! shown in (how it reads as a table is `ui::history`).

use serde::Serialize;

use super::{shown_state, Record};

/// `deploy history`'s result: records newest first, each with its shown state.
#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub environment: String,
    /// `--services`: the lineage of these services (only the runs that planned one).
    pub services: Option<Vec<String>>,
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
        services: Option<&[String]>,
        records: Vec<Record>,
        lock_holder: Option<(&str, u32)>,
    ) -> Self {
        let runs = records
            .into_iter()
            .filter(|r| {
                services.is_none_or(|names| r.services.iter().any(|s| names.contains(&s.service)))
            })
            .map(|record| HistoryEntry {
                outcome: shown_state(&record, lock_holder),
                record,
            })
            .collect();
        Self {
            environment: environment.to_owned(),
            services: services.map(<[String]>::to_vec),
            runs,
        }
    }
}
