//! After the answers: each answered deployment followed side by side until it ends or
//! waits at its next pause (one progress line per service), and what was seen written
//! into the run's record. Cut short (Ctrl-C), it says what each still had to do.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use futures_util::StreamExt as _;

use super::report::ContinueReport;
use crate::aws::ecs::native::{next_step, Answer, Wait, WaitUntil};
use crate::aws::ecs::{Ecs, RolloutTarget, Settled};
use crate::model::config;
use crate::model::history::Record;
use crate::model::platform::Platform;
use crate::report::record::note_followed;
use crate::ui::progress::Progress;

/// Follows the deployment of every service answered in `report`; each one's settling
/// noted in `record`. An error only when the wait was cut short.
pub(super) async fn each(
    platform: &Platform,
    ecs: &Ecs,
    record: &mut Record,
    report: &ContinueReport,
    since: SystemTime,
    progress: &Progress,
) -> Result<Vec<Settled>> {
    let ecs_config = &platform.config.ecs;
    // Until it ends (then it must run the run's tag) or waits at a pause not answered.
    let wait = Wait {
        until: WaitUntil::Paused,
        margin: Duration::from_secs(ecs_config.wait_timeout_secs),
        overall: None,
        poll: Duration::from_secs(ecs_config.poll_interval_secs),
    };
    let mut targets: Vec<RolloutTarget> = Vec::new();
    for answered in &report.answered {
        if let Some(target) = targets.iter_mut().find(|t| t.service == answered.service) {
            target.answered_hooks.push(answered.hook_id.clone());
            continue;
        }
        let Some(change) = record
            .services
            .iter()
            .find(|c| c.service == answered.service)
        else {
            continue;
        };
        targets.push(RolloutTarget {
            service: answered.service.clone(),
            ecs_service: config::expand(&ecs_config.service, &answered.service),
            container: config::expand(&ecs_config.container, &answered.service),
            expected_tag: change.new.tag.clone(),
            watched_alarms: platform.config.alarms.of(&answered.service),
            answered_hooks: vec![answered.hook_id.clone()],
        });
    }
    let wait = &wait;
    let following = futures_util::stream::iter(targets)
        .map(|target| async move {
            let item = progress.item(&target.service);
            item.state("following its deployment after the answer");
            let settled = ecs.follow(&target, since, wait, &item).await;
            item.finish(&finished(&settled, &target.expected_tag));
            settled
        })
        .buffer_unordered(8)
        .collect::<Vec<Settled>>();
    let mut settled = super::super::run::cut_short(progress, async { Ok(following.await) }).await?;
    settled.sort_by(|a, b| a.service.cmp(&b.service));
    for followed in &settled {
        if let Some(change) = record
            .services
            .iter_mut()
            .find(|c| c.service == followed.service)
        {
            note_followed(change, Some(followed));
        }
    }
    Ok(settled)
}

/// The service's last progress line.
fn finished(settled: &Settled, tag: &str) -> String {
    if let Some(rollback) = &settled.native_rollback {
        return format!(
            "{} ({}{}): ECS runs what ran before",
            rollback.headline(),
            rollback.status,
            rollback
                .stage
                .as_deref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default()
        );
    }
    if let Some(err) = &settled.error {
        return format!("NOT complete: {err}");
    }
    match &settled.deployment {
        Some(d) if d.status != "SUCCESSFUL" => format!("PAUSED again: {}", next_step(d)),
        Some(d) => format!(
            "complete on :{tag} ({:.0}s, {} deployment SUCCESSFUL)",
            settled.waited_secs, d.strategy
        ),
        None => format!("steady on :{tag} ({:.0}s)", settled.waited_secs),
    }
}

/// The deployments that did not end as the answer asked: any error, except the
/// rollback a ROLLBACK answer asked for.
pub(super) fn failures(settled: &[Settled], answer: Answer) -> Result<()> {
    let failed: Vec<String> = settled
        .iter()
        .filter(|s| !(answer == Answer::Rollback && s.native_rollback.is_some()))
        .filter_map(|s| Some(format!("  {}: {}", s.service, s.error.as_ref()?)))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    bail!(
        "after the answers, {} deployment(s) did not end as asked:\n{}",
        failed.len(),
        failed.join("\n")
    )
}
