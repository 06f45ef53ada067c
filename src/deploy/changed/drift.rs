//! `--changed` and drift: a service changed outside deploy (it runs another image than
//! deploy's last roll or terraform's `image_tags` say) is refused (exit 4) unless the
//! operator said what to do with it: `--adopt-drift` (diff from what runs) or
//! `--restore-drift` (diff from what deploy recorded: unchanged since, that recorded
//! image is rolled again as it is, not built; changed since, built and rolled).

use std::collections::BTreeMap;

use anyhow::Result;

use crate::aws::ecs::{image_tag_of, LiveImage};
use crate::aws::Aws;
use crate::changes::drift;
use crate::changes::live::{self, Survey};
use crate::git::Repo;
use crate::model::config::ChangesMode;
use crate::model::drift::{refusal, restoration, DriftPolicy, Restoration, ServiceDrift};
use crate::model::environment::{Environment, Outputs};
use crate::model::plan::Action;
use crate::model::platform::Platform;

/// The survey as `--changed` decides from it under `policy`: unchanged when nothing
/// drifted or with `--adopt-drift` (said per service), each drifted service decided
/// again from deploy's recorded image with `--restore-drift`, and an error (exit 4)
/// otherwise. `environment`: the environment and its terraform outputs, when read.
pub(super) async fn apply_policy(
    platform: &Platform,
    repo: &Repo,
    aws: &Aws,
    policy: DriftPolicy,
    environment: (&Environment, Option<&Outputs>),
    mut survey: Survey,
    mode: ChangesMode,
) -> Result<(Survey, BTreeMap<String, String>)> {
    let (environment, outputs) = environment;
    let empty = Outputs::new();
    let (records, tags, _) =
        drift::recorded(platform, aws, environment, outputs.unwrap_or(&empty)).await;
    let found = drift::survey(
        platform,
        aws,
        &survey.cluster,
        &survey.services,
        records.as_deref(),
        tags.as_ref(),
        &Default::default(),
    )
    .await;
    let drifted = drift::drifted(&found);
    if drifted.is_empty() {
        return Ok((survey, BTreeMap::new()));
    }
    match policy {
        DriftPolicy::Refuse => Err(crate::error::Drifted(refusal(&drifted)).into()),
        DriftPolicy::Adopt => {
            for drift in &drifted {
                crate::ui::output::warn(&format!(
                    "{}: changed outside deploy ({}); --adopt-drift: deciding from what runs",
                    drift.service,
                    drift.summary()
                ));
                if let Some(state) = survey.services.iter_mut().find(|s| s.name == drift.service) {
                    state.reason = format!("{} (drift adopted)", state.reason);
                }
            }
            Ok((survey, BTreeMap::new()))
        }
        DriftPolicy::Restore => {
            let restored = restore(platform, repo, &drifted, &mut survey, mode)?;
            Ok((survey, restored))
        }
    }
}

/// `--restore-drift`: each drifted service decided again as if it ran deploy's recorded
/// tag, then rolled under deploy: to that recorded image when nothing it is built from
/// changed since (returned, service → tag), else to this run's build.
fn restore(
    platform: &Platform,
    repo: &Repo,
    drifted: &[&ServiceDrift],
    survey: &mut Survey,
    mode: ChangesMode,
) -> Result<BTreeMap<String, String>> {
    let recorded_live = survey
        .services
        .iter()
        .map(|state| {
            let drift = drifted.iter().find(|d| d.service == state.name);
            let live = match (drift.and_then(|d| d.restore_tag()), &state.live) {
                (Some(tag), LiveImage::Running { image, .. }) => {
                    let mut live = state.live.clone();
                    if let LiveImage::Running { image: slot, .. } = &mut live {
                        *slot = with_tag(image, tag);
                    }
                    live
                }
                _ => state.live.clone(),
            };
            (state.name.clone(), live)
        })
        .collect();
    let again = live::compare(platform, repo, &survey.head, recorded_live, mode)?;
    let mut restored = BTreeMap::new();
    for drift in drifted {
        let Some(state) = survey.services.iter_mut().find(|s| s.name == drift.service) else {
            continue;
        };
        let from_recorded = again.iter().find(|s| s.name == drift.service);
        let since = from_recorded.map(|s| (s.action != Action::Skip, s.reason.as_str()));
        state.action = Action::Deploy;
        match restoration(drift, since) {
            Restoration::Recorded { tag, reason } => {
                crate::ui::output::warn(&format!(
                    "{}: changed outside deploy ({}); --restore-drift: rolling its recorded :{tag} again (unchanged since, not rebuilt)",
                    drift.service,
                    drift.summary()
                ));
                state.reason = reason;
                state.cause = None;
                restored.insert(drift.service.clone(), tag);
            }
            Restoration::Build { reason } => {
                crate::ui::output::warn(&format!(
                    "{}: changed outside deploy ({}); --restore-drift: it changed since deploy's roll, so this run builds and rolls it",
                    drift.service,
                    drift.summary()
                ));
                state.reason = reason;
                state.cause = from_recorded.and_then(|s| s.cause.clone());
            }
        }
    }
    Ok(restored)
}

/// `image` with its tag replaced by `tag` (a digest suffix dropped).
fn with_tag(image: &str, tag: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    match image_tag_of(name) {
        Some(old) => format!("{}{tag}", &name[..name.len() - old.len()]),
        None => format!("{name}:{tag}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tag_is_replaced_keeping_the_registry_and_port() {
        assert_eq!(
            super::with_tag("127.0.0.1:5000/auth:zz@sha256:ab", "a1"),
            "127.0.0.1:5000/auth:a1"
        );
        assert_eq!(super::with_tag("r/auth", "a1"), "r/auth:a1");
    }
}
