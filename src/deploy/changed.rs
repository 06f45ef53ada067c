//! Step 2 with `--changed`: what ECS runs decides which services the plan deploys; in
//! graph mode, the SHA each SPA bucket records decides the SPAs too.

use anyhow::Result;

use crate::aws::Contexts;
use crate::changes::live;
use crate::checkout::Checkout;
use crate::model::config::ChangesMode;
use crate::model::environment::Outputs;
use crate::model::plan::{Action, Decision, Plan};
use crate::request::Request;

mod drift;

/// The survey of live tags vs HEAD decides each service. Returns the terraform outputs
/// when it read them, so that preflight does not read them again.
pub(super) async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    request: &Request,
    contexts: &Contexts,
    profile: Option<&str>,
) -> Result<Option<Outputs>> {
    let platform = &checkout.platform;
    let mode = request.changes_mode(&platform.config);
    let deciding_spas =
        mode == ChangesMode::Graph && plan.spas.iter().any(|s| s.action != Action::Skip);
    // Graph mode reads the SPA buckets (and the private bucket keeping their upload
    // manifests): from terraform unless deploy.toml names them all.
    let config_suffices = platform.config.ecs.cluster.is_some()
        && (!deciding_spas
            || (platform.spas.iter().all(|spa| spa.bucket.is_some())
                && (platform.config.lock.bucket.is_some() || !platform.config.lock.enabled)));
    // The live tags of the environment the tfvars name (preflight still requires that
    // workspace to be the selected one before anything is rolled).
    let workspace = plan.terraform.as_ref().map(|t| t.apply.workspace.as_str());
    let (environment, outputs) = crate::changes::environment::read_environment(
        platform,
        profile,
        workspace,
        config_suffices,
    )
    .await?;
    let cluster = environment.cluster()?.to_owned();
    let aws = contexts.get(profile).await;
    let survey = live::survey(
        platform,
        &checkout.repo,
        &plan.head.sha,
        &aws,
        cluster,
        mode,
    )
    .await?;
    let (survey, restored) = drift::apply_policy(
        platform,
        &checkout.repo,
        &aws,
        // `deploy diff` only looks: it says what drifted and plans from what runs.
        if request.diff_only {
            crate::model::drift::DriftPolicy::Adopt
        } else {
            request.drift
        },
        (&environment, outputs.as_ref()),
        survey,
        mode,
    )
    .await?;
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
    plan.decide(decisions, &restored, &platform.config.terraform);
    if deciding_spas {
        let decisions =
            super::changed_spas::decide_spas(plan, checkout, &environment, &aws).await?;
        plan.decide_spas(decisions);
    }
    Ok(outputs)
}
