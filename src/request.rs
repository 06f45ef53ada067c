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
    pub skip_tf: bool,
    pub profile: Option<String>,
    pub assume_yes: bool,
    pub dry_run: bool,
    pub output: OutputFormat,
    /// Where to look for the repository (default: the current directory).
    pub start_dir: Option<PathBuf>,
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
            skip_tf: cli.skip_tf,
            profile: cli.profile.clone(),
            assume_yes: cli.yes,
            dry_run: cli.dry_run,
            output: cli.output,
            start_dir: cli.repo.clone(),
        }
    }
}
