//! Step 2 with `--changed`: what ECS runs decides which services the plan deploys.

use anyhow::Result;

use crate::changes::live;
use crate::model::environment::Outputs;
use crate::model::plan::{Decision, Plan};
use crate::model::platform::Checkout;

/// The survey of live tags vs HEAD decides each service. Returns the terraform outputs
/// when it read them, so that preflight does not read them again.
pub(super) async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    profile: Option<&str>,
) -> Result<Option<Outputs>> {
    let platform = &checkout.platform;
    // The live tags of the environment the tfvars name (preflight still requires that
    // workspace to be the selected one before anything is rolled).
    let workspace = plan.terraform.as_ref().map(|t| t.apply.workspace.as_str());
    let (environment, outputs) = crate::commands::read_environment(
        platform,
        profile,
        workspace,
        platform.config.ecs.cluster.is_some(),
    )
    .await?;
    let cluster = environment.cluster()?.to_owned();
    let survey = live::survey(platform, &checkout.repo, &plan.head.sha, profile, cluster).await?;
    let decisions = survey
        .services
        .into_iter()
        .map(|s| {
            let decision = Decision {
                action: s.action,
                reason: s.reason,
                cause: s.cause,
            };
            (s.name, decision)
        })
        .collect();
    plan.decide(decisions, &platform.config.terraform);
    Ok(outputs)
}
