//! What the operator asked for, as typed values: the flags after clap, before any I/O.
//! Clap stops here: one request per command plus the [`Globals`] every command shares;
//! nothing past this module sees [`Cli`].

use std::path::PathBuf;

use crate::aws::ecs::native::WaitUntil;
use crate::cli::{Cli, Command};
use crate::model::config::ChangesMode;
use crate::ui::output::OutputFormat;

/// The flags every command shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    pub verbose: u8,
    pub quiet: bool,
    pub output: OutputFormat,
    /// Where to look for the repository (default: the current directory).
    pub repo: Option<PathBuf>,
    pub profile: Option<String>,
}

impl Default for Globals {
    fn default() -> Self {
        Self {
            verbose: 0,
            quiet: false,
            output: OutputFormat::Text,
            repo: None,
            profile: None,
        }
    }
}

pub use crate::model::plan::Selection;

/// A deploy, or a rollback (`deploy rollback`): the same pipeline.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub selection: Selection,
    /// As typed; resolved against the terraform directory when the plan is made.
    pub var_file: Option<PathBuf>,
    pub skip_spas: bool,
    /// `rollback`/`undo --spas a,b`: restore only these SPAs, as typed.
    pub spas: Option<Vec<String>>,
    /// Upload SPAs built from uncommitted inputs, recorded as `<sha>-dirty`.
    pub allow_dirty_spas: bool,
    pub skip_tf: bool,
    /// `--skip-tf --var-file`: the file names the environment of deploy.toml's names only.
    pub names_var_file: Option<PathBuf>,
    pub assume_yes: bool,
    pub dry_run: bool,
    /// `deploy diff`: plan the roll and show its review, then stop (read-only).
    pub diff_only: bool,
    /// Apply a roll's terraform plan that also changes infrastructure outside the
    /// deployment, or destroys something (`--allow-infra-changes`).
    pub allow_infra_changes: bool,
    /// `deploy rollback <revision>`: roll the images of that commit, as typed; nothing
    /// is built.
    pub rollback: Option<String>,
    /// `--changed=<mode>`: overrides `[changes] mode` of deploy.toml.
    pub changes_mode: Option<ChangesMode>,
    /// `deploy promote`: where the images come from (`var_file` is the target).
    pub promote: Option<Promotion>,
    /// `deploy undo`: restore what the last successful run changed; nothing is built.
    pub undo: bool,
    /// The run an undo undoes, by id, whatever its state (`deploy continue
    /// --rollback`'s reconcile); `None`: the newest that succeeded.
    pub undo_of: Option<String>,
    /// `--rollback-on-failure`: a failed verify restores the previous tags (also
    /// `verify.rollback_on_failure`).
    pub rollback_on_failure: bool,
    /// `--lock-wait`: how long to wait for another run's deploy lock (none: fail at once).
    pub lock_wait: Option<std::time::Duration>,
    /// `--wait-until`: how far the verify step follows ECS's service deployments.
    pub wait_until: WaitUntil,
    /// `--wait-timeout`: each service's whole wait (none: from its deployment's bakes).
    pub wait_timeout: Option<std::time::Duration>,
    /// `--changed` with a drifted service: refuse, `--adopt-drift` or `--restore-drift`.
    pub drift: crate::model::drift::DriftPolicy,
}

/// `deploy promote --from <tfvars> [--profile-from P]`: the source environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The source environment's tfvars file, as typed.
    pub from_var_file: PathBuf,
    /// The source's AWS profile; `None`: the target's.
    pub profile_from: Option<String>,
}

/// `deploy history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub var_file: PathBuf,
    /// `--services`: the lineage of these services, as typed (trimmed).
    pub services: Option<Vec<String>>,
    /// The newest N runs.
    pub limit: usize,
}

/// `deploy status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusRequest {
    /// The environment's tfvars file; default: the selected terraform workspace.
    pub var_file: Option<PathBuf>,
    /// `--compare`: another environment's tfvars file, compared by digest.
    pub compare: Option<PathBuf>,
    /// `--compare-profile`: its AWS profile (default: the global one).
    pub compare_profile: Option<String>,
    /// `--services`: show only these services (and no SPAs), as typed (trimmed).
    pub services: Option<Vec<String>>,
    /// `--check`: exit 4 when a service drifted (for a scheduled CI job).
    pub check: bool,
}

