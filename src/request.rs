//! What the operator asked for, as a typed value: the flags after clap, before any I/O.

use std::path::PathBuf;

use crate::cli::{Cli, OutputFormat};

/// Which services a run considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every service (a full deploy).
    All,
    /// Only services whose live image is older than their code (`--changed`).
    Changed,
    /// Exactly these (`--services`), as typed.
    Named(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub selection: Selection,
    /// As typed; resolved against the terraform directory when the plan is made.
    pub var_file: Option<PathBuf>,
    pub skip_spas: bool,
    /// Upload SPAs built from uncommitted inputs, recorded as `<sha>-dirty`.
    pub allow_dirty_spas: bool,
    pub skip_tf: bool,
    pub profile: Option<String>,
    pub assume_yes: bool,
    pub dry_run: bool,
    /// `deploy diff`: plan the roll and show its review, then stop (read-only).
    pub diff_only: bool,
    /// Apply a roll's plan that changes infrastructure outside the deployment.
    pub allow_infra_changes: bool,
    pub output: OutputFormat,
    /// Where to look for the repository (default: the current directory).
    pub start_dir: Option<PathBuf>,
    /// `deploy rollback <revision>`: roll the images of that commit, as typed; nothing
    /// is built.
    pub rollback: Option<String>,
}

impl Request {
    pub fn from_cli(cli: &Cli) -> Self {
        let selection = if cli.changed {
            Selection::Changed
        } else if let Some(names) = &cli.services {
            Selection::Named(names.iter().map(|name| name.trim().to_owned()).collect())
        } else {
            Selection::All
        };
        Self {
            selection,
            // With --skip-tf nothing reads the tfvars file.
            var_file: if cli.skip_tf {
                None
            } else {
                cli.var_file.clone()
            },
            skip_spas: cli.skip_spas,
            allow_dirty_spas: cli.allow_dirty_spas,
            skip_tf: cli.skip_tf,
            profile: cli.profile.clone(),
            assume_yes: cli.yes,
            dry_run: cli.dry_run,
            diff_only: false,
            allow_infra_changes: cli.allow_infra_changes,
            output: cli.output,
            start_dir: cli.repo.clone(),
            rollback: None,
        }
    }

    /// `deploy rollback`: the services (all, or `--services`) go back to the images of
    /// `revision`. SPAs are not rolled back: their files are built, not kept per commit.
    pub fn rollback(
        cli: &Cli,
        revision: &str,
        var_file: &std::path::Path,
        services: Option<&[String]>,
        assume_yes: bool,
        dry_run: bool,
        allow_infra_changes: bool,
    ) -> Self {
        Self {
            selection: match services {
                Some(names) => {
                    Selection::Named(names.iter().map(|name| name.trim().to_owned()).collect())
                }
                None => Selection::All,
            },
            var_file: Some(var_file.to_path_buf()),
            skip_spas: true,
            allow_dirty_spas: false,
            skip_tf: false,
            profile: cli.profile.clone(),
            assume_yes,
            dry_run,
            diff_only: false,
            allow_infra_changes,
            output: cli.output,
            start_dir: cli.repo.clone(),
            rollback: Some(revision.to_owned()),
        }
    }

    /// `deploy diff`: a deploy's plan (every service, `--changed` or `--services`) up to
    /// the review of its terraform plan. No SPAs (terraform does not upload them), no
    /// confirmation (nothing is touched).
    pub fn diff(
        cli: &Cli,
        var_file: &std::path::Path,
        changed: bool,
        services: Option<&[String]>,
    ) -> Self {
        let selection = match services {
            _ if changed => Selection::Changed,
            Some(names) => {
                Selection::Named(names.iter().map(|name| name.trim().to_owned()).collect())
            }
            None => Selection::All,
        };
        Self {
            selection,
            var_file: Some(var_file.to_path_buf()),
            skip_spas: true,
            allow_dirty_spas: false,
            skip_tf: false,
            profile: cli.profile.clone(),
            assume_yes: true,
            dry_run: false,
            diff_only: true,
            allow_infra_changes: false,
            output: cli.output,
            start_dir: cli.repo.clone(),
            rollback: None,
        }
    }
}
