//! The plan: what a run will do, as a plain value computed before anything executes.
//!
//! It is printed (text table or JSON), tested, and then executed; the dry run is the
//! same code stopping after printing. Built from the request by `crate::planning`
//! (which reads the tfvars file and what the SPAs' builds read); shown as a table by
//! `crate::ui::plan`; changed here, by the decisions made once AWS is read
//! ([`Plan::decide`], [`Plan::restore`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::config::TerraformConfig;
pub use crate::model::head::Head;

mod cause;
pub mod registry;
pub mod services;
pub mod spas;
pub mod terraform;

pub use cause::{Bump, Cause};
pub use services::Selection;
pub use spas::{SpaAsk, SpaSource, SpaSources};
pub use terraform::{Apply, Roll};

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub repo: PathBuf,
    pub config: Option<PathBuf>,
    pub head: Head,
    pub mode: Mode,
    /// The tag every image of this run gets: `git rev-parse --short HEAD` (or, in a
    /// rollback, the short SHA of the commit rolled back to).
    pub image_tag: String,
    /// `deploy rollback`: the commit whose images are rolled (nothing is built).
    pub rollback_to: Option<Head>,
    /// `deploy undo`: the run undone; each service's tag is in `services[].image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
    /// Where images are pushed, and why there.
    pub registry: Registry,
    /// Uncommitted paths in the working tree (they never reach an image).
    pub uncommitted: Vec<String>,
    pub services: Vec<ServiceStep>,
    pub spas: Vec<SpaStep>,
    /// `None` with `--skip-tf`.
    pub terraform: Option<TerraformStep>,
    /// `deploy promote`: the source environment and what it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionPlan>,
}

/// `deploy promote`: where the images come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotionPlan {
    /// The source's tfvars file and workspace.
    pub from_var_file: PathBuf,
    pub from_workspace: String,
    /// The source's AWS profile (the target's when `None`).
    pub profile_from: Option<String>,
    /// The source's registry, and why there.
    pub from_registry: Registry,
    /// Per service promoted or skipped: the source's tag and digest (known once the
    /// source was read).
    pub images: Vec<PromotedImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotedImage {
    pub service: String,
    pub tag: String,
    pub digest: String,
    /// The digest the target runs now, if it runs one.
    pub target_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Changed,
    Services,
    /// `deploy rollback`: images already in the registry, rolled by terraform.
    Rollback,
    /// `deploy promote`: the images another environment runs, copied by digest.
    Promote,
    /// `deploy undo`: each service back to the tag it ran before the last successful
    /// run (from the history), images already in the registry.
    Undo,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Full => "full deploy",
            Mode::Changed => "incremental deploy (--changed)",
            Mode::Services => "partial deploy (--services)",
            Mode::Rollback => "rollback",
            Mode::Promote => "promotion",
            Mode::Undo => "undo",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registry {
    /// `None`: the ECR repository's own host, known once the account is.
    pub host: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Build, push and roll.
    Deploy,
    /// Leave as it is.
    Skip,
    /// Decided by comparing the live ECS tag with the repository (`--changed`).
    Check,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Deploy => "DEPLOY",
            Action::Skip => "SKIP",
            Action::Check => "CHECK",
        })
    }
}

/// What happens to one service, and the reason printed beside it (the `--changed`
/// decision, [`crate::changes::decide`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: Action,
    pub reason: String,
    /// Why, as data (`[changes] mode = "graph"` only; `reason` is its text).
    pub cause: Option<Cause>,
}

impl Decision {
    pub fn deploy(reason: impl Into<String>) -> Self {
        Self {
            action: Action::Deploy,
            reason: reason.into(),
            cause: None,
        }
    }

    pub fn skip(reason: impl Into<String>) -> Self {
        Self {
            action: Action::Skip,
            reason: reason.into(),
            cause: None,
        }
    }

