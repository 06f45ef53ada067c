//! From the request to the plan ([`plan`]): what the operator asked for, on the
//! platform found on disk, becomes the [`Plan`] value. The I/O the plan needs is here,
//! not in `model`: the tfvars file found and read (its name is the environment), the
//! registry overrides read from this process's environment, and (through
//! `spa::sources`, read before the plan) the files an SPA's build reads.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::UsageError;
use crate::model::plan::registry::{self, RegistryEnv};
use crate::model::plan::{
    services, spas, Action, Apply, Context, Mode, Plan, PromotionPlan, Roll, TerraformStep,
};
use crate::model::platform::Platform;
use crate::request::{Request, Selection};

/// The plan of `request` on `platform`: the services it selects (its mode), the SPAs,
/// the terraform step (its tfvars file found and read) and where images go.
pub fn plan(platform: &Platform, request: &Request, context: Context<'_>) -> Result<Plan> {
    let target = target_environment(platform, context.cwd, request)?;
    let platform = &platform_in(platform, target.as_ref().map(|(_, env)| env.as_str()))?;
    let tag = match &context.rollback_to {
        Some(target) => target.short_sha.clone(),
        None => context.head.short_sha.clone(),
    };
    let (mut mode, mut services) = services::plan_services(platform, &request.selection, &tag)?;
    if request.promote.is_some() {
        mode = Mode::Promote;
        for step in services.iter_mut().filter(|s| s.action == Action::Deploy) {
            step.action = Action::Check;
            step.reason = "promoted if the source runs a commit's image the target does not".into();
        }
    }
    if context.rollback_to.is_some() {
        mode = Mode::Rollback;
        for step in services.iter_mut().filter(|s| s.action == Action::Deploy) {
            step.reason = format!("rolled back to {tag}: its image, not rebuilt");
        }
    }
    if request.undo {
        mode = Mode::Undo;
        // `undo --services`: the others stay skipped, "not selected".
        for step in services.iter_mut().filter(|s| s.action != Action::Skip) {
            step.action = Action::Check;
            step.reason = "restored if the last successful run changed it".to_owned();
        }
    }
    let ask = spas::SpaAsk {
        skip: request.skip_spas,
        allow_dirty: request.allow_dirty_spas,
        named: request.spas.clone(),
        services_named: matches!(request.selection, Selection::Named(_)),
        graph: request.changes_mode(&platform.config) == crate::model::config::ChangesMode::Graph,
    };
    let spas = spas::plan_spas(platform, &ask, mode, &context)?;
    let terraform = match target {
        Some((var_file, workspace)) if !request.skip_tf => {
            let every_service = request.selection == Selection::All;
            let roll = match mode {
                // Filled in from the history ([`Plan::restore`]).
                Mode::Undo => Roll::restore(Default::default()),
                Mode::Full => Roll::All { tag: tag.clone() },
                Mode::Rollback if every_service => Roll::All { tag: tag.clone() },
                Mode::Changed | Mode::Services | Mode::Rollback | Mode::Promote => Roll::Only {
                    services: services
                        .iter()
                        .filter(|step| step.action != Action::Skip)
                        .map(|step| step.name.clone())
                        .collect(),
                    tag: tag.clone(),
                    tags: Default::default(),
                    renew: Vec::new(),
                },
            };
            let apply = Apply {
                dir: platform.terraform_dir().to_path_buf(),
                var_file,
                workspace,
                roll,
            };
            Some(TerraformStep::new(apply, &platform.config.terraform))
        }
        _ => None,
    };
    let workspace = terraform.as_ref().map(|step| step.apply.workspace.as_str());
    let registry = registry::registry_of(platform, workspace, &context.registry_env);
    let promotion = match &request.promote {
        Some(promote) => {
            let (from_var_file, from_workspace) =
                environment_named_by(platform, context.cwd, &promote.from_var_file, "--from")?;
            if Some(from_workspace.as_str()) == workspace {
                return Err(UsageError::new(format!(
                    "--from and --to are the same environment ({from_workspace}): promote copies images from one environment to another"
                ))
                .into());
            }
            Some(PromotionPlan {
                from_registry: registry::registry_of(
                    &platform_in(platform, Some(&from_workspace))?,
                    Some(&from_workspace),
                    &context.registry_env,
                ),
                from_var_file,
                from_workspace,
                profile_from: promote.profile_from.clone(),
                images: Vec::new(),
            })
        }
        None => None,
    };
    Ok(Plan {
        repo: platform.root.clone(),
        config: platform.source.path.clone(),
        head: context.head,
        mode,
        image_tag: tag,
        rollback_to: context.rollback_to,
        undo: None,
        registry,
        uncommitted: context.uncommitted,
        services,
        spas,
        terraform,
        promotion,
    })
}

