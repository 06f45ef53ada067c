//! The command line: flags exactly as the runbook names them, validated by clap.
//!
//! These types only hold values. `request.rs` turns them into the typed request of
//! each command (and the shared `Globals`) before any I/O; nothing here knows about
//! AWS, Docker or git. The flags several commands share are declared once
//! ([`RollFlags`], [`RollbackOnFailure`], [`LockWait`], [`SpaChoice`]) and flattened
//! into each; the enums here are clap's, mapped to the domain's in `request.rs`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub mod completions;
mod durations;
pub mod man;
mod parse;
pub use durations::{parse_wait, parse_wait_timeout};
pub use parse::{parse, parse_from};

/// Build, push and roll the platform's backend services and SPAs on AWS.
///
/// A full deploy builds every service image, tags it with the git short SHA, pushes it
/// to ECR, uploads the SPAs to S3 (and invalidates CloudFront), then runs `terraform
/// apply` so ECS rolls the new tag. `--changed` rolls only what changed since it went
/// live.
#[derive(Debug, Parser)]
#[command(
    name = "deploy",
    version,
    max_term_width = 100,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  deploy --var-file tfvars/sandbox.tfvars\n  deploy --var-file tfvars/sandbox.tfvars --changed\n  deploy --var-file tfvars/prod.tfvars --profile prod -y\n  deploy --skip-tf --services api,auth\n  deploy --var-file tfvars/sandbox.tfvars --dry-run\n  deploy rollback a1b2c3d --var-file tfvars/sandbox.tfvars\n\nExit codes: 0 done or nothing to do, 1 failed, 2 usage or setup error (nothing changed), 3 `deploy diff`: needs --allow-infra-changes, 4 drift (`status --check`, `--changed` on a drifted service), 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// tfvars file for the closing `terraform apply`, relative to the terraform directory
    /// (e.g. tfvars/sandbox.tfvars); its name selects the terraform workspace. Required
    /// unless --skip-tf
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "skip_tf",
        env = "DEPLOY_VAR_FILE"
    )]
    pub var_file: Option<PathBuf>,

    /// Incremental: rebuild and roll only the services changed since their live image.
    /// `--changed=graph` follows the pnpm workspace graph and lockfile (and includes
    /// SPAs), `--changed=runbook` the runbook's rule; plain `--changed` uses
    /// `[changes] mode` in deploy.toml (default runbook)
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        conflicts_with_all = ["services", "skip_tf"]
    )]
    pub changed: Option<Option<ChangedMode>>,

    /// With --changed: a service changed outside deploy (it runs another image than
    /// deploy's last roll or terraform's image_tags say) is taken as it runs, the diff
    /// starting from its live image. Without this or --restore-drift, --changed refuses
    /// a drifted service (exit 4)
    #[arg(long, requires = "changed", conflicts_with = "restore_drift")]
    pub adopt_drift: bool,

    /// With --changed: a service changed outside deploy is put back on the image deploy
    /// recorded (not rebuilt) when nothing it is built from changed since; built and
    /// rolled when it did
    #[arg(long, requires = "changed")]
    pub restore_drift: bool,

    /// Limit the run to these services (comma-separated); with terraform, only these
    /// services are rolled (a targeted apply, never the global image_tag)
    #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
    pub services: Option<Vec<String>>,

    /// Skip the SPA build and upload
    #[arg(long)]
    pub skip_spas: bool,

    /// Build and upload SPAs even when files they build from (their directory, the
    /// workspace packages they depend on, the lockfile) have uncommitted changes; the
    /// upload is recorded as <sha>-dirty
    #[arg(long, conflicts_with = "skip_spas")]
    pub allow_dirty_spas: bool,

    /// Push images and SPAs only: no terraform apply, no ECS roll
    #[arg(long, conflicts_with_all = ["allow_infra_changes", "rollback_on_failure"])]
    pub skip_tf: bool,

    /// AWS profile to use, non-interactively (skips the profile menu)
    #[arg(global = true, long, value_name = "NAME", env = "DEPLOY_PROFILE")]
    pub profile: Option<String>,

    #[command(flatten)]
    pub roll: RollFlags,

    #[command(flatten)]
    pub on_failure: RollbackOnFailure,

    /// How far to follow each rolled service's ECS service deployment: until production
    /// traffic is on the new revision (its bake may still run), until it is complete,
    /// until it waits at a pause hook, or `auto`: what fits each strategy. Services
    /// without service deployments are waited on until steady whatever this says
    #[arg(long, value_enum, value_name = "POINT", default_value_t = WaitUntil::Auto, conflicts_with = "skip_tf")]
    pub wait_until: WaitUntil,

    /// The whole wait of each rolled service, replacing the one derived from its
    /// deployment's bakes and steps (plus ecs.wait_timeout_secs): `90s`, `20m`, `1h`
    #[arg(long, value_name = "DURATION", value_parser = parse_wait_timeout, conflicts_with = "skip_tf")]
    pub wait_timeout: Option<std::time::Duration>,

    #[command(flatten)]
    pub lock: LockWait,

    /// Output format for results on stdout
    #[arg(
        global = true,
        long,
        value_enum,
        default_value_t = OutputFormat::Text,
        value_name = "FORMAT",
        env = "DEPLOY_OUTPUT"
    )]
    pub output: OutputFormat,

    /// Run as if started in this directory (any directory inside the repository)
    #[arg(
        global = true,
        short = 'C',
        long = "repo",
        value_name = "DIR",
        env = "DEPLOY_REPO"
    )]
    pub repo: Option<PathBuf>,

    /// More diagnostics on stderr (-v, -vv); RUST_LOG overrides
    #[arg(global = true, short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors and warnings on stderr
    #[arg(global = true, short, long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per service: the live tag in ECS, HEAD, whether it changed (and why), the ECS
    /// rollout state and task counts. Read-only
    Status {
        /// The environment's tfvars file (its workspace's state names the cluster);
        /// default: the selected terraform workspace
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: Option<std::path::PathBuf>,

        /// Also read another environment (its tfvars file) and say per service whether
        /// both run the same bytes (the same image digest)
        #[arg(long, value_name = "PATH")]
        compare: Option<std::path::PathBuf>,

        /// AWS profile of the --compare environment (default: --profile)
        #[arg(long, value_name = "PROFILE", requires = "compare")]
        compare_profile: Option<String>,

        /// Show only these services (comma-separated); SPAs are then left out
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,
        /// Exit 4 when a service drifted: it runs another image than deploy's last roll
        /// (the history) or terraform's image_tags output say (for a scheduled CI job)
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `deploy man > deploy.1`
    Man,
    /// Reclaim disk (the runbook's ENOSPC remedy, made safe): the build cache and old
    /// SHA-tagged images of our repositories, keeping live tags, HEAD and the newest N.
    /// Never touches volumes or other images
    Prune {
        /// SHA-tagged images kept per repository besides live and HEAD
        #[arg(long, default_value_t = 3, value_name = "N")]
        keep: usize,
        /// List what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Don't read live tags from ECS (keep only HEAD and the newest N)
        #[arg(long)]
        skip_live_check: bool,
        /// The environment whose live tags are kept (its tfvars file); default: the
        /// selected terraform workspace
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: Option<std::path::PathBuf>,
    },
    /// Roll services back to an earlier commit whose images are still in the registry:
    /// no build, no push; terraform apply with that tag, then the same rollout checks.
    /// Each SPA goes back to its kept release of that commit (or the newest before it)
    #[command(mut_arg("dry_run", |arg| arg.help(
        "Print the plan and stop; changes nothing (reads the SPA releases kept in S3; the registry is not asked)"
    )))]
    Rollback {
        /// The commit to go back to: its short SHA (the image tag), a full SHA, a tag, or
        /// e.g. HEAD~1
        #[arg(value_name = "SHA")]
        revision: String,

        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,

        /// Roll back only these services (comma-separated); default: every service.
        /// SPAs are then left as they are unless --spas names some
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,

        #[command(flatten)]
        spas: SpaChoice,

        #[command(flatten)]
        roll: RollFlags,

        #[command(flatten)]
        on_failure: RollbackOnFailure,

        #[command(flatten)]
        lock: LockWait,
    },
    /// The environment's run history, newest first: when, who, mode, each service's
    /// tag before and after, outcome, duration. Read-only
    History {
        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,

        /// Only the runs that planned these services (comma-separated): their lineage
        #[arg(
            long,
            alias = "service",
            value_name = "A,B",
            value_delimiter = ',',
            num_args = 1
        )]
        services: Option<Vec<String>>,

        /// How many runs to show, newest first
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
    /// Undo the last successful run: every service it changed goes back to the tag it
    /// ran before that run (per service, from the history), with the same lock,
    /// confirmation, terraform plan review, verify and health checks as any roll.
    /// Nothing is built; an image gone from the registry stops it before anything is
    /// touched. Each SPA it changed goes back to the release live before it
    #[command(mut_arg("dry_run", |arg| arg.help(
        "Print the plan and stop (reads the history and ECS; changes nothing)"
    )))]
    Undo {
        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,

        /// Restore only these services of the run undone (comma-separated); default:
        /// every service it changed. SPAs are then left as they are unless --spas
        /// names some
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,

        #[command(flatten)]
        spas: SpaChoice,

        #[command(flatten)]
        roll: RollFlags,

        #[command(flatten)]
        on_failure: RollbackOnFailure,

        #[command(flatten)]
        lock: LockWait,
    },
    /// Promote the images one environment runs to the next (sandbox to prod), by digest:
    /// copied registry to registry (no build, no docker pull/push), proved identical,
    /// then rolled through the target's pipeline (lock, review, confirmation, terraform,
    /// ECS wait, health). Services the target runs at that digest already are skipped;
    /// SPAs are not copied. --profile is the target's profile
    #[command(mut_arg("dry_run", |arg| arg.help(
        "Print the plan (what each environment runs, by digest) and stop; copies and rolls nothing"
    )))]
    Promote {
        /// The source environment's tfvars file (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH")]
        from: std::path::PathBuf,

        /// The target environment's tfvars file (e.g. tfvars/prod.tfvars)
        #[arg(long, value_name = "PATH")]
        to: std::path::PathBuf,

        /// Promote only these services (comma-separated); default: every service
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,

        /// AWS profile of the source environment (default: the target's, --profile)
        #[arg(long, value_name = "PROFILE", env = "DEPLOY_PROFILE_FROM")]
        profile_from: Option<String>,

        #[command(flatten)]
        roll: RollFlags,

        #[command(flatten)]
        lock: LockWait,
    },
    /// Plan the roll and show what it would change, as a deploy shows it before its
    /// confirmation: per service the image tag and other changed attributes, then every
    /// change to other infrastructure. Read-only: builds, pushes and applies nothing;
    /// needs no terminal. Exit 0: only the services' own changes; 3: it would also
    /// change infrastructure outside the deployment, or destroy something (a deploy
    /// would need --allow-infra-changes); 1: failed (AWS, terraform); 2: usage error
    Diff {
        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,

        /// Plan only the services changed since their live image, as `deploy --changed`
        /// (`--changed=graph`, `--changed=runbook`; plain: `[changes] mode`)
        #[arg(
            long,
            value_name = "MODE",
            num_args = 0..=1,
            require_equals = true,
            conflicts_with = "services"
        )]
        changed: Option<Option<ChangedMode>>,

        /// Plan only these services (comma-separated), as `deploy --services`
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,
    },
    /// Answer every pause hook the last run's ECS service deployments wait at
    /// (`--wait-until paused`): CONTINUE, or ROLLBACK with --rollback. One
    /// ContinueServiceDeployment per hook, under the deploy lock, after the
    /// confirmation; recorded in that run's history. Then each deployment is followed
    /// to its end or next pause, and what ECS rolled back is reconciled with terraform
    /// (an undo of that run for those services). Exit 0 also when none waits
    Continue {
        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,

        /// Only the pauses of these services (comma-separated); default: every service
        /// the last run rolled
        #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
        services: Option<Vec<String>>,

        /// Answer with ROLLBACK: ECS rolls each paused deployment back to what ran
        /// before, then terraform is reconciled to it
        #[arg(long)]
        rollback: bool,

        /// Skip the confirmation
        #[arg(short = 'y', long)]
        yes: bool,

        #[command(flatten)]
        lock: LockWait,
    },
    /// Break a stale deploy lock of an environment (when the run holding it is gone)
    Unlock {
        /// The environment's tfvars file, as for a deploy (e.g. tfvars/sandbox.tfvars)
        #[arg(long, value_name = "PATH", env = "DEPLOY_VAR_FILE")]
        var_file: std::path::PathBuf,
    },
}