/// `deploy prune`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    /// SHA-tagged images kept per repository besides live and HEAD.
    pub keep: usize,
    pub dry_run: bool,
    pub skip_live_check: bool,
    /// The environment whose live tags are kept; default: the selected workspace.
    pub var_file: Option<PathBuf>,
}

/// `deploy unlock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRequest {
    /// The environment's tfvars file, as for a deploy.
    pub var_file: PathBuf,
}

/// `deploy continue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueRequest {
    /// The environment's tfvars file, as for a deploy.
    pub var_file: PathBuf,
    /// `--services`: only these services' pauses (none: every service the run rolled).
    pub services: Option<Vec<String>>,
    /// `--rollback`: answer ROLLBACK instead of CONTINUE.
    pub rollback: bool,
    pub assume_yes: bool,
    pub lock_wait: Option<std::time::Duration>,
}

/// One command line, turned into the request of the command it names.
#[derive(Debug, Clone)]
pub enum CommandRequest {
    Deploy(Request),
    Status(StatusRequest),
    Prune(PruneRequest),
    Unlock(UnlockRequest),
    Continue(ContinueRequest),
    History(HistoryRequest),
    Completions(clap_complete::Shell),
    Man,
}

impl Globals {
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            verbose: cli.verbose,
            quiet: cli.quiet,
            output: cli.output.into(),
            repo: cli.repo.clone(),
            profile: cli.profile.clone(),
        }
    }
}

impl CommandRequest {
    pub fn from_cli(cli: &Cli) -> Self {
        match &cli.command {
            None => Self::Deploy(Request::from_cli(cli)),
            Some(Command::Status {
                var_file,
                compare,
                compare_profile,
                services,
                check,
            }) => Self::Status(StatusRequest {
                var_file: var_file.clone(),
                compare: compare.clone(),
                compare_profile: compare_profile.clone(),
                services: services.as_deref().map(trimmed),
                check: *check,
            }),
            Some(Command::Prune {
                keep,
                dry_run,
                skip_live_check,
                var_file,
            }) => Self::Prune(PruneRequest {
                keep: *keep,
                dry_run: *dry_run,
                skip_live_check: *skip_live_check,
                var_file: var_file.clone(),
            }),
            Some(Command::Unlock { var_file }) => Self::Unlock(UnlockRequest {
                var_file: var_file.clone(),
            }),
            Some(Command::Continue {
                var_file,
                services,
                rollback,
                yes,
                lock,
            }) => Self::Continue(ContinueRequest {
                var_file: var_file.clone(),
                services: services
                    .as_deref()
                    .map(|names| names.iter().map(|n| n.trim().to_owned()).collect()),
                rollback: *rollback,
                assume_yes: *yes,
                lock_wait: lock.lock_wait,
            }),
            Some(Command::Rollback {
                revision,
                var_file,
                services,
                spas,
                roll,
                on_failure,
                lock,
            }) => Self::Deploy(Request {
                allow_infra_changes: roll.allow_infra_changes,
                rollback_on_failure: on_failure.rollback_on_failure,
                lock_wait: lock.lock_wait,
                skip_spas: spas.skip_spas,
                spas: spas.spas.as_deref().map(trimmed),
                ..Request::rollback(
                    revision,
                    var_file,
                    services.as_deref(),
                    roll.yes,
                    roll.dry_run,
                )
            }),
            Some(Command::Promote {
                from,
                to,
                services,
                profile_from,
                roll,
                lock,
            }) => Self::Deploy(Request {
                selection: services.as_deref().map_or(Selection::All, named),
                var_file: Some(to.clone()),
                lock_wait: lock.lock_wait,
                skip_spas: true,
                assume_yes: roll.yes,
                dry_run: roll.dry_run,
                allow_infra_changes: roll.allow_infra_changes,
                promote: Some(Promotion {
                    from_var_file: from.clone(),
                    profile_from: profile_from.clone(),
                }),
                ..Request::default()
            }),
            Some(Command::Diff {
                var_file,
                changed,
                services,
            }) => Self::Deploy(Request {
                changes_mode: changed.flatten().map(changes_mode),
                ..Request::diff(var_file, changed.is_some(), services.as_deref())
            }),
            Some(Command::History {
                var_file,
                services,
                limit,
            }) => Self::History(HistoryRequest {
                var_file: var_file.clone(),
                services: services.as_deref().map(trimmed),
                limit: *limit,
            }),
            Some(Command::Undo {
                var_file,
                services,
                spas,
                roll,
                on_failure,
                lock,
            }) => Self::Deploy(Request {
                selection: services.as_deref().map_or(Selection::All, named),
                lock_wait: lock.lock_wait,
                var_file: Some(var_file.clone()),
                skip_spas: spas.skip_spas,
                spas: spas.spas.as_deref().map(trimmed),
                assume_yes: roll.yes,
                dry_run: roll.dry_run,
                allow_infra_changes: roll.allow_infra_changes,
                rollback_on_failure: on_failure.rollback_on_failure,
                undo: true,
                ..Request::default()
            }),
            Some(Command::Completions { shell }) => Self::Completions(*shell),
            Some(Command::Man) => Self::Man,
        }
    }
}

