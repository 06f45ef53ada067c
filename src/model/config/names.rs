//! The AWS-side names `deploy.toml` can give (the ECS cluster, service and container,
//! the ECR repository and registry host, the lock and history buckets, the health base
//! URL, each SPA's bucket and CloudFront distribution), per environment: an `{env}`
//! placeholder in any of them, and `[env.<workspace>]` tables that set them for one
//! environment. [`Config::for_environment`] gives the config one environment sees;
//! `crate::planning::platform_in` is the one caller that applies it to a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Config, SERVICE_PLACEHOLDER};

/// Placeholder replaced by the environment's name (its terraform workspace, the name
/// of its tfvars file) in every AWS-side name.
pub const ENV_PLACEHOLDER: &str = "{env}";

/// One environment's names: each set one replaces the top-level key of the same name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    pub ecs: EnvEcs,
    pub registry: EnvRegistry,
    pub lock: EnvBucket,
    pub history: EnvBucket,
    pub health: EnvHealth,
    /// By SPA name; each must be an SPA of `[spas]`.
    pub spas: BTreeMap<String, EnvSpa>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvEcs {
    #[serde(deserialize_with = "env_name_opt")]
    pub cluster: Option<String>,
    #[serde(deserialize_with = "service_name_opt")]
    pub service: Option<String>,
    #[serde(deserialize_with = "service_name_opt")]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvRegistry {
    #[serde(deserialize_with = "service_name_opt")]
    pub repository: Option<String>,
    #[serde(deserialize_with = "env_name_opt")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvBucket {
    #[serde(deserialize_with = "env_name_opt")]
    pub bucket: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvHealth {
    #[serde(deserialize_with = "env_name_opt")]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSpa {
    #[serde(deserialize_with = "env_name_opt")]
    pub bucket: Option<String>,
    #[serde(deserialize_with = "env_name_opt")]
    pub distribution_id: Option<String>,
}

/// `value` with an unknown `{...}` placeholder is an error naming it and the ones
/// `allowed` there (serde reports it at the value's line and column).
fn check_placeholders(value: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = value;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let placeholder = &rest[start..=start + len];
        if !allowed.contains(&placeholder) {
            return Err(format!(
                "unknown placeholder {placeholder} in {value:?}: the placeholders here are {}",
                allowed.join(" and ")
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

fn checked<'de, D: Deserializer<'de>>(
    deserializer: D,
    allowed: &[&str],
) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    check_placeholders(&value, allowed).map_err(serde::de::Error::custom)?;
    Ok(value)
}

/// Within one edit per four characters, at least one: `porduction` for `production`,
/// `prd` for `prod`; not `prod` for `dev`. Case is an edit too (`Prod`).
fn looks_like(a: &str, b: &str) -> bool {
    let longest = a.chars().count().max(b.chars().count());
    a != b && edit_distance(a, b) <= (longest / 4).max(1)
}

/// The edits (insert, delete, replace, swap two neighbours) that make `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance of a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let replace = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + replace);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A name of the environment: `{env}` may appear in it.
pub(super) fn env_name_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, &[ENV_PLACEHOLDER]).map(Some)
}

/// A per-service name: `{service}` and `{env}` may appear in it.
pub(super) fn service_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked(d, &[SERVICE_PLACEHOLDER, ENV_PLACEHOLDER])
}

fn service_name_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    service_name(d).map(Some)
}

impl Config {
    /// The config environment `env` sees: its `[env.<env>]` table over the top-level
    /// names, then `{env}` replaced by `env` in every name. Applied to a config that is
    /// already one environment's, it starts again from the config as loaded.
    pub fn for_environment(&self, env: &str) -> Config {
        let loaded = self.loaded.as_deref().unwrap_or(self);
        let mut config = loaded.clone();
        if let Some(table) = loaded.env.get(env) {
            config.apply(table);
        }
        for (_, name) in config.names_mut() {
            *name = name.replace(ENV_PLACEHOLDER, env);
        }
        config.environment = Some(env.to_owned());
        config.loaded = Some(Box::new(loaded.clone()));
        config
    }

    /// The `[env.*]` tables that look like a misspelling of `env` (an edit or two, a
    /// swapped pair of letters) when `env` has no table of its own: a run for `env` then
    /// reads the top-level names, and such a table may have been meant for it.
    pub fn env_tables_like(&self, env: &str) -> Vec<&str> {
        let loaded = self.loaded.as_deref().unwrap_or(self);
        if loaded.env.contains_key(env) {
            return Vec::new();
        }
        loaded
            .env
            .keys()
            .filter(|name| looks_like(name, env))
            .map(String::as_str)
            .collect()
    }

