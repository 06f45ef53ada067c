//! Step 2: the plan of what this checkout would deploy, then what the plan leaves open
//! decided from what runs, also in a dry run: `--changed` from what ECS runs, `deploy
//! promote` from both environments, `deploy undo` from the history, `deploy rollback`'s
//! SPAs from their kept releases.

use anyhow::Result;

use super::{changed, dockerfile, ledger, promote, spa_restore};
use crate::aws::Contexts;
use crate::checkout::Checkout;
use crate::model::environment::Outputs;
use crate::model::plan::{self, Mode, Plan};
use crate::request::Request;

/// The checkout, its platform as the run's environment sees it (deploy.toml's names
/// expanded for it: `crate::planning::platform_in`).
pub(super) fn open(repo: Option<&std::path::Path>, request: &Request) -> Result<Checkout> {
    let mut checkout = Checkout::open(repo)?;
    checkout.platform =
        crate::planning::platform_of_run(&checkout.platform, &checkout.cwd, request)?;
    Ok(checkout)
}

/// The plan, before anything is read from the environment, with the checks it allows
/// (the Dockerfile of the builds: [`dockerfile::check`]).
pub(super) fn make_plan(checkout: &Checkout, request: &Request) -> Result<Plan> {
    let repo = &checkout.repo;
    let rollback_to = request
        .rollback
        .as_deref()
        .map(|revision| repo.commit(revision))
        .transpose()?;
    // A rollback builds nothing, so the working tree does not matter.
    let uncommitted = if rollback_to.is_some() {
        Vec::new()
    } else {
        repo.uncommitted_paths()?
    };
    tracing::info!(root = %repo.root().display(), tag = %checkout.head.short_sha, "repository found");
    let plan = crate::planning::plan(
        &checkout.platform,
        request,
        plan::Context {
            head: checkout.head.clone(),
            cwd: &checkout.cwd,
            registry_env: crate::planning::registry_env(),
            spa_sources: crate::spa::sources::read(&checkout.platform, &uncommitted),
            uncommitted,
            rollback_to,
        },
    )?;
    dockerfile::check(checkout, &plan)?;
    Ok(plan)
}

/// Decides what the plan leaves open. Returns the environment's terraform outputs when
/// they were read, so that preflight does not read them again.
pub(super) async fn decide(
    plan: &mut Plan,
    checkout: &Checkout,
    request: &Request,
    contexts: &Contexts,
    profile: Option<&str>,
) -> Result<Option<Outputs>> {
    match plan.mode {
        Mode::Changed => changed::decide(plan, checkout, request, contexts, profile).await,
        Mode::Promote => promote::decide(plan, checkout, contexts, profile).await,
        Mode::Rollback => spa_restore::decide_rollback(plan, checkout, contexts, profile)
            .await
            .map(|()| None),
        Mode::Undo => ledger::decide_undo(
            plan,
            checkout,
            (&request.selection, request.undo_of.as_deref()),
            contexts,
            profile,
        )
        .await
        .map(|()| None),
        Mode::Full | Mode::Services => Ok(None),
    }
}