/// The flags of every command that rolls (a deploy, `rollback`, `undo`, `promote`):
/// declared once, so that each reads and validates the same everywhere. A command
/// whose dry run reads something else says so in its own `--dry-run` help.
#[derive(Debug, Clone, Default, Args)]
pub struct RollFlags {
    /// Skip the profile menu and the account confirmation (pair with --profile); the
    /// review of the roll's terraform plan is still printed, and changes outside the
    /// deployment still need --allow-infra-changes
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Print the plan (services, SPAs, image tag, terraform command) and stop: nothing is
    /// built, pushed, uploaded, locked or applied (`--changed` reads terraform's outputs
    /// and what ECS runs)
    #[arg(long)]
    pub dry_run: bool,

    /// Apply the roll's terraform plan even when it also changes infrastructure outside
    /// the deployment (resources other than the services' task definitions and
    /// services), or destroys anything; without it such a run stops before anything is
    /// built or rolled
    #[arg(long)]
    pub allow_infra_changes: bool,
}

/// `--rollback-on-failure`, of the commands that roll and can restore (all but
/// `promote`).
#[derive(Debug, Clone, Default, Args)]
pub struct RollbackOnFailure {
    /// When a rolled service does not settle, settles on another tag or fails its health
    /// check, roll the services this run changed back to the tags they ran before it,
    /// verify them, and exit 1 (also `verify.rollback_on_failure` in deploy.toml)
    #[arg(long)]
    pub rollback_on_failure: bool,
}

