//! The services half of the plan: which services a selection (all, `--changed`,
//! `--services`) builds, and the usage errors of a bad `--services` list.

use anyhow::Result;

use super::{Action, Mode, ServiceStep};
use crate::error::UsageError;
use crate::model::config;
use crate::model::platform::Platform;

/// Which services a run considers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every service (a full deploy).
    #[default]
    All,
    /// Only services whose live image is older than their code (`--changed`).
    Changed,
    /// Exactly these (`--services`), as typed.
    Named(Vec<String>),
}

/// The services of the plan for `selection`, and the mode it makes.
pub fn plan_services(
    platform: &Platform,
    selection: &Selection,
    tag: &str,
) -> Result<(Mode, Vec<ServiceStep>)> {
    let step = |name: &str, action, reason: &str| {
        let repository = config::expand(&platform.config.registry.repository, name);
        ServiceStep {
            name: name.to_owned(),
            action,
            reason: reason.to_owned(),
            cause: None,
            image: format!("{repository}:{tag}"),
            repository,
            restore: None,
        }
    };
    let all = || {
        platform
            .services
            .iter()
            .map(|service| service.name.as_str())
    };
    Ok(match selection {
        Selection::All => (
            Mode::Full,
            all()
                .map(|name| step(name, Action::Deploy, "full deploy"))
                .collect(),
        ),
        Selection::Changed => (
            Mode::Changed,
            all()
                .map(|name| {
                    step(
                        name,
                        Action::Check,
                        "deployed if changed since its live ECS image tag",
                    )
                })
                .collect(),
        ),
        Selection::Named(names) => {
            let chosen = validate_service_names(platform, names)?;
            (
                Mode::Services,
                all()
                    .map(|name| {
                        if chosen.iter().any(|chosen| chosen == name) {
                            step(name, Action::Deploy, "selected with --services")
                        } else {
                            step(name, Action::Skip, "not selected")
                        }
                    })
                    .collect(),
            )
        }
    })
}

/// The one check of a `--services` list, whichever command takes it: every name a
/// service of the platform (one usage error naming every unknown one and the services
/// there are). The names sorted, without repeats.
pub fn validate_service_names(platform: &Platform, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() || names.iter().any(|name| name.is_empty()) {
        return Err(UsageError::new(
            "--services needs service names separated by commas, e.g. --services api,auth",
        )
        .into());
    }
    let known: Vec<&str> = platform.services.iter().map(|s| s.name.as_str()).collect();
    for name in names {
        if let Some(why) = platform.work_tree_only.refusal(name) {
            return Err(UsageError::new(format!("--services: {why}")).into());
        }
        if platform.excluded.contains(name) {
            return Err(UsageError::new(format!(
                "--services: {name} deploys on its own and is never part of a run ({})",
                platform.origin("services.exclude")
            ))
            .into());
        }
    }
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !known.contains(name))
        .collect();
    if !unknown.is_empty() {
        return Err(UsageError::new(format!(
            "--services: unknown service{} {}; the services are: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            known.join(", ")
        ))
        .into());
    }
    let mut chosen = names.to_vec();
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}