/// Warns (stderr) about the `[env.*]` tables of `deploy.toml` that look like a
/// misspelling of environment `env` (of tfvars file `var_file`, as [`environment_of`]
/// returns them), which has none of its own, and that name no tfvars file beside
/// `var_file`: `env` reads the top-level names (another cluster, bucket or distribution
/// than that table gives), and the table applies to no environment. Called once per
/// command, where the environment is first resolved.
pub fn warn_about_env_tables(platform: &Platform, var_file: &Path, env: &str) {
    for warning in env_table_warnings(platform, var_file, env) {
        crate::ui::output::warn(&warning);
    }
}

fn env_table_warnings(platform: &Platform, var_file: &Path, env: &str) -> Vec<String> {
    let config_file = platform
        .source
        .path
        .as_deref()
        .unwrap_or(Path::new(crate::model::config::CONFIG_FILE));
    // The tfvars path is as terraform reads it, from its directory (`resolve_var_file`).
    let tf_dir = platform.root.join(platform.terraform_dir());
    platform
        .config
        .env_tables_like(env)
        .into_iter()
        .filter_map(|table| {
            let tfvars = var_file.with_file_name(format!("{table}.tfvars"));
            (!tf_dir.join(&tfvars).exists()).then(|| format!(
                "{config} has [env.{table}] but no [env.{env}]: {env} ({var_file}) reads the top-level names, and no {tfvars} exists for that table. If it was meant for {env}, rename it [env.{env}]",
                config = config_file.display(),
                var_file = var_file.display(),
                tfvars = tfvars.display(),
            ))
        })
        .collect()
}

/// The tfvars file of the run's (target) environment and its name, when it has one.
fn target_environment(
    platform: &Platform,
    cwd: &Path,
    request: &Request,
) -> Result<Option<(PathBuf, String)>> {
    let flag = if request.promote.is_some() {
        "--to"
    } else {
        "--var-file"
    };
    // With --skip-tf there is no terraform step, but --var-file still names the
    // environment, when deploy.toml gives names that depend on it.
    let given = if request.skip_tf {
        match platform.config.environment_keys().is_empty() {
            true => &None,
            false => &request.names_var_file,
        }
    } else {
        &request.var_file
    };
    given
        .as_ref()
        .map(|file| environment_named_by(platform, cwd, file, flag))
        .transpose()
}

/// The platform of the environment a run of `request` talks to: see [`platform_in`].
pub fn platform_of_run(platform: &Platform, cwd: &Path, request: &Request) -> Result<Platform> {
    let target = target_environment(platform, cwd, request)?;
    if let Some((var_file, env)) = &target {
        warn_about_env_tables(platform, var_file, env);
    }
    platform_in(platform, target.as_ref().map(|(_, env)| env.as_str()))
}

/// The platform as environment `workspace` sees it: `deploy.toml`'s AWS-side names
/// with its `[env.<workspace>]` table applied and `{env}` replaced by `workspace`
/// ([`Config::for_environment`](crate::model::config::Config::for_environment)). The
/// one place names are expanded: every command reads them from the platform it
/// returns, one per environment (`promote`, `status --compare`: two). With no
/// environment named, names that depend on one are an error saying how to name it.
pub fn platform_in(platform: &Platform, workspace: Option<&str>) -> Result<Platform> {
    let config = match workspace {
        Some(workspace) => platform.config.for_environment(workspace),
        None => {
            let keys = platform.config.environment_keys();
            if !keys.is_empty() {
                return Err(UsageError::new(format!(
                    "{} in {} depend on the environment, and none was named: pass --var-file tfvars/<workspace>.tfvars (its name is the environment)",
                    keys.join(", "),
                    platform.source.path.as_deref().unwrap_or(Path::new(crate::model::config::CONFIG_FILE)).display()
                ))
                .into());
            }
            return Ok(platform.clone());
        }
    };
    Ok(Platform {
        spas: crate::model::platform::resolve_spas(&config),
        config,
        ..platform.clone()
    })
}

/// The tfvars file (as [`resolve_var_file`] finds it) and the environment it names: its
/// terraform workspace (`tfvars/<workspace>.tfvars`).
pub fn environment_of(platform: &Platform, cwd: &Path, given: &Path) -> Result<(PathBuf, String)> {
    environment_named_by(platform, cwd, given, "--var-file")
}

