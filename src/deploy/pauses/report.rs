//! What `deploy continue` answered, as text and JSON, and the listing shown before the
//! confirmation.

use std::fmt;

use serde::Serialize;

use super::Pending;
use crate::aws::ecs::native::{next_step, Answer, DeploymentView, Pause};
use crate::aws::ecs::Settled;
use crate::model::history::Record;

#[derive(Debug, Serialize)]
pub(super) struct ContinueReport {
    pub environment: String,
    /// The run whose pauses were answered.
    pub run_id: String,
    /// CONTINUE or ROLLBACK.
    pub action: &'static str,
    pub answered: Vec<Answered>,
    /// Each answered deployment, followed after the answer to its end or next pause.
    pub followed: Vec<Settled>,
    /// The undo run that reconciled what ECS rolled back, as its own JSON document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<serde_json::Value>,
}

/// One hook answered.
#[derive(Debug, Serialize)]
pub(super) struct Answered {
    pub service: String,
    pub deployment: String,
    pub strategy: String,
    pub stage: Option<String>,
    pub hook_id: String,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

impl Answered {
    pub fn new(service: &str, deployment: &DeploymentView, pause: &Pause) -> Self {
        Self {
            service: service.to_owned(),
            deployment: deployment.arn.clone(),
            strategy: deployment.strategy.clone(),
            stage: deployment.stage.clone(),
            hook_id: pause.hook_id.clone(),
            expires_at: pause.expires_at,
        }
    }
}

impl fmt::Display for ContinueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.answered.is_empty() {
            return writeln!(
                f,
                "no pause of the last run ({}) of {} waits for an answer: nothing to do",
                self.run_id, self.environment
            );
        }
        writeln!(
            f,
            "answered {} pause(s) of run {} in {} with {}:",
            self.answered.len(),
            self.run_id,
            self.environment,
            self.action
        )?;
        for answered in &self.answered {
            writeln!(
                f,
                "  {}: hook {} of its {} deployment at {} ({})",
                answered.service,
                answered.hook_id,
                answered.strategy,
                answered.stage.as_deref().unwrap_or("?"),
                answered.deployment
            )?;
        }
        if !self.followed.is_empty() {
            writeln!(f, "then:")?;
        }
        for settled in &self.followed {
            let seen = match (
                &settled.native_rollback,
                &settled.error,
                &settled.deployment,
            ) {
                (Some(rollback), _, _) => format!("{} ({})", rollback.headline(), rollback.status),
                (None, Some(err), _) => format!("NOT complete: {err}"),
                (None, None, Some(d)) if d.status != "SUCCESSFUL" => {
                    format!("waits at a pause again: {}", next_step(d))
                }
                (None, None, _) => format!(
                    "complete on :{}",
                    settled.running_tag.as_deref().unwrap_or("?")
                ),
            };
            writeln!(f, "  {}: {seen}", settled.service)?;
        }
        Ok(())
    }
}

/// The pauses about to be answered, one line per hook, with its expiry.
pub(super) fn listing(record: &Record, pending: &[Pending], answer: Answer) -> String {
    let now = crate::timestamp::now_unix() as i64;
    let mut lines = vec![format!(
        "pauses of run {} ({}, {}) waiting for an answer, to answer with {}:",
        record.run_id,
        record.who.user,
        crate::timestamp::rfc3339(record.started),
        answer.name()
    )];
    for Pending {
        service,
        deployment,
    } in pending
    {
        for pause in &deployment.pauses {
            let expiry = pause
                .expires_at
                .map(|at| {
                    format!(
                        ", expires in {} (then its timeout action runs)",
                        crate::timestamp::age(u64::try_from(at - now).unwrap_or(0))
                    )
                })
                .unwrap_or_default();
            lines.push(format!(
                "  {service}: {} at {}, hook {}{expiry}",
                deployment.strategy,
                deployment.stage.as_deref().unwrap_or("?"),
                pause.hook_id
            ));
        }
    }
    lines.join("\n")
}
