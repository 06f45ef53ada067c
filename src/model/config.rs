//! `deploy.toml`: the optional config at the repository root.
//!
//! With no file, every default reproduces the layout the runbook hard-codes (SPEC §1),
//! so the platform's own repository needs no config at all. Unknown keys and bad values
//! are errors naming the key and the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use crate::error::ConfigError;

mod alarms;
mod changes;
mod docker_cache;
mod minimum_version;
mod names;
mod notify;
mod spa_upload;
mod terraform;
pub use alarms::AlarmsConfig;
pub use changes::{ChangesConfig, ChangesMode};
pub use docker_cache::{cache_tag, is_cache_tag, DockerCache};
pub use names::{set_in_config, EnvConfig, ENV_PLACEHOLDER};
pub use notify::NotifyConfig;
pub use spa_upload::SpaUploadConfig;
pub use terraform::{TerraformConfig, TerraformOutputs};

/// The file name looked up at the repository root.
pub const CONFIG_FILE: &str = "deploy.toml";

/// Placeholder replaced by a service's name in name and address templates.
pub const SERVICE_PLACEHOLDER: &str = "{service}";

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The oldest deploy that may read this file ("X.Y.Z"); see `minimum_version.rs`.
    pub minimum_version: Option<String>,
    pub services: ServicesConfig,
    pub shared: SharedConfig,
    /// How `--changed` decides what changed.
    pub changes: ChangesConfig,
    pub docker: DockerConfig,
    pub registry: RegistryConfig,
    pub terraform: TerraformConfig,
    pub ecs: EcsConfig,
    /// SPAs by name. When the table is present it replaces the default pair.
    pub spas: SpasConfig,
    pub health: HealthConfig,
    pub lock: LockConfig,
    /// How SPA output is uploaded and invalidated.
    pub spa_upload: SpaUploadConfig,
    /// The record of every run (`deploy history`, `deploy undo`).
    pub history: HistoryConfig,
    /// What a failed verify does.
    pub verify: VerifyConfig,
    /// Webhook notifications at the start and end of a run.
    pub notify: NotifyConfig,
    /// Per environment (terraform workspace): its AWS-side names (`names.rs`).
    pub env: BTreeMap<String, EnvConfig>,
    /// Set by [`Config::for_environment`]: the environment, and the config as loaded.
    #[serde(skip)]
    environment: Option<String>,
    #[serde(skip)]
    loaded: Option<Box<Config>>,
    /// CloudWatch alarms the verify step watches per service (`alarms.rs`).
    pub alarms: AlarmsConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// Directory whose subdirectories (each with a package.json) are the services.
    pub dir: PathBuf,
    /// Services that deploy on their own and are never part of a run.
    pub exclude: Vec<String>,
    /// An explicit list instead of discovery; each must exist under `dir`.
    pub names: Option<Vec<String>>,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            dir: "services".into(),
            // Runbook: "The slack-agent deploys independently (its own image tag)."
            exclude: vec!["slack-agent".into()],
            names: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    /// Shared packages: a change in any of them fans out to every service.
    pub packages: Vec<PathBuf>,
    /// Build inputs: a change in any of them fans out to every service.
    pub build_inputs: Vec<PathBuf>,
}

