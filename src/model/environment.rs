//! The environment a run talks to, typed once: `deploy.toml` wins, the terraform
//! outputs of the environment's workspace fill the rest. Deploy, `status`, `prune` and
//! `unlock` read their cluster, buckets and URLs here instead of looking outputs up by
//! name.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::model::config::Config;

/// Terraform outputs by name (`terraform output -json`, values only).
pub type Outputs = Map<String, Value>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The terraform workspace (the tfvars file's name); `None`: the selected one.
    pub workspace: Option<String>,
    /// The ECS cluster, when known: see [`Environment::cluster`].
    pub cluster: Option<String>,
    /// Where health checks go, when known.
    pub api_base_url: Option<String>,
    /// The environment's private bucket: the deploy lock and the SPA upload manifests.
    /// `lock.bucket`, else the output `deploy_lock_bucket`, else the S3 backend's bucket.
    pub lock_bucket: Option<String>,
    /// Every configured SPA by name, with what is known of where it goes.
    pub spas: BTreeMap<String, SpaPlace>,
    /// The message when the cluster is not known ([`Config::missing_cluster`]).
    cluster_missing: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaPlace {
    pub bucket: Option<String>,
    pub distribution_id: Option<String>,
}

impl Environment {
    /// The environment from `config`, then `outputs`, then (for the private bucket
    /// only) `state_bucket`, the bucket of an S3 terraform backend. Pure: the caller
    /// reads the outputs and the backend. An output that is there but of the wrong
    /// type is an error naming it, not a silent fallback.
    pub fn resolve(
        config: &Config,
        workspace: Option<&str>,
        outputs: &Outputs,
        state_bucket: Option<String>,
    ) -> Result<Self> {
        let names = &config.terraform.outputs;
        let mut spas = BTreeMap::new();
        for (name, spa) in &config.spas.0 {
            let bucket = match &spa.bucket {
                Some(bucket) => Some(bucket.clone()),
                None => map_entry(outputs, &names.spa_buckets, name)?,
            };
            let distribution_id = match &spa.distribution_id {
                Some(id) => Some(id.clone()),
                None => map_entry(outputs, &names.spa_distribution_ids, name)?,
            };
            spas.insert(
                name.clone(),
                SpaPlace {
                    bucket,
                    distribution_id,
                },
            );
        }
        let lock_bucket = match &config.lock.bucket {
            Some(bucket) => Some(bucket.clone()),
            None => string(outputs, &names.deploy_lock_bucket)?,
        }
        // An empty name (an output left blank) is no bucket.
        .filter(|bucket| !bucket.is_empty())
        .or(state_bucket);
        Ok(Self {
            workspace: workspace.map(str::to_owned),
            cluster: match &config.ecs.cluster {
                Some(cluster) => Some(cluster.clone()),
                None => string(outputs, &names.ecs_cluster)?,
            },
            api_base_url: match &config.health.base_url {
                Some(url) => Some(url.clone()),
                None => string(outputs, &names.api_base_url)?,
            },
            lock_bucket,
            spas,
            cluster_missing: config.missing_cluster(),
        })
    }

    /// The ECS cluster, required: the commands that read or roll services need it.
    pub fn cluster(&self) -> Result<&str> {
        match &self.cluster {
            Some(cluster) => Ok(cluster),
            None => Err(unusable(self.cluster_missing.clone())),
        }
    }

    /// Where SPA `name` goes (nothing known for an SPA that is not configured).
    pub fn spa(&self, name: &str) -> SpaPlace {
        self.spas.get(name).cloned().unwrap_or_default()
    }
}

/// A setting the environment lacks (neither deploy.toml nor the terraform outputs give
/// it) or an output of the wrong shape: fixed in config, not by running again, so a
/// usage error (exit 2, see `error.rs`).
fn unusable(message: String) -> anyhow::Error {
    crate::error::UsageError::new(message).into()
}

/// Output `name` as a string; absent or null is `None`.
fn string(outputs: &Outputs, name: &str) -> Result<Option<String>> {
    match outputs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(unusable(format!(
            "the terraform output {name:?} is {}, not a string: fix the output in the terraform root, or set the value in deploy.toml; nothing was touched",
            kind(other)
        ))),
    }
}

