//! `status` as text: the services' table, the SPAs', then the drift.

use std::fmt;

use super::digests::{short_digest, OtherImage};
use super::Status;
use crate::aws::ecs::LiveImage;
use crate::ui::style::{Cell, Tone};
use crate::ui::table::write_table;

/// A table whose column count is known only at run time.
fn write_rows(f: &mut fmt::Formatter<'_>, headers: &[&str], rows: &[Vec<Cell>]) -> fmt::Result {
    match headers.len() {
        6 => write_table(
            f,
            <[&str; 6]>::try_from(headers).map_err(|_| fmt::Error)?,
            &rows
                .iter()
                .map(|row| <[Cell; 6]>::try_from(row.clone()).map_err(|_| fmt::Error))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        7 => write_table(
            f,
            <[&str; 7]>::try_from(headers).map_err(|_| fmt::Error)?,
            &rows
                .iter()
                .map(|row| <[Cell; 7]>::try_from(row.clone()).map_err(|_| fmt::Error))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => Err(fmt::Error),
    }
}

/// The tone of an ECS deployment's rollout state (`COMPLETED`, `IN_PROGRESS`,
/// `FAILED`; `PRIMARY` from older ECS answers without one).
fn rollout_tone(state: Option<&str>) -> Tone {
    match state {
        Some("COMPLETED") => Tone::Done,
        Some("IN_PROGRESS" | "PRIMARY") => Tone::Pending,
        Some("FAILED") => Tone::Failed,
        None => Tone::Skipped,
        Some(_) => Tone::Plain,
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HEAD {} — ECS cluster {}",
            self.head_short, self.survey.cluster
        )?;
        writeln!(f)?;
        let rows: Vec<Vec<Cell>> = self
            .survey
            .services
            .iter()
            .map(|s| {
                let digest = self.digests.iter().find(|d| d.service == s.name);
                let (live, rollout) = match &s.live {
                    LiveImage::Missing { .. } => (Cell::none(), Cell::plain("missing")),
                    LiveImage::NoContainer { .. } => (Cell::plain("?"), Cell::none()),
                    LiveImage::Running {
                        image,
                        rollout_state,
                        running,
                        desired,
                        deployments,
                        ..
                    } => (
                        Cell::plain(crate::aws::ecs::image_tag_of(image).unwrap_or(image)),
                        Cell::new(
                            format!(
                                "{} {running}/{desired} running{}",
                                rollout_state.as_deref().unwrap_or("-"),
                                if *deployments > 1 {
                                    format!(", {deployments} deployments")
                                } else {
                                    String::new()
                                }
                            ),
                            rollout_tone(rollout_state.as_deref()),
                        ),
                    ),
                };
                let changed = match s.action {
                    crate::model::plan::Action::Skip => Cell::plain("no"),
                    _ => Cell::new("yes", Tone::Done),
                };
                let digest_cell = match digest.and_then(|d| d.digest.as_deref()) {
                    Some(digest) => Cell::plain(short_digest(digest)),
                    None if digest.is_some_and(|d| d.error.is_some()) => Cell::plain("?"),
                    None => Cell::none(),
                };
                let mut row = vec![Cell::plain(&s.name), live, digest_cell];
                if self.compared_with.is_some() {
                    let other = digest.and_then(|d| d.other.as_ref());
                    row.push(match other {
                        Some(OtherImage {
                            same: Some(true), ..
                        }) => Cell::new("same bytes", Tone::Done),
                        Some(OtherImage {
                            same: Some(false),
                            tag,
                            digest,
                        }) => Cell::new(
                            format!(
                                "differs (:{} {})",
                                tag.as_deref().unwrap_or("?"),
                                short_digest(digest.as_deref().unwrap_or("?"))
                            ),
                            Tone::Pending,
                        ),
                        _ => Cell::plain("cannot tell"),
                    });
                }
                row.extend([changed, rollout, Cell::plain(&s.reason)]);
                row
            })
            .collect();
        let compare_header = self
            .compared_with
            .as_deref()
            .map(|other| format!("VS {}", other.to_uppercase()));
        let mut headers = vec!["SERVICE", "LIVE TAG", "DIGEST"];
        if let Some(header) = &compare_header {
            headers.push(header);
        }
        headers.extend(["CHANGED", "ECS", "WHY"]);
        write_rows(f, &headers, &rows)?;
        super::drift::write(f, &self.drift, &self.drift_sources)?;
        if self.spas.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        let rows: Vec<[Cell; 6]> = self
            .spas
            .iter()
            .map(|spa| {
                [
                    Cell::plain(&spa.name),
                    spa.bucket.as_deref().map_or_else(Cell::none, Cell::plain),
                    spa.deployed_short
                        .as_deref()
                        .map_or_else(Cell::none, Cell::plain),
                    if spa.changed {
                        Cell::new("yes", Tone::Done)
                    } else {
                        Cell::plain("no")
                    },
                    Cell::plain(spa.release_text()),
                    Cell::plain(&spa.reason),
                ]
            })
            .collect();
        write_table(
            f,
            ["SPA", "BUCKET", "DEPLOYED", "CHANGED", "RELEASE", "WHY"],
            &rows,
        )
    }
}
