//! Terraform: the CLI run from the repository root (workspace, outputs, state, the
//! apply), and the installed version. The apply's arguments are a value of the plan
//! (`crate::model::plan::terraform`); what happens to its output is in `output`, the
//! backend `terraform init` recorded in `backend`.

mod backend;
mod output;
mod plan;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Interrupted, Stage};
use crate::process::Signal;
use anyhow::{Context, Result};

pub use crate::model::plan::terraform::{
    addresses_of, hcl_string, targets_of, unmatched_targets, within, workspace_for, Apply,
    PlanOptions, Roll,
};
pub use backend::state_bucket;
use output::{colour_wanted, forward};
pub use output::{ApplyFailed, OutputFilter};
pub use plan::{
    AddressChange, ChangeKind, ImageChange, PlanDiff, Review, ServiceDiff, ServiceResources,
};

/// A terraform version, as `terraform version -json` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest terraform the runbook supports.
pub const MINIMUM_VERSION: Version = Version {
    major: 1,
    minor: 6,
    patch: 0,
};

impl Version {
    /// Parses `1.15.5`, `v1.6.0`, `1.7.0-beta1` (pre-release suffixes are ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

/// Runs `terraform version -json` and returns the version.
pub fn installed_version(terraform: &Path) -> Result<Version> {
    let output = Command::new(terraform)
        .args(["version", "-json"])
        .output()
        .map_err(|err| missing_terraform(terraform, &err))?;
    let line = format!("{} version -json", terraform.display());
    let stdout = crate::process::stdout_of(&line, output)?;
    let json: serde_json::Value =
        serde_json::from_str(&stdout).context("`terraform version -json` did not print JSON")?;
    let text = json["terraform_version"]
        .as_str()
        .context("`terraform version -json` has no terraform_version")?;
    Version::parse(text).with_context(|| format!("cannot parse terraform version {text:?}"))
}

fn missing_terraform(terraform: &Path, err: &std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{} not found on PATH: install terraform >= {MINIMUM_VERSION} (or pass --skip-tf to push without rolling)",
            terraform.display()
        )
    } else {
        anyhow::anyhow!("cannot run {}: {err}", terraform.display())
    }
}

/// The terraform CLI, run from the repository root against one terraform directory,
/// with the AWS profile of the run in its environment.
#[derive(Clone)]
pub struct Terraform {
    pub bin: PathBuf,
    pub repo_root: PathBuf,
    pub dir: PathBuf,
    pub profile: Option<String>,
    /// Read this workspace's state instead of the selected one (`TF_WORKSPACE`); used
    /// by read-only commands that name their environment. Deploys leave it unset: they
    /// require the selected workspace to match the tfvars (runbook).
    pub workspace: Option<String>,
}

