//! Step 2 with `--changed`: what ECS runs decides which services the plan deploys; in
//! graph mode, the SHA each SPA bucket records decides the SPAs too.

use anyhow::{Context as _, Result};

use crate::changes::decide::decide_base;
use crate::changes::graph::Subject;
use crate::changes::live;
use crate::checkout::Checkout;
use crate::model::config::ChangesMode;
use crate::model::environment::{Environment, Outputs};
use crate::model::plan::{Action, Decision, Plan};
use crate::request::Request;

/// The workspace files every SPA build reads besides the lockfile (compared by
/// importer): a change in one rebuilds every SPA in graph mode.
const SPA_FAN_OUT: [&str; 2] = ["package.json", "pnpm-workspace.yaml"];

/// The survey of live tags vs HEAD decides each service. Returns the terraform outputs
/// when it read them, so that preflight does not read them again.
pub(super) async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    request: &Request,
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
    let survey = live::survey(
        platform,
        &checkout.repo,
        &plan.head.sha,
        profile,
        cluster,
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
    plan.decide(decisions, &platform.config.terraform);
    if deciding_spas {
        let decisions = decide_spas(plan, checkout, &environment, profile).await?;
        plan.decide_spas(decisions);
    }
    Ok(outputs)
}

/// Graph mode: each SPA against the git SHA its bucket records (what `deploy status`
/// reads). No recorded SHA, a `-dirty` one, or one missing from history deploys.
async fn decide_spas(
    plan: &Plan,
    checkout: &Checkout,
    environment: &Environment,
    profile: Option<&str>,
) -> Result<Vec<(String, Decision)>> {
    let platform = &checkout.platform;
    let head = git2::Oid::from_str(&plan.head.sha).context("HEAD is not a commit id")?;
    let mut graph = live::graph_cache(platform, &checkout.repo, head);
    let fan_out = SPA_FAN_OUT.map(str::to_owned);
    let s3 = crate::aws::Aws::load(profile).await.s3();
    let mut decisions = Vec::new();
    for spa in &platform.spas {
        if plan
            .spas
            .iter()
            .any(|step| step.name == spa.name && step.action == Action::Skip)
        {
            continue;
        }
        let Some(bucket) = environment.spa(&spa.name).bucket else {
            // Preflight stops the run with the fix (no bucket to upload to).
            decisions.push((
                spa.name.clone(),
                Decision::deploy("no bucket known: deploying"),
            ));
            continue;
        };
        let manifest = environment
            .lock_bucket
            .as_deref()
            .map(|private| crate::spa::ManifestLocation::new(private, &spa.name, &bucket));
        let recorded = crate::spa::deployed_sha(&s3, manifest.as_ref(), &bucket).await?;
        let Some(recorded) = recorded else {
            decisions.push((
                spa.name.clone(),
                Decision::deploy(format!(
                    "bucket {bucket} records no deployed SHA: deploying"
                )),
            ));
            continue;
        };
        let dir = spa.dir.to_string_lossy().trim_end_matches('/').to_owned();
        let inputs = platform.config.changes.inputs_of(&spa.name);
        let subject = Subject {
            name: &spa.name,
            dir: &dir,
            fan_out: &fan_out,
            inputs: &inputs,
        };
        let decision = decide_base(checkout.repo.git(), head, &recorded, "recorded", |base| {
            Ok(graph.cause(base, &subject)?.map(Decision::because))
        })?;
        decisions.push((spa.name.clone(), decision));
    }
    Ok(decisions)
}
