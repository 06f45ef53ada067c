//! `deploy history --var-file tfvars/<env>.tfvars`: the environment's runs, newest
//! first, or the lineage of the services named (`--services`). Read-only.

use anyhow::Result;

use crate::aws::deploy_lock::{self, LockLocation};
use crate::changes::environment::read_records;
use crate::checkout::{runtime, Checkout};
use crate::model::history::HistoryView;
use crate::model::plan::services::validate_service_names;
use crate::request::{Globals, HistoryRequest};
use crate::ui::output::emit_stdout;

pub fn run(globals: &Globals, request: &HistoryRequest) -> Result<()> {
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([("--profile", profile)])?;
    let Checkout { platform, cwd, .. } = Checkout::open(globals.repo.as_deref())?;
    let (var_file, environment) =
        crate::planning::environment_of(&platform, &cwd, &request.var_file)?;
    crate::planning::warn_about_env_tables(&platform, &var_file, &environment);
    let platform = crate::planning::platform_in(&platform, Some(&environment))?;
    let services = request
        .services
        .as_deref()
        .map(|names| validate_service_names(&platform, names))
        .transpose()?;
    let view = runtime()?.block_on(async {
        let aws = contexts.get(profile).await;
        let (records, location, s3) =
            read_records(&platform, &aws, &environment, request.limit).await?;
        // A `running` record whose run no longer holds the lock was cut off.
        let lock =
            deploy_lock::read_holder(&s3, &LockLocation::new(&location.bucket, &environment))
                .await
                .unwrap_or(None);
        let holder = lock.as_ref().map(|h| (h.host.as_str(), h.pid));
        anyhow::Ok(HistoryView::new(
            &environment,
            services.as_deref(),
            records,
            holder,
        ))
    })?;
    emit_stdout(&view, globals.output)
}
