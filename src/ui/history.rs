//! `deploy history` as a table: when, who, the mode, each service's old → new, the
//! outcome, the duration and the run id.

use std::fmt;

use crate::model::history::{mode_name, HistoryView, Record};
use crate::ui::style::{Cell, Tone};
use crate::ui::table::write_table;

fn who(record: &Record) -> String {
    format!("{}@{}", record.who.user, record.who.host)
}

fn tone(outcome: &str) -> Tone {
    match outcome {
        "succeeded" | "running" => Tone::Done,
        "interrupted?" | "interrupted" | "restored" | "failed, restored" => Tone::Pending,
        _ => Tone::Failed,
    }
}

impl fmt::Display for HistoryView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs.is_empty() {
            return match &self.services {
                Some(services) => writeln!(
                    f,
                    "no recorded run of {} planned {}",
                    self.environment,
                    services.join(" or ")
                ),
                None => writeln!(f, "no recorded run of {}", self.environment),
            };
        }
        let mut rows = Vec::new();
        for entry in &self.runs {
            let record = &entry.record;
            let services = match self.services.as_deref() {
                Some([name]) => record
                    .services
                    .iter()
                    .find(|s| &s.service == name)
                    .map(|s| s.transition())
                    .unwrap_or_default(),
                Some(names) => record
                    .services
                    .iter()
                    .filter(|s| names.contains(&s.service))
                    .map(|s| format!("{} {}", s.service, s.transition()))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => {
                    let changed: Vec<String> = record
                        .services
                        .iter()
                        .filter(|s| {
                            s.previous.as_ref().is_none_or(|p| p.tag != s.new.tag) || !s.rolled
                        })
                        .map(|s| format!("{} {}", s.service, s.transition()))
                        .collect();
                    let spas = record
                        .spas
                        .iter()
                        .filter(|s| s.new_release.is_some() || s.new_sha.is_some())
                        .map(|s| format!("{} {}", s.name, s.transition()));
                    let changed: Vec<String> = changed.into_iter().chain(spas).collect();
                    if changed.is_empty() {
                        "-".to_owned()
                    } else {
                        changed.join(", ")
                    }
                }
            };
            rows.push([
                Cell::plain(crate::timestamp::utc(record.started)),
                Cell::plain(who(record)),
                Cell::plain(mode_name(record.mode)),
                Cell::plain(services),
                Cell::new(entry.outcome, tone(entry.outcome)),
                Cell::plain(
                    record
                        .duration()
                        .map_or("-".to_owned(), |secs| format!("{secs}s")),
                ),
                Cell::plain(record.run_id.clone()),
            ]);
        }
        let service_header = match self.services.as_deref() {
            Some([name]) => name.to_uppercase(),
            _ => "SERVICES (OLD → NEW)".to_owned(),
        };
        write_table(
            f,
            [
                "WHEN",
                "WHO",
                "MODE",
                service_header.as_str(),
                "OUTCOME",
                "DURATION",
                "RUN",
            ],
            &rows,
        )
    }
}
