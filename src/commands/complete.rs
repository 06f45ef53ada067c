//! What the shell completion scripts ask `deploy` itself for, by running it with
//! `DEPLOY_COMPLETE=<what>` (and `DEPLOY_REPO` for a `-C` typed on the line): the
//! tfvars files by the path `--var-file` takes (relative to the terraform directory,
//! wherever the shell is), the service names `--services` takes, the SPA names
//! `--spas` takes. One candidate a line; nothing (and success) outside a repository,
//! so that a completion never prints an error into the operator's line.

use std::io::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::checkout::Checkout;

/// The environment variable the completion scripts set.
pub const VARIABLE: &str = "DEPLOY_COMPLETE";

/// What a completion asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// `--var-file`, `--compare`, `--from`, `--to`: `tfvars/<env>.tfvars`.
    VarFiles,
    /// `--services`.
    Services,
    /// `--spas`.
    Spas,
}

impl Candidates {
    /// `var-files`, `services`, `spas`: the values the scripts send.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "var-files" => Some(Self::VarFiles),
            "services" => Some(Self::Services),
            "spas" => Some(Self::Spas),
            _ => None,
        }
    }
}

/// The candidates of the repository `repo` (or the current directory's) names.
pub fn candidates(repo: Option<&Path>, what: Candidates) -> Result<Vec<String>> {
    let Checkout { platform, .. } = Checkout::open(repo)?;
    Ok(match what {
        Candidates::VarFiles => {
            crate::planning::tfvars_files(&platform.root.join(platform.terraform_dir()))
        }
        Candidates::Services => platform.services.iter().map(|s| s.name.clone()).collect(),
        Candidates::Spas => platform.spas.iter().map(|s| s.name.clone()).collect(),
    })
}

/// Prints the candidates `what` names, one a line; prints nothing when there are none
/// to find (an unknown `what`, no repository, an invalid deploy.toml).
pub fn print(repo: Option<&Path>, what: &str) {
    let found = Candidates::named(what)
        .and_then(|what| candidates(repo, what).ok())
        .unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    for candidate in found {
        if writeln!(stdout, "{candidate}").is_err() {
            return;
        }
    }
}
