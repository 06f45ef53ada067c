//! Terraform: the apply command a run ends with, the workspace a tfvars file implies,
//! and the installed version.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::{self, TerraformConfig};

/// What the closing `terraform apply` rolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Roll {
    /// Every service, through the global `image_tag` variable (a full deploy).
    All { tag: String },
    /// Exactly these services: `image_tags` for them and `-target` at their resources.
    Only { services: Vec<String>, tag: String },
}

/// A `terraform apply`, as arguments (never through a shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Apply {
    /// The terraform root, relative to the repository root (where terraform runs from).
    pub dir: PathBuf,
    /// The tfvars file as terraform will read it (relative to `dir`, or absolute).
    pub var_file: PathBuf,
    /// The workspace the tfvars file's name implies (`tfvars/sandbox.tfvars` → `sandbox`).
    pub workspace: String,
    pub roll: Roll,
    pub auto_approve: bool,
}

impl Apply {
    /// The arguments after `terraform`.
    pub fn args(&self, config: &TerraformConfig) -> Vec<String> {
        let mut args = vec![
            format!("-chdir={}", self.dir.display()),
            "apply".to_owned(),
            "-input=false".to_owned(),
            format!("-var-file={}", self.var_file.display()),
        ];
        match &self.roll {
            Roll::All { tag } => {
                args.push("-var".to_owned());
                args.push(format!("{}={tag}", config.image_tag_var));
            }
            Roll::Only { services, tag } => {
                let entries: Vec<String> = services
                    .iter()
                    .map(|service| format!("{service:?}={tag:?}"))
                    .collect();
                args.push("-var".to_owned());
                args.push(format!(
                    "{}={{{}}}",
                    config.image_tags_var,
                    entries.join(",")
                ));
                for service in services {
                    for target in &config.targets {
                        args.push(format!("-target={}", config::expand(target, service)));
                    }
                }
            }
        }
        if self.auto_approve {
            args.push("-auto-approve".to_owned());
        }
        args
    }
}

/// The workspace a tfvars file selects: its file name without the extension.
pub fn workspace_for(var_file: &Path) -> Option<String> {
    let name = var_file.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".tfvars.json")
        .or_else(|| name.strip_suffix(".tfvars"))?;
    (!stem.is_empty()).then(|| stem.to_owned())
}

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
    if !output.status.success() {
        bail!(
            "`{} version -json` failed ({}): {}",
            terraform.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .context("`terraform version -json` did not print JSON")?;
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
        if !output.status.success() {
            bail!(
                "`{line}` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
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
            // terraform reads a workspace that does not exist as an empty state.
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

    /// Runs the apply with terraform's own output streaming through (to stderr, so
    /// that stdout stays for results) and its approval prompt on our stdin. On Ctrl-C
    /// terraform (in our process group) stops itself; we wait for it to finish.
    pub async fn apply(&self, args: &[String]) -> Result<()> {
        use std::io::IsTerminal;
        // At a terminal, Ctrl-C reaches terraform with us (one process group), and its
        // approval prompt needs the terminal. From a script, a SIGINT reaches only us:
        // terraform then gets a group of its own and we pass exactly one SIGINT on, since
        // a second one makes terraform abandon the apply.
        let interactive = std::io::stdin().is_terminal();
        let mut command = self.command();
        command
            .args(args)
            .stdin(std::process::Stdio::inherit())
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .stderr(std::process::Stdio::inherit());
        if !interactive {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|err| missing_terraform(&self.bin, &err))?;
        let status = tokio::select! {
            status = child.wait() => status,
            _ = tokio::signal::ctrl_c() => {
                if !interactive {
                    if let Some(pid) = child.id() {
                        let _ = tokio::process::Command::new("kill")
                            .args(["-INT", &pid.to_string()])
                            .status()
                            .await;
                    }
                }
                eprintln!("deploy: interrupted; waiting for terraform to stop cleanly");
                child.wait().await.ok();
                return Err(crate::error::Interrupted::DuringApply.into());
            }
        }
        .context("terraform apply did not run")?;
        if !status.success() {
            bail!("terraform apply failed ({status})");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(roll: Roll) -> Apply {
        Apply {
            dir: "infra/terraform/aws".into(),
            var_file: "tfvars/sandbox.tfvars".into(),
            workspace: "sandbox".into(),
            roll,
            auto_approve: false,
        }
    }

    #[test]
    fn full_roll_sets_the_global_tag() {
        let args = apply(Roll::All {
            tag: "3f2c1ab".into(),
        })
        .args(&TerraformConfig::default());
        assert_eq!(
            args,
            [
                "-chdir=infra/terraform/aws",
                "apply",
                "-input=false",
                "-var-file=tfvars/sandbox.tfvars",
                "-var",
                "image_tag=3f2c1ab"
            ]
        );
    }

    #[test]
    fn partial_roll_targets_only_the_named_services_and_never_sets_image_tag() {
        let mut plan = apply(Roll::Only {
            services: vec!["api".into(), "clinical-api".into()],
            tag: "3f2c1ab".into(),
        });
        plan.auto_approve = true;
        let args = plan.args(&TerraformConfig::default());
        assert!(
            args.contains(&r#"image_tags={"api"="3f2c1ab","clinical-api"="3f2c1ab"}"#.to_owned())
        );
        assert!(!args.iter().any(|arg| arg.starts_with("image_tag=")));
        let targets: Vec<_> = args
            .iter()
            .filter(|arg| arg.starts_with("-target="))
            .collect();
        assert_eq!(
            targets,
            [
                r#"-target=aws_ecs_task_definition.service["api"]"#,
                r#"-target=aws_ecs_service.service["api"]"#,
                r#"-target=aws_ecs_task_definition.service["clinical-api"]"#,
                r#"-target=aws_ecs_service.service["clinical-api"]"#,
            ]
        );
        assert_eq!(args.last().unwrap(), "-auto-approve");
    }

    #[test]
    fn workspace_is_the_tfvars_name() {
        assert_eq!(
            workspace_for(Path::new("tfvars/sandbox.tfvars")).as_deref(),
            Some("sandbox")
        );
        assert_eq!(
            workspace_for(Path::new("/x/prod.tfvars.json")).as_deref(),
            Some("prod")
        );
        assert_eq!(workspace_for(Path::new("tfvars/notes.txt")), None);
    }

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