/// `--wait-until`, as the verify step reads it.
fn wait_until(point: crate::cli::WaitUntil) -> WaitUntil {
    match point {
        crate::cli::WaitUntil::TrafficShifted => WaitUntil::TrafficShifted,
        crate::cli::WaitUntil::Complete => WaitUntil::Complete,
        crate::cli::WaitUntil::Paused => WaitUntil::Paused,
        crate::cli::WaitUntil::Auto => WaitUntil::Auto,
    }
}

/// `--changed=<mode>`, as `[changes] mode` names it.
fn changes_mode(mode: crate::cli::ChangedMode) -> ChangesMode {
    match mode {
        crate::cli::ChangedMode::Graph => ChangesMode::Graph,
        crate::cli::ChangedMode::Runbook => ChangesMode::Runbook,
    }
}

/// `--services a, b` as typed, each name trimmed.
fn named(names: &[String]) -> Selection {
    Selection::Named(trimmed(names))
}

fn trimmed(names: &[String]) -> Vec<String> {
    names.iter().map(|name| name.trim().to_owned()).collect()
}

impl Request {
    /// How `--changed` decides: `--changed=<mode>`, else `[changes] mode`.
    pub fn changes_mode(&self, config: &crate::model::config::Config) -> ChangesMode {
        self.changes_mode.unwrap_or(config.changes.mode)
    }

    pub fn from_cli(cli: &Cli) -> Self {
        let selection = if cli.changed.is_some() {
            Selection::Changed
        } else if let Some(names) = &cli.services {
            named(names)
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
            names_var_file: cli.var_file.clone().filter(|_| cli.skip_tf),
            assume_yes: cli.roll.yes,
            dry_run: cli.roll.dry_run,
            allow_infra_changes: cli.roll.allow_infra_changes,
            rollback_on_failure: cli.on_failure.rollback_on_failure,
            // No lock without terraform: a --lock-wait (or DEPLOY_LOCK_WAIT) waits for
            // nothing.
            lock_wait: cli.lock.lock_wait.filter(|_| !cli.skip_tf),
            wait_until: wait_until(cli.wait_until),
            wait_timeout: cli.wait_timeout,
            drift: if cli.adopt_drift {
                crate::model::drift::DriftPolicy::Adopt
            } else if cli.restore_drift {
                crate::model::drift::DriftPolicy::Restore
            } else {
                crate::model::drift::DriftPolicy::Refuse
            },
            changes_mode: cli.changed.flatten().map(changes_mode),
            ..Self::default()
        }
    }

    /// `deploy diff`: a deploy's plan (every service, `--changed` or `--services`) up to
    /// the review of its terraform plan. No SPAs (terraform does not upload them), and
    /// no confirmation: nothing is touched.
    pub fn diff(var_file: &std::path::Path, changed: bool, services: Option<&[String]>) -> Self {
        let selection = match services {
            _ if changed => Selection::Changed,
            Some(names) => named(names),
            None => Selection::All,
        };
        Self {
            selection,
            var_file: Some(var_file.to_path_buf()),
            skip_spas: true,
            assume_yes: true,
            diff_only: true,
            ..Self::default()
        }
    }

    /// `deploy rollback`: the services (all, or `--services`) go back to the images of
    /// `revision`, the SPAs to their kept releases (see `model::plan::spas`).
    pub fn rollback(
        revision: &str,
        var_file: &std::path::Path,
        services: Option<&[String]>,
        assume_yes: bool,
        dry_run: bool,
    ) -> Self {
        Self {
            selection: services.map_or(Selection::All, named),
            var_file: Some(var_file.to_path_buf()),
            skip_spas: false,
            allow_dirty_spas: false,
            skip_tf: false,
            assume_yes,
            dry_run,
            rollback: Some(revision.to_owned()),
            changes_mode: None,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests;
