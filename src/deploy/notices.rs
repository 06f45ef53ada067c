//! What the notification webhook is told (`[notify]`, see `crate::notify`): the
//! start of a run once it holds the lock, and its end, with the step that failed
//! (told by the run's observers, `observers`).

use crate::error::Interrupted;
use crate::notify::{Event, Notice, Notifier};

use super::run::{Ready, Run};
use super::stages::Step;

impl Run<'_> {
    /// Posts the message of `event`; `ended` is how the run ended (its duration, and
    /// the step and error of a failure). Never fails: a webhook that does not take it
    /// is one warning per run.
    pub(super) async fn notify(
        &self,
        notifier: Option<&Notifier>,
        ready: &Ready,
        event: Event,
        ended: Option<(std::time::Duration, Option<(Step, &anyhow::Error)>)>,
    ) {
        let Some(notifier) = notifier else {
            return;
        };
        let failure = ended.and_then(|(_, failure)| failure);
        let who = match &ready.caller_arn {
            Some(arn) => format!("{} ({arn})", crate::operator::operator()),
            None => crate::operator::operator(),
        };
        let notice = Notice {
            event,
            environment: self.plan.terraform.as_ref().map_or_else(
                || "none (--skip-tf)".to_owned(),
                |step| step.apply.workspace.clone(),
            ),
            mode: self.plan.mode.to_string(),
            who,
            services: self
                .plan
                .deploying_services()
                .map(|s| s.name.clone())
                .collect(),
            spas: self.plan.touched_spas().map(|s| s.name.clone()).collect(),
            sha: self.plan.image_tag.clone(),
            duration_secs: ended.map(|(elapsed, _)| elapsed.as_secs_f64()),
            failed_step: failure.map(|(step, _)| step.name().to_owned()),
            error: failure.map(|(_, err)| Notice::short_error(&crate::error::render(err, 0))),
        };
        let hurry = failure.is_some_and(|(_, err)| err.chain().any(|c| c.is::<Interrupted>()));
        notifier
            .send(&notice, hurry, |message| self.progress.warn(message))
            .await;
    }
}