impl Default for SharedConfig {
    fn default() -> Self {
        // The runbook's --changed section lists exactly these.
        Self {
            packages: [
                "packages/common",
                "packages/auth-client",
                "packages/events",
                "packages/tsconfig",
                "packages/eslint-config",
            ]
            .map(PathBuf::from)
            .to_vec(),
            build_inputs: [
                "pnpm-lock.yaml",
                "pnpm-workspace.yaml",
                "package.json",
                "infra/docker/service.Dockerfile",
                "infra/docker/.npmrc",
            ]
            .map(PathBuf::from)
            .to_vec(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// The service Dockerfile, relative to the repository root.
    pub dockerfile: PathBuf,
    /// Build context, relative to the repository root.
    pub context: PathBuf,
    /// Build argument that selects the service.
    pub service_arg: String,
    /// Extra build arguments for every image.
    pub build_args: BTreeMap<String, String>,
    /// How many images are in flight (building or pushing) at the same time. 4 even on
    /// 2 cores: much of a build is the daemon starting containers and exporting layers,
    /// not CPU (measured: 9 fixture images in 6.9 s at 4, 9.3 s at 2, 7.0 s at 6).
    pub concurrency: usize,
    /// When the first image's build (which runs alone) used a context of at least this
    /// many MiB (what its Dockerfile copies), the other images build one at a time, each
    /// reusing the daemon's copy, and push while the next one builds. Docker 20.10 lends
    /// that copy only to a build that overlaps no other, so builds side by side pull what
    /// they copy again and keep a copy each; below this, they build side by side
    /// (`concurrency`). BuildKit only. Measured (bench/README.md): 100 MiB that every
    /// image copies, sent once instead of four times in about the same wall time; a few
    /// kB copied, 9.7 s side by side against 17.7 s one at a time.
    pub shared_context_mib: f64,
    /// Preflight warns when the Docker host has less free disk than this, in GB
    /// (runbook: "a full deploy uses roughly 6-8GB").
    pub min_free_gb: f64,
    /// The registry build cache (`docker_cache.rs`): `registry` or `off`.
    pub cache: DockerCache,
    /// The dependency stage pushed as a cache image; unset: the first stage another
    /// builds `FROM`; `""`: none.
    pub cache_stage: Option<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            dockerfile: "infra/docker/service.Dockerfile".into(),
            context: ".".into(),
            service_arg: "SERVICE".into(),
            // Runbook: the build "skips the Chromium download".
            build_args: BTreeMap::from([
                ("PUPPETEER_SKIP_DOWNLOAD".into(), "true".into()),
                ("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD".into(), "1".into()),
            ]),
            concurrency: 4,
            shared_context_mib: 16.0,
            min_free_gb: 8.0,
            cache: DockerCache::Registry,
            cache_stage: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// ECR repository name per service.
    #[serde(deserialize_with = "names::service_name")]
    pub repository: String,
    /// Push to this registry host instead of the ECR repository's own host (for a
    /// local registry; the `DEPLOY_REGISTRY` environment variable wins over it).
    #[serde(deserialize_with = "names::env_name_opt")]
    pub host: Option<String>,
    /// Per environment (terraform workspace): its registry host, instead of `host`
    /// (`DEPLOY_REGISTRY_<ENV>` and `DEPLOY_REGISTRY` win over it).
    pub hosts: std::collections::BTreeMap<String, String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            repository: SERVICE_PLACEHOLDER.into(),
            host: None,
            hosts: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcsConfig {
    /// Cluster name; when unset it comes from the terraform output.
    #[serde(deserialize_with = "names::env_name_opt")]
    pub cluster: Option<String>,
    /// ECS service name per service.
    #[serde(deserialize_with = "names::service_name")]
    pub service: String,
    /// Name of the service's own container in its task definition (sidecars are ignored).
    #[serde(deserialize_with = "names::service_name")]
    pub container: String,
    /// How long to wait for each rolled service to settle, in seconds.
    pub wait_timeout_secs: u64,
    /// How often to ask ECS while waiting, in seconds.
    pub poll_interval_secs: u64,
}

impl Default for EcsConfig {
    fn default() -> Self {
        Self {
            cluster: None,
            service: SERVICE_PLACEHOLDER.into(),
            container: SERVICE_PLACEHOLDER.into(),
            wait_timeout_secs: 600,
            poll_interval_secs: 5,
        }
    }
}

/// One deploy at a time per environment: an S3 object in a private bucket.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockConfig {
    pub enabled: bool,
    /// The bucket; when unset, the terraform output `terraform.outputs.deploy_lock_bucket`.
    #[serde(deserialize_with = "names::env_name_opt")]
    pub bucket: Option<String>,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bucket: None,
        }
    }
}

/// The record per run, kept in the environment's private bucket.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub enabled: bool,
    /// The bucket; when unset, the environment's private bucket (the lock's).
    #[serde(deserialize_with = "names::env_name_opt")]
    pub bucket: Option<String>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bucket: None,
        }
    }
}

/// What happens when the rolled services do not settle or are not healthy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Restore the services this run rolled to the tags they ran before it
    /// (`--rollback-on-failure` turns it on for one run).
    pub rollback_on_failure: bool,
}

/// HTTP checks after a roll (the runbook's "GET https://<host>/<prefix>/health returns
/// 200"). Only services with a prefix are checked, and only when a base URL is known.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// e.g. `https://api.sandbox.example.com`; when unset, the terraform output
    /// `terraform.outputs.api_base_url`, if there is one.
    #[serde(deserialize_with = "names::env_name_opt")]
    pub base_url: Option<String>,
    /// Route prefix per service, e.g. `clinical-api = "/v1/clinical-api"`.
    pub prefixes: BTreeMap<String, String>,
    /// Path under the prefix.
    pub path: String,
    /// Also require `<prefix>/docs` to answer 200 (environments with expose_api_docs).
    pub docs: bool,
    /// How long each URL may take to answer 200, in seconds.
    pub timeout_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            prefixes: BTreeMap::new(),
            path: "health".into(),
            docs: false,
            timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct SpasConfig(pub BTreeMap<String, SpaConfig>);

impl Default for SpasConfig {
    fn default() -> Self {
        Self(
            ["admin-ui", "simulator"]
                .into_iter()
                .map(|name| (name.to_owned(), SpaConfig::default()))
                .collect(),
        )
    }
}