    /// The environment this config was made for by [`Config::for_environment`].
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// The keys whose value depends on the environment (`{env}` in them, or an
    /// `[env.*]` table): empty when the config reads the same for every environment or
    /// is already one environment's.
    pub fn environment_keys(&self) -> Vec<String> {
        if self.loaded.is_some() {
            return Vec::new();
        }
        let mut copy = self.clone();
        let mut keys: Vec<String> = copy
            .names_mut()
            .into_iter()
            .filter(|(_, name)| name.contains(ENV_PLACEHOLDER))
            .map(|(key, _)| key)
            .collect();
        keys.extend(self.env.keys().map(|env| format!("[env.{env}]")));
        keys
    }

    fn apply(&mut self, table: &EnvConfig) {
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                target.clone_from(value);
            }
        };
        let set_opt = |target: &mut Option<String>, value: &Option<String>| {
            if value.is_some() {
                target.clone_from(value);
            }
        };
        set_opt(&mut self.ecs.cluster, &table.ecs.cluster);
        set(&mut self.ecs.service, &table.ecs.service);
        set(&mut self.ecs.container, &table.ecs.container);
        set(&mut self.registry.repository, &table.registry.repository);
        set_opt(&mut self.registry.host, &table.registry.host);
        set_opt(&mut self.lock.bucket, &table.lock.bucket);
        set_opt(&mut self.history.bucket, &table.history.bucket);
        set_opt(&mut self.health.base_url, &table.health.base_url);
        for (name, spa) in &table.spas {
            if let Some(target) = self.spas.0.get_mut(name) {
                set_opt(&mut target.bucket, &spa.bucket);
                set_opt(&mut target.distribution_id, &spa.distribution_id);
            }
        }
    }

    /// Every AWS-side name that is set, by its dotted key.
    fn names_mut(&mut self) -> Vec<(String, &mut String)> {
        let mut names: Vec<(String, &mut String)> = Vec::new();
        if let Some(cluster) = &mut self.ecs.cluster {
            names.push(("ecs.cluster".into(), cluster));
        }
        names.push(("ecs.service".into(), &mut self.ecs.service));
        names.push(("ecs.container".into(), &mut self.ecs.container));
        names.push(("registry.repository".into(), &mut self.registry.repository));
        for (key, value) in [
            ("registry.host", &mut self.registry.host),
            ("lock.bucket", &mut self.lock.bucket),
            ("history.bucket", &mut self.history.bucket),
            ("health.base_url", &mut self.health.base_url),
        ] {
            if let Some(value) = value {
                names.push((key.into(), value));
            }
        }
        for (spa, config) in &mut self.spas.0 {
            for (field, value) in [
                ("bucket", &mut config.bucket),
                ("distribution_id", &mut config.distribution_id),
            ] {
                if let Some(value) = value {
                    names.push((format!("spas.{spa}.{field}"), value));
                }
            }
        }
        names
    }

    /// The `[env.*]` tables name configured SPAs, and their per-service names hold
    /// `{service}`.
    pub(super) fn validate_environments(&self) -> Result<(), String> {
        for (env, table) in &self.env {
            if env.trim().is_empty() {
                return Err("[env.\"\"]: an environment needs a name (its workspace)".into());
            }
            for name in table.spas.keys() {
                if !self.spas.0.contains_key(name) {
                    return Err(format!(
                        "env.{env}.spas.{name}: there is no SPA {name:?} in [spas] (the SPAs are {})",
                        self.spas.0.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            for (key, value) in [
                ("ecs.service", &table.ecs.service),
                ("ecs.container", &table.ecs.container),
                ("registry.repository", &table.registry.repository),
            ] {
                if let Some(value) = value {
                    super::require_placeholder(&format!("env.{env}.{key}"), value)?;
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// The error when neither `ecs.cluster` nor the terraform output names the cluster:
    /// the advice holds for every environment (`{env}`, or a table for this one).
    pub fn missing_cluster(&self) -> String {
        let output = &self.terraform.outputs.ecs_cluster;
        let (of, table) = match &self.environment {
            Some(env) => (format!(" of {env}"), env.as_str()),
            None => (String::new(), "<workspace>"),
        };
        format!(
            "cannot tell the ECS cluster{of}: terraform has no output {output:?} (an empty state has none: apply the environment's terraform first), \
             or name the cluster of every environment in deploy.toml: ecs.cluster = \"<name>-{ENV_PLACEHOLDER}\" ({ENV_PLACEHOLDER} is the environment, the tfvars file's name) \
             or ecs.cluster in [env.{table}]; or set terraform.outputs.ecs_cluster; nothing was touched"
        )
    }
}

/// The advice of the errors that ask for a bucket (`key`: `lock.bucket`, `spas.web.bucket`
/// …): set in deploy.toml, for every environment at once with [`ENV_PLACEHOLDER`].
pub fn set_in_config(key: &str) -> String {
    format!(
        "set {key} in deploy.toml (for every environment at once with {ENV_PLACEHOLDER}: \"<name>-{ENV_PLACEHOLDER}\")"
    )
}

#[cfg(test)]
mod tests;
