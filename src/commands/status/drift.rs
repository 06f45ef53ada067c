//! The drift half of `status`: read after the survey, shown under the services' table,
//! and `--check`'s verdict.

use std::collections::HashMap;
use std::fmt;

use super::digests::ServiceDigest;
use crate::changes::drift::{self, Sources};
use crate::changes::live::Survey;
use crate::model::drift::ServiceDrift;
use crate::model::environment::{Environment, Outputs};
use crate::model::platform::Platform;

/// The drift of every running service of `survey`, and what it was compared with.
pub(super) async fn read(
    platform: &Platform,
    aws: &crate::aws::Aws,
    environment: &Environment,
    outputs: &Outputs,
    survey: &Survey,
    digests: &[ServiceDigest],
) -> (Vec<ServiceDrift>, Sources) {
    let (records, tags, sources) = drift::recorded(platform, aws, environment, outputs).await;
    let registry: HashMap<String, String> = digests
        .iter()
        .filter_map(|d| Some((d.service.clone(), d.digest.clone()?)))
        .collect();
    let found = drift::survey(
        platform,
        aws,
        &survey.cluster,
        &survey.services,
        records.as_deref(),
        tags.as_ref(),
        &registry,
    )
    .await;
    (found, sources)
}

/// `--check`: drift is exit 4, naming each drifted service.
pub(super) fn check(found: &[ServiceDrift]) -> anyhow::Result<()> {
    let drifted = drift::drifted(found);
    if drifted.is_empty() {
        return Ok(());
    }
    let mut text = format!(
        "drift: {} changed outside deploy",
        drifted
            .iter()
            .map(|d| d.service.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for drift in &drifted {
        text.push_str(&format!("\n  {}: {}", drift.service, drift.summary()));
    }
    text.push_str("\nTake what runs with `deploy --changed --adopt-drift`, or roll deploy's version back with `deploy --changed --restore-drift`");
    Err(crate::error::Drifted(text).into())
}

/// The lines under the services' table: each drifted service, or that none drifted,
/// and what could not be compared.
pub(super) fn write(
    f: &mut fmt::Formatter<'_>,
    found: &[ServiceDrift],
    sources: &Sources,
) -> fmt::Result {
    let drifted = drift::drifted(found);
    writeln!(f)?;
    if drifted.is_empty() {
        let against = match (sources.history, sources.terraform) {
            (true, true) => "deploy's history and terraform's image_tags",
            (true, false) => "deploy's history",
            (false, true) => "terraform's image_tags",
            (false, false) => "nothing recorded",
        };
        writeln!(f, "No drift (compared with {against})")?;
    } else {
        for drift in drifted {
            writeln!(f, "DRIFT {}: {}", drift.service, drift.summary())?;
        }
    }
    for note in &sources.notes {
        writeln!(f, "note: {note}")?;
    }
    Ok(())
}