/// One SPA. Every field defaults from the SPA's name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpaConfig {
    /// Source directory (default `apps/<name>`).
    pub dir: Option<PathBuf>,
    /// Build command, run through `sh -c` in the SPA's directory (default
    /// `pnpm --filter <name> build`, which works from anywhere in the workspace).
    pub build: Option<String>,
    /// Build output, relative to `dir` (default `dist`).
    pub output: Option<PathBuf>,
    /// Bucket; when unset it comes from the terraform output.
    #[serde(deserialize_with = "names::env_name_opt")]
    pub bucket: Option<String>,
    /// CloudFront distribution id; when unset it comes from the terraform output.
    #[serde(deserialize_with = "names::env_name_opt")]
    pub distribution_id: Option<String>,
}

/// Where config values came from, so that errors can name the key and the file.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The `deploy.toml` that was loaded, if any.
    pub path: Option<PathBuf>,
    /// Dotted keys set in that file (`docker.concurrency`, `spas.admin-ui.dir`, ...).
    keys: BTreeSet<String>,
}

impl ConfigSource {
    /// `"<key> in <file>"` when the file sets it, else `"<key>, default"`.
    pub fn describe(&self, key: &str) -> String {
        match &self.path {
            Some(path) if self.keys.contains(key) => format!("{key} in {}", path.display()),
            _ => format!("{key}, default"),
        }
    }
}

fn collect_keys(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            collect_keys(&dotted, inner, keys);
        }
        keys.insert(dotted);
    }
}

impl Config {
    /// The config in `text`, read from `path`, and where its keys came from; the
    /// error names the file.
    pub fn from_file(path: PathBuf, text: &str) -> Result<(Self, ConfigSource), ConfigError> {
        let config = Self::parse(text).map_err(|err| ConfigError {
            path: path.clone(),
            message: err,
        })?;
        let mut keys = BTreeSet::new();
        if let Ok(table) = text.parse::<toml::Table>() {
            collect_keys("", &table, &mut keys);
        }
        Ok((
            config,
            ConfigSource {
                path: Some(path),
                keys,
            },
        ))
    }

    /// Parses and validates config text. The error is a message without the file name.
    pub fn parse(text: &str) -> Result<Self, String> {
        minimum_version::check(text)?;
        let config: Self = toml::from_str(text).map_err(|err| err.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.docker.min_free_gb >= 0.0 && self.docker.min_free_gb.is_finite()) {
            return Err("docker.min_free_gb must be a number of GB, 0 or more".into());
        }
        if self.docker.concurrency == 0 {
            return Err("docker.concurrency must be at least 1".into());
        }
        if !(self.docker.shared_context_mib >= 0.0 && self.docker.shared_context_mib.is_finite()) {
            return Err("docker.shared_context_mib must be a number of MiB, 0 or more".into());
        }
        docker_cache::check_stage(self.docker.cache_stage.as_deref())?;
        if self.ecs.wait_timeout_secs == 0 {
            return Err("ecs.wait_timeout_secs must be at least 1".into());
        }
        if self.ecs.poll_interval_secs == 0 {
            return Err("ecs.poll_interval_secs must be at least 1".into());
        }
        for (key, value) in [
            ("registry.repository", &self.registry.repository),
            ("ecs.service", &self.ecs.service),
            ("ecs.container", &self.ecs.container),
        ] {
            require_placeholder(key, value)?;
        }
        if self.terraform.targets.is_empty() {
            return Err("terraform.targets must name at least one resource address".into());
        }
        for target in &self.terraform.targets {
            require_placeholder("terraform.targets", target)?;
        }
        for (key, value) in [
            ("terraform.image_tag_var", &self.terraform.image_tag_var),
            ("terraform.image_tags_var", &self.terraform.image_tags_var),
            ("docker.service_arg", &self.docker.service_arg),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{key} must not be empty"));
            }
        }
        for (name, spa) in &self.spas.0 {
            if let Some(build) = &spa.build {
                if build.trim().is_empty() {
                    return Err(format!("spas.{name}.build must not be empty"));
                }
            }
        }
        self.validate_environments()?;
        self.spa_upload.validate()?;
        self.notify.validate()?;
        for glob in self
            .changes
            .ignore
            .iter()
            .chain(&self.changes.inputs)
            .chain(self.changes.service_inputs.values().flatten())
        {
            if glob.trim().is_empty() {
                return Err("changes.ignore and changes inputs must not hold an empty glob".into());
            }
        }
        Ok(())
    }
}

fn require_placeholder(key: &str, value: &str) -> Result<(), String> {
    if value.contains(SERVICE_PLACEHOLDER) {
        Ok(())
    } else {
        Err(format!(
            "{key} = {value:?} must contain {SERVICE_PLACEHOLDER} (it is a per-service template)"
        ))
    }
}

/// Expands a per-service template such as `aws_ecs_service.service["{service}"]`.
pub fn expand(template: &str, service: &str) -> String {
    template.replace(SERVICE_PLACEHOLDER, service)
}

#[cfg(test)]
mod tests;
