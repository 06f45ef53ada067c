//! The checkout a command starts from, read from disk: the git repository (found from
//! `-C` or the current directory), `deploy.toml` and the service directories that make
//! the [`Platform`] (those of HEAD's tree: the commit that is built), HEAD, and the
//! terraform backend an [`Environment`] reads. The values
//! are `model`'s; the reading is here. Also the async runtime every command runs in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::UsageError;
use crate::model::config::{Config, ConfigSource, CONFIG_FILE};
use crate::model::environment::{Environment, Outputs};
use crate::model::platform::{resolve_spas, Platform, Service, WorkTreeOnly};

/// What every subcommand starts from: the repository (found from `-C`/the current
/// directory), its platform, HEAD, and where deploy was started.
pub struct Checkout {
    pub repo: crate::git::Repo,
    pub platform: Platform,
    pub head: crate::git::Head,
    pub cwd: PathBuf,
}

impl Checkout {
    pub fn open(start_dir: Option<&Path>) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let start = start_dir.map_or(cwd.clone(), |dir| cwd.join(dir));
        if let Some(dir) = start_dir.filter(|_| !start.is_dir()) {
            let what = if start.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            return Err(UsageError::new(format!("-C/--repo {}: {what}", dir.display())).into());
        }
        let repo = crate::git::Repo::discover(&start)?;
        let mut platform = load_platform(repo.root())?;
        let head = repo.head()?;
        keep_committed(&mut platform, &repo, &head)?;
        if let Some(warning) = platform.work_tree_only.warning() {
            crate::ui::output::warn(&warning);
        }
        Ok(Self {
            repo,
            platform,
            head,
            cwd,
        })
    }
}

/// Keeps the services of the commit the images are built from (HEAD): a service
/// directory whose `package.json` that commit lacks exists in the work tree only, and
/// moves to [`Platform::work_tree_only`].
fn keep_committed(
    platform: &mut Platform,
    repo: &crate::git::Repo,
    head: &crate::git::Head,
) -> Result<()> {
    let tree = git2::Oid::from_str(&head.sha)
        .and_then(|id| repo.git().find_commit(id))
        .and_then(|commit| commit.tree())
        .with_context(|| format!("cannot read the tree of commit {}", head.short_sha))?;
    let (committed, work_tree_only): (Vec<Service>, Vec<Service>) = platform
        .services
        .drain(..)
        .partition(|service| tree.get_path(&service.dir.join("package.json")).is_ok());
    platform.services = committed;
    platform.work_tree_only = WorkTreeOnly {
        commit: head.short_sha.clone(),
        services: work_tree_only,
    };
    if platform.services.is_empty() {
        let why = platform.work_tree_only.warning().unwrap_or_default();
        return Err(UsageError::new(format!(
            "no service of commit {} to deploy: {why}",
            head.short_sha
        ))
        .into());
    }
    Ok(())
}

/// The async runtime of a command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads the config at `root` (`deploy.toml`, or the defaults) and discovers the
/// services and SPAs.
pub fn load_platform(root: &Path) -> Result<Platform> {
    let (config, source) = load_config(root)?;
    let (services, excluded) = discover_services(root, &config, &source)?;
    let spas = resolve_spas(&config);
    for name in config.health.prefixes.keys() {
        if !services.iter().any(|s| &s.name == name) {
            return Err(UsageError::new(format!(
                "health.prefixes names {name:?}, which is not a deployable service ({})",
                source.describe(&format!("health.prefixes.{name}"))
            ))
            .into());
        }
    }
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    if let Some(name) = config.alarms.unknown_services(&names).first() {
        return Err(UsageError::new(format!(
            "[alarms] names {name:?}, which is not a deployable service ({}); use \"*\" for every service",
            source.describe(&format!("alarms.{name}"))
        ))
        .into());
    }
    Ok(Platform {
        root: root.to_path_buf(),
        config,
        source,
        services,
        excluded,
        spas,
        work_tree_only: WorkTreeOnly::default(),
    })
}

/// `deploy.toml` at `repo_root`, or the defaults when there is none.
pub fn load_config(repo_root: &Path) -> Result<(Config, ConfigSource)> {
    let path = repo_root.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Config::default(), ConfigSource::default()))
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(Config::from_file(path, &text)?)
}

/// [`Environment::resolve`] with the platform's own S3 backend bucket, if any.
pub fn read_environment(
    platform: &Platform,
    workspace: Option<&str>,
    outputs: &Outputs,
) -> Result<Environment> {
    let backend = crate::terraform::state_bucket(&platform.root.join(platform.terraform_dir()));
    Environment::resolve(&platform.config, workspace, outputs, backend)
}

