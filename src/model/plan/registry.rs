//! Which registry an environment's images live in: the ECR repository's own host
//! unless something says otherwise. Real ECR needs no setting at all; a local registry
//! (the test bed) or a mirror is named per environment or for every environment.

use std::collections::BTreeMap;

use super::Registry;
use crate::model::platform::Platform;

/// The registry overrides in deploy's environment: `DEPLOY_REGISTRY` (every
/// environment) and `DEPLOY_REGISTRY_<ENV>` (one environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryEnv {
    /// `DEPLOY_REGISTRY`.
    pub global: Option<String>,
    /// `DEPLOY_REGISTRY_<ENV>`, keyed by the variable's full name.
    pub per_environment: BTreeMap<String, String>,
}

/// The prefix of the per-environment variable.
const PER_ENVIRONMENT_PREFIX: &str = "DEPLOY_REGISTRY_";

impl RegistryEnv {
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut env = Self::default();
        for (name, value) in vars {
            if value.is_empty() {
                continue;
            }
            if name == "DEPLOY_REGISTRY" {
                env.global = Some(value);
            } else if name.starts_with(PER_ENVIRONMENT_PREFIX) {
                env.per_environment.insert(name, value);
            }
        }
        env
    }
}

/// `DEPLOY_REGISTRY_<ENV>` for a workspace: upper case, anything but letters and digits
/// as `_` (`prod-eu` → `DEPLOY_REGISTRY_PROD_EU`).
pub fn variable_for(workspace: &str) -> String {
    let suffix: String = workspace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{PER_ENVIRONMENT_PREFIX}{suffix}")
}

/// The registry of `workspace` (`None`: no environment, `--skip-tf`). The most specific
/// setting wins, the environment's variables over `deploy.toml`:
/// `DEPLOY_REGISTRY_<ENV>`, `DEPLOY_REGISTRY`, `registry.hosts.<env>`, `registry.host`,
/// then the ECR repository's own host.
pub fn registry_of(platform: &Platform, workspace: Option<&str>, env: &RegistryEnv) -> Registry {
    let config = &platform.config.registry;
    if let Some(workspace) = workspace {
        let name = variable_for(workspace);
        if let Some(host) = env.per_environment.get(&name) {
            return Registry {
                host: Some(host.clone()),
                source: name,
            };
        }
    }
    if let Some(host) = &env.global {
        return Registry {
            host: Some(host.clone()),
            source: "DEPLOY_REGISTRY".into(),
        };
    }
    if let Some((workspace, host)) =
        workspace.and_then(|ws| config.hosts.get(ws).map(|host| (ws, host)))
    {
        return Registry {
            host: Some(host.clone()),
            source: platform.origin(&format!("registry.hosts.{workspace}")),
        };
    }
    match &config.host {
        Some(host) => Registry {
            host: Some(host.clone()),
            source: platform.origin("registry.host"),
        },
        None => Registry {
            host: None,
            source: "the ECR repository URI".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn env(vars: &[(&str, &str)]) -> RegistryEnv {
        RegistryEnv::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    fn platform(hosts: &[(&str, &str)], host: Option<&str>) -> Platform {
        let mut platform = Platform {
            root: PathBuf::from("/platform"),
            config: Default::default(),
            source: Default::default(),
            services: Vec::new(),
            excluded: Vec::new(),
            spas: Vec::new(),
            work_tree_only: Default::default(),
        };
        platform.config.registry.hosts = hosts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        platform.config.registry.host = host.map(str::to_owned);
        platform
    }

    fn host(registry: Registry) -> (Option<String>, String) {
        (registry.host, registry.source)
    }

    #[test]
    fn the_variable_is_the_workspace_in_upper_case() {
        assert_eq!(variable_for("prod"), "DEPLOY_REGISTRY_PROD");
        assert_eq!(variable_for("prod-eu.2"), "DEPLOY_REGISTRY_PROD_EU_2");
    }

    #[test]
    fn real_ecr_needs_nothing() {
        let (host, source) = host(registry_of(&platform(&[], None), Some("prod"), &env(&[])));
        assert_eq!(host, None);
        assert_eq!(source, "the ECR repository URI");
    }

    #[test]
    fn the_most_specific_setting_wins_and_the_environment_over_the_file() {
        let both = platform(&[("prod", "file-prod:5001")], Some("file-all:5000"));
        let vars = env(&[
            ("DEPLOY_REGISTRY", "env-all:5000"),
            ("DEPLOY_REGISTRY_PROD", "env-prod:5001"),
            ("DEPLOY_REGISTRY_SANDBOX", ""),
        ]);
        assert_eq!(
            host(registry_of(&both, Some("prod"), &vars)),
            (Some("env-prod:5001".into()), "DEPLOY_REGISTRY_PROD".into())
        );
        // An empty variable is unset: sandbox falls back to DEPLOY_REGISTRY.
        assert_eq!(
            host(registry_of(&both, Some("sandbox"), &vars)),
            (Some("env-all:5000".into()), "DEPLOY_REGISTRY".into())
        );
        let file_only = env(&[]);
        assert_eq!(
            registry_of(&both, Some("prod"), &file_only).host.as_deref(),
            Some("file-prod:5001")
        );
        assert!(registry_of(&both, Some("prod"), &file_only)
            .source
            .contains("registry.hosts.prod"));
        assert_eq!(
            registry_of(&both, Some("sandbox"), &file_only)
                .host
                .as_deref(),
            Some("file-all:5000")
        );
        // No environment (--skip-tf): only the settings for every environment count.
        assert_eq!(
            registry_of(&both, None, &vars).host.as_deref(),
            Some("env-all:5000")
        );
    }
}
