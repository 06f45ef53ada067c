//! Step 2, a check a dry run makes too: the services a run builds need the Dockerfile
//! in the commit they are built from (images build from the commit's tree, never the
//! work tree), inside the build context. Found here, it is a usage error (exit 2)
//! naming the services and the path, before anything is read from AWS or built.

use anyhow::Result;

use super::images::dockerfile_in_context;
use super::source::ImageSource;
use crate::checkout::Checkout;
use crate::docker::build_context::{self, ContextSpec};
use crate::error::UsageError;
use crate::model::plan::{Action, Plan};

/// Whether the Dockerfile the plan's builds need is in the commit they build from.
pub(super) fn check(checkout: &Checkout, plan: &Plan) -> Result<()> {
    if ImageSource::of(plan.mode) != ImageSource::Build {
        return Ok(());
    }
    // Checked before `--changed` reads what runs: a service still to check may be built.
    let building: Vec<&str> = plan
        .services
        .iter()
        .filter(|step| step.action != Action::Skip)
        .map(|step| step.name.as_str())
        .collect();
    if building.is_empty() {
        return Ok(());
    }
    let platform = &checkout.platform;
    let docker = &platform.config.docker;
    let dockerfile = dockerfile_in_context(&docker.dockerfile, &docker.context)?;
    let spec = ContextSpec {
        repo_root: platform.root.clone(),
        commit: plan.head.sha.clone(),
        dir: docker.context.clone(),
        dockerfile,
        include: None,
    };
    let Err(err) = build_context::dockerfile_text(&spec) else {
        return Ok(());
    };
    tracing::debug!("the Dockerfile cannot be read from the commit: {err:#}");
    let path = &docker.dockerfile;
    let in_work_tree = platform.root.join(path).is_file();
    let fix = if in_work_tree {
        "it is in the work tree but not committed: commit it"
    } else {
        "add it, or set docker.dockerfile in deploy.toml to the services' Dockerfile"
    };
    Err(UsageError::new(format!(
        "cannot build {}: the Dockerfile {} ({}) is not in commit {}, which images are built from; {fix}. Nothing was touched",
        building.join(", "),
        path.display(),
        platform.origin("docker.dockerfile"),
        plan.head.short_sha,
    ))
    .into())
}
