//! What is deployable in the repository: services, SPAs, shared paths and the terraform
//! root, resolved from `deploy.toml` (or its defaults) against the files on disk. The
//! value only: `crate::checkout` reads the config and lists the service directories.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::config::{Config, ConfigSource};

/// The platform as found on disk.
#[derive(Debug, Clone)]
pub struct Platform {
    pub root: PathBuf,
    pub config: Config,
    /// Where the config came from (for messages naming a key and its file).
    pub source: ConfigSource,
    /// Deployable services, sorted by name (exclusions removed).
    pub services: Vec<Service>,
    /// Services found but never deployed by a run (e.g. `slack-agent`).
    pub excluded: Vec<String>,
    pub spas: Vec<Spa>,
    /// Service directories of the work tree that the commit built lacks: left out.
    pub work_tree_only: WorkTreeOnly,
}

/// Service directories found in the work tree that are not in the commit the images are
/// built from (new, not committed yet): no run plans them, since that commit's tree has
/// no such service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkTreeOnly {
    /// The commit's short SHA.
    pub commit: String,
    /// Their directories, relative to the repository root, sorted by service name.
    pub services: Vec<Service>,
}

impl WorkTreeOnly {
    /// The warning naming them, with how to include them; `None` when there are none.
    pub fn warning(&self) -> Option<String> {
        if self.services.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        let dirs: Vec<String> = self
            .services
            .iter()
            .map(|s| s.dir.display().to_string())
            .collect();
        Some(format!(
            "service{s} {names} {are} in the work tree but not in commit {commit}, which the images are built from: left out of this run. To deploy {them}, commit {dirs} (git add {dirs} && git commit)",
            s = if names.len() == 1 { "" } else { "s" },
            names = names.join(", "),
            are = if names.len() == 1 { "is" } else { "are" },
            commit = self.commit,
            them = if names.len() == 1 { "it" } else { "them" },
            dirs = dirs.join(" "),
        ))
    }

    /// Why `name` cannot be deployed, when it is one of them.
    pub fn refusal(&self, name: &str) -> Option<String> {
        let service = self.services.iter().find(|s| s.name == name)?;
        Some(format!(
            "{name} is in the work tree but not in commit {commit}, which the images are built from; commit {dir} (git add {dir} && git commit), then deploy",
            commit = self.commit,
            dir = service.dir.display(),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    /// Relative to the repository root.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spa {
    pub name: String,
    /// Relative to the repository root.
    pub dir: PathBuf,
    pub build: String,
    /// Relative to the repository root.
    pub output: PathBuf,
    pub bucket: Option<String>,
    pub distribution_id: Option<String>,
}

impl Platform {
    pub fn terraform_dir(&self) -> &Path {
        &self.config.terraform.dir
    }

    /// Where a key's value came from, for error messages.
    pub fn origin(&self, key: &str) -> String {
        self.source.describe(key)
    }
}

/// The SPAs the config names, with their defaults filled in.
pub fn resolve_spas(config: &Config) -> Vec<Spa> {
    config
        .spas
        .0
        .iter()
        .map(|(name, spa)| {
            let dir = spa
                .dir
                .clone()
                .unwrap_or_else(|| Path::new("apps").join(name));
            let output = dir.join(spa.output.as_deref().unwrap_or(Path::new("dist")));
            Spa {
                name: name.clone(),
                build: spa
                    .build
                    .clone()
                    .unwrap_or_else(|| format!("pnpm --filter {name} build")),
                dir,
                output,
                bucket: spa.bucket.clone(),
                distribution_id: spa.distribution_id.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &[&str]) -> WorkTreeOnly {
        WorkTreeOnly {
            commit: "0123456".into(),
            services: names
                .iter()
                .map(|name| Service {
                    name: (*name).into(),
                    dir: Path::new("services").join(name),
                })
                .collect(),
        }
    }

    #[test]
    fn the_warning_names_each_service_the_commit_and_how_to_include_them() {
        assert_eq!(only(&[]).warning(), None);
        assert_eq!(
            only(&["ledger"]).warning().unwrap(),
            "service ledger is in the work tree but not in commit 0123456, which the images are built from: left out of this run. To deploy it, commit services/ledger (git add services/ledger && git commit)"
        );
        let two = only(&["ledger", "mail"]).warning().unwrap();
        assert!(
            two.starts_with("services ledger, mail are in the work tree"),
            "{two}"
        );
        assert!(
            two.contains("git add services/ledger services/mail && git commit"),
            "{two}"
        );
        assert_eq!(
            only(&["ledger"]).refusal("ledger").unwrap(),
            "ledger is in the work tree but not in commit 0123456, which the images are built from; commit services/ledger (git add services/ledger && git commit), then deploy"
        );
        assert_eq!(only(&["ledger"]).refusal("api"), None);
    }
}