impl Terraform {
    /// A terraform command in the repository root, with the run's AWS profile.
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bin);
        command.current_dir(&self.repo_root);
        if let Some(workspace) = &self.workspace {
            command.env("TF_WORKSPACE", workspace);
        }
        if let Some(profile) = &self.profile {
            // The same account as the rest of the run: the profile, not stray static keys.
            command
                .env("AWS_PROFILE", profile)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN");
        }
        command
    }

    async fn output_of(&self, args: &[&str]) -> Result<String> {
        let line = format!("terraform -chdir={} {}", self.dir.display(), args.join(" "));
        let output = self
            .command()
            .arg(format!("-chdir={}", self.dir.display()))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|err| missing_terraform(&self.bin, &err))?;
        crate::process::stdout_of(&line, output)
    }

    /// `terraform workspace show`: the selected workspace's name.
    pub async fn selected_workspace(&self) -> Result<String> {
        Ok(self
            .output_of(&["workspace", "show"])
            .await?
            .trim()
            .to_owned())
    }

    /// Checks that the selected workspace is the one the tfvars file names.
    pub async fn check_workspace(&self, expected: &str) -> Result<()> {
        let current = self.output_of(&["workspace", "show"]).await?;
        let current = current.trim();
        if current == expected {
            return Ok(());
        }
        let exists = self.workspace_exists(expected).await;
        let fix = if exists {
            format!(
                "terraform -chdir={} workspace select {expected}",
                self.dir.display()
            )
        } else {
            format!(
                "terraform -chdir={} workspace new {expected}   (no workspace {expected} exists yet)",
                self.dir.display()
            )
        };
        Err(crate::error::UsageError::new(format!(
            "the terraform workspace is {current:?} but the tfvars file is for {expected:?}; nothing was touched. Run:\n  {fix}"
        ))
        .into())
    }

    /// Whether `terraform workspace list` has `name` (false when it cannot tell).
    async fn workspace_exists(&self, name: &str) -> bool {
        let selected = Terraform {
            workspace: None,
            ..self.clone()
        };
        selected
            .output_of(&["workspace", "list"])
            .await
            .unwrap_or_default()
            .lines()
            .any(|line| line.trim_start_matches('*').trim() == name)
    }

    /// `terraform output -json`, as a map of output name to value.
    pub async fn outputs(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        if let Some(workspace) = &self.workspace {
            // terraform reads a workspace that does not exist as an empty state (and
            // creates its directory): checked first, never read.
            if !self.workspace_exists(workspace).await {
                return Err(crate::error::UsageError::new(format!(
                    "the terraform workspace {workspace:?} (named by the tfvars file) does not exist, so there is no {workspace} environment to read; nothing was touched. Create it with\n  terraform -chdir={} workspace new {workspace}\nand deploy it",
                    self.dir.display()
                ))
                .into());
            }
        }
        let text = self.output_of(&["output", "-json"]).await?;
        let json: serde_json::Value =
            serde_json::from_str(&text).context("`terraform output -json` did not print JSON")?;
        Ok(json
            .as_object()
            .map(|outputs| {
                outputs
                    .iter()
                    .map(|(name, output)| (name.clone(), output["value"].clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `terraform state list`: every resource address in the selected workspace's state.
    pub async fn state_addresses(&self) -> Result<Vec<String>> {
        let text = self.output_of(&["state", "list"]).await?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// `terraform plan -out=<file>` (arguments from [`Apply::plan_args`]). Its listing
    /// is not shown: the review of the saved plan ([`Review`]) says the same per service,
    /// without values. When it fails, its diagnostics are shown and its `Error:`
    /// summaries carried in [`ApplyFailed`]. Dropped (Ctrl-C in preflight), terraform is
    /// killed: a plan writes no state.
    pub async fn plan(&self, args: &[String]) -> Result<()> {
        let mut args = args.to_vec();
        let at = args.iter().position(|a| a == "plan").map_or(0, |i| i + 1);
        args.insert(at, "-no-color".to_owned());
        let output = self
            .command()
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|err| missing_terraform(&self.bin, &err))?;
        if output.status.success() {
            return Ok(());
        }
        // Only the diagnostics (stderr): stdout holds the plan's listing, whose values
        // are not ours to print.
        let mut filter = OutputFilter::new(true);
        let mut shown = Vec::new();
        filter.feed(&output.stderr, &mut shown);
        filter.finish(&mut shown);
        {
            use std::io::Write;
            let _ = std::io::stderr().write_all(&shown);
        }
        Err(ApplyFailed {
            command: "plan",
            status: output.status.to_string(),
            errors: filter.errors,
        }
        .into())
    }

    /// `terraform show -json <planfile>`, read into a [`PlanDiff`]. The document holds
    /// every value (sensitive ones and tfvars included): it is parsed, never printed.
    pub async fn show_plan(&self, planfile: &Path) -> Result<PlanDiff> {
        let planfile = planfile.display().to_string();
        let text = self.output_of(&["show", "-json", &planfile]).await?;
        PlanDiff::from_show_json(&text)
    }

    /// Runs the apply with terraform's own output streaming through (to stderr, so
    /// that stdout stays for results) and its approval prompt on our stdin. On SIGINT,
    /// SIGTERM or SIGHUP terraform gets one SIGINT and stops itself; we wait for it to
    /// finish, so that its state and state lock are never left behind.
    ///
    /// The output passes through an [`OutputFilter`]: it keeps terraform's `Error:`
    /// summaries for our message, and with `hide_targeting` drops the warnings that
    /// every `-target` apply prints (the caller says in one line that the roll is
    /// targeted on purpose).
    pub async fn apply(&self, args: &[String], hide_targeting: bool) -> Result<()> {
        use std::io::IsTerminal;
        // At a terminal, Ctrl-C reaches terraform with us (one process group), and its
        // approval prompt needs the terminal. From a script, a signal reaches only us:
        // terraform then gets a group of its own and we pass exactly one SIGINT on to
        // that group, since a second one makes terraform abandon the apply. The group,
        // as Ctrl-C at a terminal: terraform kills only the shell of a provisioner that
        // is running, and what that shell started would go on changing the world after
        // terraform wrote its state.
        let interactive = std::io::stdin().is_terminal();
        let mut args = args.to_vec();
        if !colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ) {
            // terraform colours whatever its output is; a log or a pipe gets escapes.
            let at = args.iter().position(|a| a == "apply").map_or(0, |i| i + 1);
            args.insert(at, "-no-color".to_owned());
        }
        let mut command = self.command();
        command
            .args(&args)
            .stdin(std::process::Stdio::inherit())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if !interactive {
            command.process_group(0);
        }
        // A signal that came before the apply began: nothing is applied at all.
        if let Some(signal) = crate::signals::received() {
            return Err(Interrupted::new(Stage::BeforeRoll, signal).into());
        }
        let mut child = command
            .spawn()
            .map_err(|err| missing_terraform(&self.bin, &err))?;
        let stdout = forward(child.stdout.take(), OutputFilter::new(hide_targeting));
        let stderr = forward(child.stderr.take(), OutputFilter::new(hide_targeting));
        let status = tokio::select! {
            status = child.wait() => status,
            signal = crate::signals::interrupted() => {
                // Exactly one SIGINT reaches terraform: at a terminal Ctrl-C's came with
                // ours; any other signal (SIGTERM from CI, SIGHUP) reached only us.
                match (child.id(), interactive) {
                    (Some(group), false) => crate::process::signal_group(group, Signal::Interrupt),
                    (Some(pid), true) if signal != Signal::Interrupt => {
                        crate::process::signal(pid, Signal::Interrupt)
                    }
                    _ => {}
                }
                eprintln!(
                    "deploy: {}; waiting for terraform to stop cleanly",
                    crate::error::interrupted_by(signal)
                );
                let group = child.id().filter(|_| !interactive);
                child.wait().await.ok();
                // terraform has stopped, but a provisioner it started after the SIGINT,
                // or whose shell alone it killed, may still run in its group and change
                // the world after the state was written: what terraform abandoned ends.
                if let Some(group) = group {
                    crate::process::signal_group(group, Signal::Terminate);
                }
                let _ = (stdout.await, stderr.await);
                return Err(Interrupted::new(Stage::DuringApply, signal).into());
            }
        }
        .context("terraform apply did not run")?;
        let mut errors = stderr.await.unwrap_or_default();
        errors.extend(stdout.await.unwrap_or_default());
        if !status.success() {
            return Err(ApplyFailed {
                command: "apply",
                status: status.to_string(),
                errors,
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(
            Version::parse("1.15.5"),
            Some(Version {
                major: 1,
                minor: 15,
                patch: 5
            })
        );
        assert_eq!(Version::parse("v1.6.0-beta1").unwrap().to_string(), "1.6.0");
        assert!(Version::parse("1.5.7").unwrap() < MINIMUM_VERSION);
        assert!(Version::parse("1.10.0").unwrap() > MINIMUM_VERSION);
        assert_eq!(Version::parse("banana"), None);
    }
}