/// Entry `key` of the map output `name` (SPA name → bucket); absent or null is `None`.
fn map_entry(outputs: &Outputs, name: &str, key: &str) -> Result<Option<String>> {
    match outputs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(unusable(format!(
                "the terraform output {name:?} maps {key:?} to {}, not a string: fix the output in the terraform root, or set spas.{key} in deploy.toml; nothing was touched",
                kind(other)
            ))),
        },
        Some(other) => Err(unusable(format!(
            "the terraform output {name:?} is {}, not a map of SPA name to value: fix the output in the terraform root, or set spas.{key} in deploy.toml; nothing was touched",
            kind(other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outputs(value: Value) -> Outputs {
        value.as_object().unwrap().clone()
    }

    fn full_outputs() -> Outputs {
        outputs(json!({
            "ecs_cluster_name": "platform-sandbox",
            "api_base_url": "https://api.sandbox.example.com",
            "deploy_lock_bucket": "platform-ops",
            "spa_buckets": {"admin-ui": "admin-bucket", "simulator": "sim-bucket"},
            "spa_distribution_ids": {"admin-ui": "E1ADMIN"},
        }))
    }

    #[test]
    fn outputs_fill_what_the_config_leaves_unset() {
        let env = Environment::resolve(&Config::default(), Some("sandbox"), &full_outputs(), None)
            .unwrap();
        assert_eq!(env.workspace.as_deref(), Some("sandbox"));
        assert_eq!(env.cluster().unwrap(), "platform-sandbox");
        assert_eq!(
            env.api_base_url.as_deref(),
            Some("https://api.sandbox.example.com")
        );
        assert_eq!(env.lock_bucket.as_deref(), Some("platform-ops"));
        assert_eq!(
            env.spa("admin-ui"),
            SpaPlace {
                bucket: Some("admin-bucket".into()),
                distribution_id: Some("E1ADMIN".into())
            }
        );
        assert_eq!(
            env.spa("simulator"),
            SpaPlace {
                bucket: Some("sim-bucket".into()),
                distribution_id: None
            }
        );
    }

    #[test]
    fn the_config_wins_over_outputs() {
        let mut config = Config::default();
        config.ecs.cluster = Some("from-config".into());
        config.health.base_url = Some("https://config.example.com".into());
        config.lock.bucket = Some("config-ops".into());
        let admin = config.spas.0.get_mut("admin-ui").unwrap();
        admin.bucket = Some("config-admin".into());
        admin.distribution_id = Some("ECONFIG".into());
        // Even an output of the wrong type is not read when the config names the value.
        let mut outputs = full_outputs();
        outputs.insert("ecs_cluster_name".into(), json!(42));
        let env = Environment::resolve(&config, None, &outputs, Some("backend".into())).unwrap();
        assert_eq!(env.cluster().unwrap(), "from-config");
        assert_eq!(
            env.api_base_url.as_deref(),
            Some("https://config.example.com")
        );
        assert_eq!(env.lock_bucket.as_deref(), Some("config-ops"));
        assert_eq!(env.spa("admin-ui").bucket.as_deref(), Some("config-admin"));
        assert_eq!(
            env.spa("admin-ui").distribution_id.as_deref(),
            Some("ECONFIG")
        );
        assert_eq!(env.spa("simulator").bucket.as_deref(), Some("sim-bucket"));
    }

    #[test]
    fn missing_outputs_leave_values_unknown_and_the_cluster_an_error() {
        let config = Config::default().for_environment("prod");
        let env = Environment::resolve(&config, Some("prod"), &Outputs::new(), None).unwrap();
        assert_eq!(env.cluster, None);
        let err = env.cluster().unwrap_err().to_string();
        // The advice names a form that holds for every environment, and this one's table.
        for part in [
            "cannot tell the ECS cluster of prod: terraform has no output \"ecs_cluster_name\"",
            "ecs.cluster = \"<name>-{env}\"",
            "[env.prod]",
            "terraform.outputs.ecs_cluster",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        assert!(err.ends_with("nothing was touched"), "{err}");
        assert_eq!(env.api_base_url, None);
        assert_eq!(env.lock_bucket, None);
        assert_eq!(env.spa("admin-ui"), SpaPlace::default());
        assert_eq!(env.spa("not-configured"), SpaPlace::default());
    }

    #[test]
    fn the_private_bucket_falls_back_to_the_backend_past_empty_and_missing_outputs() {
        for outputs_value in [
            json!({}),
            json!({"deploy_lock_bucket": ""}),
            json!({"deploy_lock_bucket": null}),
        ] {
            let env = Environment::resolve(
                &Config::default(),
                None,
                &outputs(outputs_value.clone()),
                Some("state-bucket".into()),
            )
            .unwrap();
            assert_eq!(
                env.lock_bucket.as_deref(),
                Some("state-bucket"),
                "{outputs_value}"
            );
        }
        let env = Environment::resolve(
            &Config::default(),
            None,
            &full_outputs(),
            Some("state-bucket".into()),
        )
        .unwrap();
        assert_eq!(
            env.lock_bucket.as_deref(),
            Some("platform-ops"),
            "the output wins"
        );
    }

    #[test]
    fn outputs_of_the_wrong_type_are_errors_naming_them() {
        let cases = [
            (
                json!({"ecs_cluster_name": 3}),
                "\"ecs_cluster_name\" is a number, not a string",
            ),
            (
                json!({"api_base_url": ["a"]}),
                "\"api_base_url\" is a list, not a string",
            ),
            (
                json!({"deploy_lock_bucket": true}),
                "\"deploy_lock_bucket\" is a bool, not a string",
            ),
            (
                json!({"spa_buckets": "admin"}),
                "\"spa_buckets\" is a string, not a map of SPA name",
            ),
            (
                json!({"spa_distribution_ids": {"simulator": {"id": "E1"}}}),
                "\"spa_distribution_ids\" maps \"simulator\" to a map, not a string",
            ),
        ];
        for (value, expected) in cases {
            let err = Environment::resolve(&Config::default(), None, &outputs(value.clone()), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{value}: {err}");
            assert!(err.ends_with("nothing was touched"), "{err}");
        }
    }
}