/// [`environment_of`] for a tfvars file given by `flag` (`--to`, `--from`, `--compare`),
/// which its errors name.
pub fn environment_named_by(
    platform: &Platform,
    cwd: &Path,
    given: &Path,
    flag: &str,
) -> Result<(PathBuf, String)> {
    let var_file = tfvars_file_named_by(platform, cwd, given, flag)?;
    let workspace = crate::terraform::workspace_for(&var_file).ok_or_else(|| {
        UsageError::new(format!(
            "{flag} {} is not a .tfvars file; its name selects the terraform workspace (tfvars/<workspace>.tfvars)",
            var_file.display()
        ))
    })?;
    Ok((var_file, workspace))
}

/// The workspace of an optional `--var-file` (read-only commands: `status`, `prune`),
/// warning about `[env.*]` tables that look like its misspelling
/// ([`warn_about_env_tables`]).
pub fn workspace_named(
    platform: &Platform,
    cwd: &Path,
    var_file: Option<&Path>,
) -> Result<Option<String>> {
    let Some(file) = var_file else {
        return Ok(None);
    };
    let (var_file, workspace) = environment_of(platform, cwd, file)?;
    warn_about_env_tables(platform, &var_file, &workspace);
    Ok(Some(workspace))
}

/// Finds the tfvars file. The runbook's paths are relative to the terraform directory
/// (`--var-file tfvars/sandbox.tfvars`); a path relative to where deploy was started is
/// accepted too. Returns the path as terraform (run with `-chdir`) will read it.
pub fn resolve_var_file(platform: &Platform, cwd: &Path, given: &Path) -> Result<PathBuf> {
    tfvars_file_named_by(platform, cwd, given, "--var-file")
}

fn tfvars_file_named_by(
    platform: &Platform,
    cwd: &Path,
    given: &Path,
    flag: &str,
) -> Result<PathBuf> {
    let tf_dir = platform.root.join(platform.terraform_dir());
    if !tf_dir.is_dir() {
        return Err(UsageError::new(format!(
            "the terraform directory {} does not exist ({})",
            tf_dir.display(),
            platform.origin("terraform.dir")
        ))
        .into());
    }
    let candidates: Vec<PathBuf> = if given.is_absolute() {
        vec![given.to_path_buf()]
    } else {
        vec![tf_dir.join(given), cwd.join(given)]
    };
    let Some(found) = candidates.iter().find(|path| path.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(UsageError::new(format!(
            "{flag} {}: no such file (looked for {}); {}",
            given.display(),
            tried.join(" and "),
            tfvars_advice(&tf_dir, platform.terraform_dir())
        ))
        .into());
    };
    if found.is_dir() {
        return Err(UsageError::new(format!(
            "{flag} {} is a directory, not a tfvars file",
            found.display()
        ))
        .into());
    }
    if let Err(err) = std::fs::File::open(found) {
        return Err(
            UsageError::new(format!("{flag} {} cannot be read: {err}", found.display())).into(),
        );
    }
    // Prefer the short form terraform users know when the file is under the terraform dir.
    Ok(match found.strip_prefix(&tf_dir) {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => std::fs::canonicalize(found).unwrap_or_else(|_| found.clone()),
    })
}

/// What to do about a missing tfvars file: the ones that exist in the terraform
/// directory's `tfvars/` (by the path `--var-file` takes), or how to make one.
fn tfvars_advice(tf_dir: &Path, shown: &Path) -> String {
    let existing = tfvars_files(tf_dir);
    if existing.is_empty() {
        format!(
            "{}/tfvars/ has no .tfvars file; per-environment tfvars are gitignored: create tfvars/<workspace>.tfvars there",
            shown.display()
        )
    } else {
        format!("{} has {}", shown.display(), existing.join(", "))
    }
}

/// The tfvars files of the terraform directory's `tfvars/`, sorted, by the path
/// `--var-file` takes (`tfvars/sandbox.tfvars`): the errors' advice, the completions.
pub fn tfvars_files(tf_dir: &Path) -> Vec<String> {
    let mut existing: Vec<String> = std::fs::read_dir(tf_dir.join("tfvars"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            (name.ends_with(".tfvars") && entry.path().is_file()).then(|| format!("tfvars/{name}"))
        })
        .collect();
    existing.sort();
    existing
}

/// The registry overrides in this process's environment (`DEPLOY_REGISTRY`,
/// `DEPLOY_REGISTRY_<ENV>`; empty values count as unset).
pub fn registry_env() -> RegistryEnv {
    RegistryEnv::from_vars(std::env::vars())
}

#[cfg(test)]
pub(crate) mod tests;