fn discover_services(
    root: &Path,
    config: &Config,
    source: &ConfigSource,
) -> Result<(Vec<Service>, Vec<String>)> {
    let services_dir = root.join(&config.services.dir);
    let origin = |key: &str| source.describe(key);
    if !services_dir.is_dir() {
        return Err(UsageError::new(format!(
            "the services directory {} does not exist ({}); is {} the platform repository?",
            services_dir.display(),
            origin("services.dir"),
            root.display()
        ))
        .into());
    }

    let names: Vec<String> = match &config.services.names {
        Some(names) => {
            for name in names {
                let dir = services_dir.join(name);
                if !dir.join("package.json").is_file() {
                    return Err(UsageError::new(format!(
                        "service {name:?} listed in {} has no {}",
                        origin("services.names"),
                        dir.join("package.json").display()
                    ))
                    .into());
                }
            }
            names.clone()
        }
        None => {
            let mut names = Vec::new();
            let entries = std::fs::read_dir(&services_dir)
                .with_context(|| format!("cannot list {}", services_dir.display()))?;
            for entry in entries {
                let entry =
                    entry.with_context(|| format!("cannot list {}", services_dir.display()))?;
                let path = entry.path();
                if path.join("package.json").is_file() {
                    if let Some(name) = entry.file_name().to_str() {
                        names.push(name.to_owned());
                    }
                }
            }
            names
        }
    };

    let (excluded, mut deployable): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| config.services.exclude.contains(name));
    deployable.sort();
    deployable.dedup();
    if deployable.is_empty() {
        return Err(UsageError::new(format!(
            "no services found under {} (a service is a directory with a package.json; {})",
            services_dir.display(),
            origin("services.dir")
        ))
        .into());
    }
    let services = deployable
        .into_iter()
        .map(|name| Service {
            dir: config.services.dir.join(&name),
            name,
        })
        .collect();
    let mut excluded = excluded;
    excluded.sort();
    Ok((services, excluded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn discovers_services_with_package_json_minus_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "slack-agent"] {
            write(dir.path(), &format!("services/{name}/package.json"), "{}");
        }
        write(dir.path(), "services/not-a-service/README.md", "");
        let platform = load_platform(dir.path()).unwrap();
        let names: Vec<_> = platform.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(platform.excluded, ["slack-agent"]);
        assert_eq!(platform.services[0].dir, Path::new("services/a"));
        assert_eq!(platform.spas[0].output, Path::new("apps/admin-ui/dist"));
        assert_eq!(platform.spas[0].build, "pnpm --filter admin-ui build");
    }

    #[test]
    fn services_come_from_heads_tree_and_the_work_tree_only_ones_are_set_apart() {
        let repo = crate::git::testing::TestRepo::new();
        repo.commit(&[
            ("services/api/package.json", "{}"),
            ("services/auth/package.json", "{}"),
        ]);
        // New and not committed; auth's directory keeps its committed package.json.
        write(repo.dir.path(), "services/ledger/package.json", "{}");
        write(repo.dir.path(), "services/auth/src/new.ts", "");
        let checkout = Checkout::open(Some(repo.dir.path())).unwrap();
        let names: Vec<_> = checkout
            .platform
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["api", "auth"]);
        let only = &checkout.platform.work_tree_only;
        assert_eq!(only.commit, checkout.head.short_sha);
        assert_eq!(only.services.len(), 1);
        assert_eq!(only.services[0].dir, Path::new("services/ledger"));
        assert!(only.refusal("api").is_none());
        assert!(only.refusal("ledger").is_some());
    }

    #[test]
    fn a_head_without_any_service_is_a_usage_error_saying_to_commit() {
        let repo = crate::git::testing::TestRepo::new();
        repo.commit(&[("README.md", "")]);
        write(repo.dir.path(), "services/api/package.json", "{}");
        let err = Checkout::open(Some(repo.dir.path())).err().unwrap();
        assert!(err.is::<UsageError>(), "{err:#}");
        let message = err.to_string();
        assert!(message.contains("no service of commit"), "{message}");
        assert!(
            message.contains("git add services/api && git commit"),
            "{message}"
        );
    }

    #[test]
    fn missing_services_dir_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_platform(dir.path()).unwrap_err();
        assert!(err.is::<UsageError>());
        assert!(err.to_string().contains("services.dir"), "{err}");
    }

    #[test]
    fn listed_service_that_does_not_exist_names_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "services/a/package.json", "{}");
        write(
            dir.path(),
            "deploy.toml",
            "[services]\nnames = [\"a\", \"ghost\"]\n",
        );
        let err = load_platform(dir.path()).unwrap_err().to_string();
        assert!(err.contains("\"ghost\""), "{err}");
        assert!(err.contains("services.names in"), "{err}");
        assert!(err.contains("deploy.toml"), "{err}");
    }
}