/// `--lock-wait`, of every command that takes the deploy lock.
#[derive(Debug, Clone, Default, Args)]
pub struct LockWait {
    /// When another run holds the environment's deploy lock, wait up to this long for
    /// it (e.g. 90s, 10m, 1h) instead of failing at once; the holder is shown while
    /// waiting. For CI pipelines that queue. Ignored with --skip-tf (no lock)
    #[arg(long, value_name = "DURATION", value_parser = parse_wait, env = "DEPLOY_LOCK_WAIT")]
    pub lock_wait: Option<std::time::Duration>,
}

/// `rollback`/`undo`: which SPAs go back with the services.
#[derive(Debug, Clone, Default, Args)]
pub struct SpaChoice {
    /// Leave every SPA as it is (by default each goes back too)
    #[arg(long)]
    pub skip_spas: bool,

    /// Restore only these SPAs (comma-separated)
    #[arg(
        long,
        value_name = "A,B",
        value_delimiter = ',',
        num_args = 1,
        conflicts_with = "skip_spas"
    )]
    pub spas: Option<Vec<String>>,
}

/// How `--changed=<MODE>` tells what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangedMode {
    /// The pnpm workspace graph and the lockfile by importer; SPAs included
    Graph,
    /// The runbook's rule: service dir, shared packages and build inputs
    Runbook,
}

/// `--wait-until <POINT>`: how far the verify step follows a service deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitUntil {
    /// Production traffic is on the new revision (its bake may still run).
    TrafficShifted,
    /// The deployment is SUCCESSFUL, bake and clean-up done.
    Complete,
    /// It waits at a pause hook (or is complete): answer it with `deploy continue`.
    Paused,
    /// What fits each strategy: BLUE_GREEN, LINEAR and CANARY until traffic is shifted,
    /// health checks during the bake, then until complete; ROLLING until complete
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables for people
    Text,
    /// One JSON document for scripts
    Json,
}

impl From<OutputFormat> for crate::ui::output::OutputFormat {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Text => Self::Text,
            OutputFormat::Json => Self::Json,
        }
    }
}

#[cfg(test)]
mod tests;