    /// Deploys because of `cause`, its text as the reason.
    pub fn because(cause: Cause) -> Self {
        Self {
            action: Action::Deploy,
            reason: cause.to_string(),
            cause: Some(cause),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStep {
    pub name: String,
    pub action: Action,
    pub reason: String,
    /// Why, as data, in graph mode (absent from the JSON plan otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// ECR repository name.
    pub repository: String,
    /// `<repository>:<tag>`, without the registry host.
    pub image: String,
    /// `--changed --restore-drift`: the recorded tag put back (its image found in the
    /// registry, not built); `image` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

impl ServiceStep {
    /// The tag of this service's image (`<repository>:<tag>`).
    pub fn tag(&self) -> &str {
        self.image.rsplit_once(':').map_or("", |(_, tag)| tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaStep {
    pub name: String,
    pub action: Action,
    pub reason: String,
    /// Why, as data, in graph mode (absent from the JSON plan otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub build: String,
    pub output: PathBuf,
    /// The bucket, or where it will be read from.
    pub bucket: String,
    /// Uncommitted paths among what the build reads (only with `--allow-dirty-spas`;
    /// without it they stop the plan).
    pub dirty: Vec<String>,
    /// The git SHA the upload records: HEAD's, or `<sha>-dirty` when built from
    /// uncommitted files (SPEC §4). A restore: the restored release's.
    pub recorded_sha: String,
    /// `deploy rollback`, `deploy undo`: the kept release put back (nothing is built).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<SpaRelease>,
}

/// A kept SPA release, as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaRelease {
    /// Its number in the SPA's manifest.
    pub number: u64,
    pub git_sha: String,
    /// When it went live (RFC 3339, UTC).
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerraformStep {
    pub apply: Apply,
    /// The command line, shell-quoted for reading: always derived from `apply`
    /// ([`TerraformStep::new`], [`TerraformStep::set_roll`]).
    command: String,
}

impl TerraformStep {
    pub fn new(apply: Apply, config: &TerraformConfig) -> Self {
        // A run saves the plan in a private temp file; the plan shows it by its name.
        let planfile = Path::new(SAVED_PLAN_NAME);
        let terraform = || std::iter::once("terraform".to_owned());
        let command = format!(
            "{} && {}",
            shell_words(terraform().chain(apply.plan_args(config, planfile))),
            shell_words(terraform().chain(apply.apply_saved_args(planfile)))
        );
        Self { apply, command }
    }

    /// The command lines terraform runs with, as printed in the plan: the plan saved
    /// (in preflight), then that plan applied (after the review and the confirmation).
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Changes what the apply rolls, and the displayed command with it.
    pub fn set_roll(&mut self, roll: Roll, config: &TerraformConfig) {
        let apply = Apply {
            roll,
            ..self.apply.clone()
        };
        *self = Self::new(apply, config);
    }
}

/// Everything the plan needs besides the platform and the request.
pub struct Context<'a> {
    pub head: Head,
    pub uncommitted: Vec<String>,
    /// Where deploy was started (relative `--var-file` paths may be relative to it).
    pub cwd: &'a Path,
    /// `DEPLOY_REGISTRY` and `DEPLOY_REGISTRY_<ENV>`.
    pub registry_env: registry::RegistryEnv,
    /// `deploy rollback`: the commit named, resolved.
    pub rollback_to: Option<Head>,
    /// What the working tree holds of each SPA (`spa::sources::read`).
    pub spa_sources: SpaSources,
}

/// `deploy undo`: what the history says to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undo {
    /// The run undone.
    pub run_id: String,
    /// Each service it changed → the tag that service ran before it.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Services it changed that cannot be restored, with why.
    pub left: Vec<(String, String)>,
}

impl Plan {
    /// Records the `--changed` decision for each service and narrows the terraform roll
    /// to the services that deploy: each at this run's tag, or at its own where
    /// `restore` names the recorded tag `--restore-drift` puts back (not built).
    pub fn decide(
        &mut self,
        decisions: Vec<(String, Decision)>,
        restore: &std::collections::BTreeMap<String, String>,
        config: &TerraformConfig,
    ) {
        for (
            name,
            Decision {
                action,
                reason,
                cause,
            },
        ) in decisions
        {
            if let Some(step) = self.services.iter_mut().find(|s| s.name == name) {
                step.action = action;
                step.reason = reason;
                step.cause = cause;
                if let Some(tag) = restore.get(&name).filter(|_| action == Action::Deploy) {
                    step.image = format!("{}:{tag}", step.repository);
                    step.restore = Some(tag.clone());
                }
            }
        }
        let deploying: Vec<String> = self.deploying_services().map(|s| s.name.clone()).collect();
        let tags: std::collections::BTreeMap<String, String> = self
            .deploying_services()
            .filter_map(|s| Some((s.name.clone(), s.restore.clone()?)))
            .collect();
        if let Some(step) = &mut self.terraform {
            let roll = Roll::Only {
                services: deploying,
                tag: self.image_tag.clone(),
                renew: tags.keys().cloned().collect(),
                tags,
            };
            step.set_roll(roll, config);
        }
    }

    /// Records the graph-mode decision for each SPA (`--changed`, `[changes] mode =
    /// "graph"`).
    pub fn decide_spas(&mut self, decisions: Vec<(String, Decision)>) {
        for (
            name,
            Decision {
                action,
                reason,
                cause,
            },
        ) in decisions
        {
            if let Some(step) = self.spas.iter_mut().find(|s| s.name == name) {
                step.action = action;
                step.reason = reason;
                step.cause = cause;
            }
        }
    }

    /// `deploy rollback`, `deploy undo`: what each SPA that was to be checked does (a
    /// kept release restored, or left as it is, with why).
    pub fn restore_spas(&mut self, decisions: Vec<(String, Decision, Option<SpaRelease>)>) {
        for (name, decision, release) in decisions {
            if let Some(step) = self.spas.iter_mut().find(|s| s.name == name) {
                step.action = decision.action;
                step.reason = decision.reason;
                if let Some(release) = &release {
                    step.recorded_sha = release.git_sha.clone();
                }
                step.restore = release;
            }
        }
    }

    /// `deploy undo`: each service the undone run changed goes back to its tag before
    /// it; the others are left as they are.
    pub fn restore(&mut self, undo: Undo, config: &TerraformConfig) {
        for step in &mut self.services {
            match undo.tags.get(&step.name) {
                Some(before) => {
                    step.action = Action::Deploy;
                    step.image = format!("{}:{before}", step.repository);
                    step.reason = format!(
                        "back to {before}, its tag before run {}: its image, not rebuilt",
                        undo.run_id
                    );
                }
                None => {
                    step.action = Action::Skip;
                    step.reason = undo
                        .left
                        .iter()
                        .find(|(name, _)| name == &step.name)
                        .map_or_else(
                            || format!("not changed by run {}", undo.run_id),
                            |(_, why)| why.clone(),
                        );
                }
            }
        }
        if let Some(step) = &mut self.terraform {
            step.set_roll(Roll::restore(undo.tags.clone()), config);
        }
        self.undo = Some(undo);
    }

    /// The tag `service` is rolled to: its own in an undo or a promotion, the run's
    /// otherwise.
    pub fn tag_of(&self, service: &str) -> &str {
        self.services
            .iter()
            .find(|step| step.name == service)
            .map_or(&self.image_tag, ServiceStep::tag)
    }

    /// The full id of the commit whose images this run rolls.
    pub fn commit(&self) -> &str {
        self.rollback_to
            .as_ref()
            .map_or(&self.head.sha, |target| &target.sha)
    }

    /// Whether anything at all would be built, pushed or rolled.
    pub fn has_work(&self) -> bool {
        self.touched_services().next().is_some() || self.touched_spas().next().is_some()
    }

    /// The services whose action is `action`.
    pub fn services_to(&self, action: Action) -> impl Iterator<Item = &ServiceStep> {
        self.services.iter().filter(move |s| s.action == action)
    }

    /// The services this run deploys (builds or finds, and rolls).
    pub fn deploying_services(&self) -> impl Iterator<Item = &ServiceStep> {
        self.services_to(Action::Deploy)
    }

    /// Whether `service` is rolled to a recorded image put back, not built.
    pub fn is_restored(&self, service: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.name == service && s.restore.is_some())
    }

    /// The services the run does not skip: deployed, or still to check.
    pub fn touched_services(&self) -> impl Iterator<Item = &ServiceStep> {
        self.services.iter().filter(|s| s.action != Action::Skip)
    }

    /// The SPAs whose action is `action`.
    pub fn spas_to(&self, action: Action) -> impl Iterator<Item = &SpaStep> {
        self.spas.iter().filter(move |s| s.action == action)
    }

    /// The SPAs the run does not skip: deployed, or still to check.
    pub fn touched_spas(&self) -> impl Iterator<Item = &SpaStep> {
        self.spas.iter().filter(|s| s.action != Action::Skip)
    }
}

/// The name of the saved plan file (in a private temp dir during a run).
pub const SAVED_PLAN_NAME: &str = "roll.tfplan";

/// Joins arguments into one line a shell would split back the same way.
pub fn shell_words(args: impl IntoIterator<Item = String>) -> String {
    args.into_iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
