//! Terraform: the apply command a run ends with, the workspace a tfvars file implies,
//! and the installed version.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::model::config::{self, TerraformConfig};

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
                    .map(|service| format!("{}={}", hcl_string(service), hcl_string(tag)))
                    .collect();
                args.push("-var".to_owned());
                args.push(format!(
                    "{}={{{}}}",
                    config.image_tags_var,
                    entries.join(",")
                ));
                // A root may declare `image_tag` without a default (natural when every
                // full deploy sets it), and terraform then refuses any apply that leaves
                // it unset, targeted or not. The -targets below confine the apply to the
                // planned services, whose `image_tags` entries win, so giving the global
                // variable the roll's tag too changes nothing else.
                args.push("-var".to_owned());
                args.push(format!("{}={tag}", config.image_tag_var));
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

    /// Runs the apply with terraform's own output streaming through (to stderr, so
    /// that stdout stays for results) and its approval prompt on our stdin. On Ctrl-C
    /// terraform (in our process group) stops itself; we wait for it to finish.
    ///
    /// The output passes through an [`OutputFilter`]: it keeps terraform's `Error:`
    /// summaries for our message, and with `hide_targeting` drops the warnings that
    /// every `-target` apply prints (the caller says in one line that the roll is
    /// targeted on purpose).
    pub async fn apply(&self, args: &[String], hide_targeting: bool) -> Result<()> {
        use std::io::IsTerminal;
        // At a terminal, Ctrl-C reaches terraform with us (one process group), and its
        // approval prompt needs the terminal. From a script, a SIGINT reaches only us:
        // terraform then gets a group of its own and we pass exactly one SIGINT on, since
        // a second one makes terraform abandon the apply.
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
        let mut child = command
            .spawn()
            .map_err(|err| missing_terraform(&self.bin, &err))?;
        let stdout = forward(child.stdout.take(), OutputFilter::new(hide_targeting));
        let stderr = forward(child.stderr.take(), OutputFilter::new(hide_targeting));
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
                let _ = (stdout.await, stderr.await);
                return Err(crate::error::Interrupted::DuringApply.into());
            }
        }
        .context("terraform apply did not run")?;
        let mut errors = stderr.await.unwrap_or_default();
        errors.extend(stdout.await.unwrap_or_default());
        if !status.success() {
            return Err(ApplyFailed {
                status: status.to_string(),
                errors,
            }
            .into());
        }
        Ok(())
    }
}

/// Whether terraform may colour its output: only at a terminal, and never under
/// `NO_COLOR` (<https://no-color.org>: set and not empty).
fn colour_wanted(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Copies one of terraform's output streams to our stderr through `filter`, as it
/// comes (a prompt without a newline included); returns the `Error:` summaries seen.
fn forward<R>(stream: Option<R>, mut filter: OutputFilter) -> tokio::task::JoinHandle<Vec<String>>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        use std::io::Write;
        use tokio::io::AsyncReadExt;
        let Some(mut stream) = stream else {
            return Vec::new();
        };
        let mut buffer = vec![0u8; 16 * 1024];
        let mut shown = Vec::new();
        loop {
            let read = match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            shown.clear();
            filter.feed(&buffer[..read], &mut shown);
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&shown);
            let _ = stderr.flush();
        }
        shown.clear();
        filter.finish(&mut shown);
        let _ = std::io::stderr().write_all(&shown);
        filter.errors
    })
}

/// The warnings terraform prints on every `-target` plan and apply. A targeted roll is
/// how deploy rolls some services and not others, on purpose, every time.
const TARGETING_WARNINGS: [&str; 2] = [
    "Warning: Resource targeting is in effect",
    "Warning: Applied changes may be incomplete",
];

/// A line-by-line pass over terraform's output. Diagnostics come as boxes:
///
/// ```text
/// ╷
/// │ Error: No value for required variable
/// │ ...
/// ╵
/// ```
///
/// A box is held back until its first line tells what it is, so that the targeting
/// warnings can be dropped whole; everything else goes through unchanged, and a
/// partial line (terraform's `Enter a value:` prompt) goes through at once.
pub struct OutputFilter {
    hide_targeting: bool,
    /// The bytes of the line being read, not yet passed on.
    line: Vec<u8>,
    /// Whether the start of the current line was already passed on (a prompt).
    line_passed: bool,
    block: Block,
    /// The `Error:` summaries, without the box and colours.
    pub errors: Vec<String>,
}

enum Block {
    None,
    /// The box's opening line, held until the next line says what the box is.
    Opening(Vec<u8>),
    Showing,
    Hiding,
    /// Inside a targeting warning printed without a box (`-no-color`): it ends at the
    /// first paragraph that is not about `-target`. A blank line was swallowed when
    /// `blank` is set.
    HidingPlain {
        blank: bool,
    },
}

impl OutputFilter {
    pub fn new(hide_targeting: bool) -> Self {
        Self {
            hide_targeting,
            line: Vec::new(),
            line_passed: false,
            block: Block::None,
            errors: Vec::new(),
        }
    }

    /// Takes the next bytes of output; appends what is to be shown to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &byte in bytes {
            if self.line_passed {
                out.push(byte);
                if byte == b'\n' {
                    self.line_passed = false;
                }
                continue;
            }
            self.line.push(byte);
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.complete_line(line, out);
            }
        }
        // A partial line outside a box is a prompt waiting for its answer: show it now.
        if !self.line.is_empty() && matches!(self.block, Block::None | Block::Showing) {
            let text = plain(&self.line);
            if !text.starts_with(['╷', '│', '╵']) {
                out.append(&mut self.line);
                self.line_passed = true;
            }
        }
    }

    /// The output ended: shows whatever was still held.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Block::Opening(held) = std::mem::replace(&mut self.block, Block::None) {
            out.extend(held);
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.complete_line(line, out);
        }
    }

    fn complete_line(&mut self, line: Vec<u8>, out: &mut Vec<u8>) {
        let text = plain(&line);
        let content = text.trim_start_matches('│').trim();
        if let Some(summary) = content.strip_prefix("Error: ") {
            self.errors.push(summary.trim().to_owned());
        }
        let targeting = TARGETING_WARNINGS.contains(&content);
        self.block = match std::mem::replace(&mut self.block, Block::None) {
            Block::None if text.starts_with('╷') => Block::Opening(line),
            Block::None if self.hide_targeting && targeting => Block::HidingPlain { blank: false },
            Block::HidingPlain { .. } if text.is_empty() => Block::HidingPlain { blank: true },
            // A paragraph of the warning, or the next warning of the pair.
            Block::HidingPlain { blank } if !blank || targeting || text.contains("-target") => {
                Block::HidingPlain { blank: false }
            }
            Block::HidingPlain { .. } => {
                out.push(b'\n');
                out.extend(line);
                Block::None
            }
            Block::None => {
                out.extend(line);
                Block::None
            }
            Block::Opening(held) => {
                if self.hide_targeting && targeting {
                    Block::Hiding
                } else {
                    out.extend(held);
                    out.extend(line);
                    Block::Showing
                }
            }
            Block::Showing => {
                out.extend(line);
                if text.starts_with('╵') {
                    Block::None
                } else {
                    Block::Showing
                }
            }
            Block::Hiding if text.starts_with('╵') => Block::None,
            Block::Hiding => Block::Hiding,
        };
    }
}

/// A line of terraform output without its colour escapes and surrounding blanks.
fn plain(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.trim().to_owned()
}

/// `terraform apply` exited non-zero. Carries terraform's own `Error:` summaries, so
/// that the message says why, and whether running again can help.
#[derive(Debug)]
pub struct ApplyFailed {
    pub status: String,
    pub errors: Vec<String>,
}

/// Errors a second attempt can get past: the network, throttling, a lock held by a
/// run that ends. Lowercase fragments of terraform's and the AWS provider's messages.
const TRANSIENT: [&str; 14] = [
    "error acquiring the state lock",
    "timeout",
    "timed out",
    "connection refused",
    "connection reset",
    "no such host",
    "tls handshake",
    "throttl",
    "rate exceeded",
    "too many requests",
    "requestlimitexceeded",
    "serviceunavailable",
    "service unavailable",
    "unexpected eof",
];

impl ApplyFailed {
    /// Whether running the same command again can succeed without a fix.
    pub fn transient(&self) -> bool {
        !self.errors.is_empty()
            && self.errors.iter().all(|error| {
                let error = error.to_lowercase();
                TRANSIENT.iter().any(|fragment| error.contains(fragment))
            })
    }

    /// What to do about it, for the end of the message.
    pub fn advice(&self, var_file: &Path) -> String {
        let has = |fragment: &str| self.errors.iter().any(|e| e.contains(fragment));
        if has("Error acquiring the state lock") {
            "another terraform run holds the state lock: wait for it to finish and run the same command again (`terraform force-unlock <ID>` only if that run is gone)".to_owned()
        } else if self.transient() {
            "this looks transient: run the same command again".to_owned()
        } else if has("No value for required variable") {
            format!(
                "the terraform root requires a variable deploy does not set: give it a value in {} (running again without that fails the same way)",
                var_file.display()
            )
        } else if self.errors.is_empty() {
            "terraform's output above says why; fix that, then run the same command again"
                .to_owned()
        } else {
            "running again fails the same way until that is fixed: fix it (terraform code, tfvars, or the resource it names), then run the same command again".to_owned()
        }
    }
}

impl std::fmt::Display for ApplyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "terraform apply failed ({})", self.status)?;
        for error in &self.errors {
            write!(f, "\n  Error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyFailed {}

/// A value as an HCL quoted string (for `-var 'name={"key"="value"}'`). Rust's `{:?}`
/// is not HCL: it writes `\u{e9}` for é, which terraform rejects.
pub fn hcl_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            // `${` and `%{` open template sequences; doubling the sign escapes them.
            '$' | '%' if chars.peek() == Some(&'{') => {
                quoted.push(c);
                quoted.push(c);
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The `-target` addresses that match nothing terraform knows: not in the state, and
/// not a new instance of a resource the state has (a service added to a `for_each`
/// would be created, and so is fine). An empty state (an environment never applied)
/// would create everything: nothing is reported then.
pub fn unmatched_targets<'a>(targets: &'a [String], state: &[String]) -> Vec<&'a str> {
    if state.is_empty() {
        return Vec::new();
    }
    let covers = |target: &str, address: &str| {
        address == target
            || address
                .strip_prefix(target)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    targets
        .iter()
        .map(String::as_str)
        .filter(|target| {
            let resource = resource_of(target);
            !state
                .iter()
                .any(|address| covers(target, address) || resource_of(address) == resource)
        })
        .collect()
}

/// An address without its final instance key: `a.b["x"]` → `a.b`.
fn resource_of(address: &str) -> &str {
    match address.strip_suffix(']').and_then(|a| a.rfind('[')) {
        Some(open) => &address[..open],
        None => address,
    }
}

/// The state's addresses that look like they belong to `service` (an instance key or
/// a name part equal to it), to show where a target should point.
pub fn addresses_of<'a>(service: &str, state: &'a [String]) -> Vec<&'a str> {
    let key = format!("[{}]", hcl_string(service));
    state
        .iter()
        .map(String::as_str)
        .filter(|address| {
            address.contains(&key)
                || address
                    .split(['.', '[', ']'])
                    .any(|part| part == service || part.trim_matches('"') == service)
        })
        .collect()
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
    fn partial_roll_targets_only_the_named_services_and_gives_image_tag_the_same_tag() {
        let mut plan = apply(Roll::Only {
            services: vec!["api".into(), "clinical-api".into()],
            tag: "3f2c1ab".into(),
        });
        plan.auto_approve = true;
        let args = plan.args(&TerraformConfig::default());
        assert!(
            args.contains(&r#"image_tags={"api"="3f2c1ab","clinical-api"="3f2c1ab"}"#.to_owned())
        );
        // A root whose image_tag has no default refuses an apply without it; the
        // targets keep it from reaching any other service.
        assert!(args.contains(&"image_tag=3f2c1ab".to_owned()));
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

    #[test]
    fn hcl_strings_escape_quotes_templates_and_controls_but_not_unicode() {
        assert_eq!(hcl_string("api"), r#""api""#);
        assert_eq!(hcl_string("café"), "\"café\"");
        assert_eq!(hcl_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(hcl_string("${x} %{y} $z"), r#""$${x} %%{y} $z""#);
        assert_eq!(hcl_string("a\nb\u{7}"), r#""a\nb\u0007""#);
    }

    fn filtered(hide: bool, chunks: &[&[u8]]) -> (String, Vec<String>) {
        let mut filter = OutputFilter::new(hide);
        let mut out = Vec::new();
        for chunk in chunks {
            filter.feed(chunk, &mut out);
        }
        filter.finish(&mut out);
        (String::from_utf8(out).unwrap(), filter.errors)
    }

    const TARGETING: &str = "╷\n│ Warning: Resource targeting is in effect\n│ \n│ You are creating a plan with the -target option.\n╵\n";

    #[test]
    fn targeting_warnings_are_dropped_whole_and_other_boxes_kept() {
        let other = "╷\n│ Warning: Deprecated attribute\n│ \n│ x is deprecated.\n╵\n";
        let input = format!("Plan: 2 to add\n{TARGETING}{other}Apply complete!\n");
        let (shown, errors) = filtered(true, &[input.as_bytes()]);
        assert_eq!(shown, format!("Plan: 2 to add\n{other}Apply complete!\n"));
        assert!(errors.is_empty());
        // Not hidden when the roll is not targeted; reads may split lines and characters.
        let bytes = input.as_bytes();
        let (shown, _) = filtered(false, &[&bytes[..20], &bytes[20..]]);
        assert_eq!(shown, input);
        let mid = input.find("Resource").unwrap();
        let (shown, _) = filtered(true, &[&bytes[..mid], &bytes[mid..]]);
        assert!(!shown.contains("targeting"), "{shown}");
    }

    #[test]
    fn targeting_warnings_without_boxes_are_dropped_up_to_the_next_paragraph() {
        // What terraform 1.15 prints with -no-color after a targeted apply.
        let input = "x: Creation complete after 0s\n\nWarning: Resource targeting is in effect\n\nYou are creating a plan with the -target option, which means that the result\nof this plan may not represent all of the changes.\n\nThe -target option is not for routine use.\n\nWarning: Applied changes may be incomplete\n\nThe plan was created with the -target option in effect, so some changes\nchanges are pending:\n    terraform plan\n\nNote that the -target option is not suitable for routine use.\n\nApply complete! Resources: 2 added, 0 changed, 2 destroyed.\n\nOutputs:\n";
        let (shown, _) = filtered(true, &[input.as_bytes()]);
        assert_eq!(
            shown,
            "x: Creation complete after 0s\n\n\nApply complete! Resources: 2 added, 0 changed, 2 destroyed.\n\nOutputs:\n"
        );
        // Before the approval prompt, the prompt's paragraph ends the warning.
        let input = "Warning: Resource targeting is in effect\n\nYou are creating a plan with the -target option.\n\nDo you want to perform these actions?\n  Enter a value: ";
        let (shown, _) = filtered(true, &[input.as_bytes()]);
        assert_eq!(
            shown,
            "\nDo you want to perform these actions?\n  Enter a value: "
        );
        let (shown, _) = filtered(false, &[input.as_bytes()]);
        assert_eq!(shown, input);
    }

    #[test]
    fn coloured_error_summaries_are_collected() {
        let input = "\u{1b}[31m╷\u{1b}[0m\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\u{1b}[1m\u{1b}[31mError: \u{1b}[0m\u{1b}[0m\u{1b}[1mNo value for required variable\u{1b}[0m\n\u{1b}[31m│\u{1b}[0m \u{1b}[0m\n\u{1b}[31m╵\u{1b}[0m\u{1b}[0m\n";
        let (shown, errors) = filtered(true, &[input.as_bytes()]);
        assert_eq!(shown, input);
        assert_eq!(errors, ["No value for required variable"]);
    }

    #[test]
    fn a_prompt_without_newline_is_shown_at_once() {
        let mut filter = OutputFilter::new(true);
        let mut out = Vec::new();
        filter.feed(
            b"Do you want to perform these actions?\n  Enter a value: ",
            &mut out,
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Do you want to perform these actions?\n  Enter a value: "
        );
        out.clear();
        filter.feed(b"\n\nApply complete!\n", &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "\n\nApply complete!\n");
    }

    fn failed(errors: &[&str]) -> ApplyFailed {
        ApplyFailed {
            status: "exit status: 1".into(),
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn only_transient_failures_are_worth_a_plain_rerun() {
        let var_file = Path::new("tfvars/sandbox.tfvars");
        let required = failed(&["No value for required variable"]);
        assert!(!required.transient());
        assert!(required.advice(var_file).contains("tfvars/sandbox.tfvars"));
        assert!(!required.advice(var_file).contains("this looks transient"));
        let provisioner = failed(&["local-exec provisioner error"]);
        assert!(!provisioner.transient());
        assert!(provisioner.advice(var_file).contains("fails the same way"));
        let network = failed(&["reading ECS Service: dial tcp: i/o timeout"]);
        assert!(network.transient());
        assert!(network
            .advice(var_file)
            .contains("run the same command again"));
        let locked = failed(&["Error acquiring the state lock"]);
        assert!(locked.advice(var_file).contains("force-unlock"));
        // One real error among transient ones still needs a fix.
        assert!(!failed(&["timeout", "Invalid reference"]).transient());
        assert!(!failed(&[]).transient());
        assert_eq!(
            failed(&["a", "b"]).to_string(),
            "terraform apply failed (exit status: 1)\n  Error: a\n  Error: b"
        );
    }

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(colour_wanted(true, Some("".into())));
    }

    fn owned(addresses: &[&str]) -> Vec<String> {
        addresses.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn targets_must_match_the_state_or_be_new_instances_of_its_resources() {
        let state = owned(&[
            r#"terraform_data.task_definition["api"]"#,
            r#"terraform_data.service["api"]"#,
            r#"module.ecs["auth"].aws_ecs_service.this"#,
        ]);
        let good = owned(&[
            r#"terraform_data.task_definition["api"]"#,
            // A new service: a new instance of a resource the state has.
            r#"terraform_data.service["billing"]"#,
            // A whole module instance, and a resource without its key.
            r#"module.ecs["auth"]"#,
            "terraform_data.service",
        ]);
        assert!(unmatched_targets(&good, &state).is_empty());
        let bad = owned(&[
            r#"aws_ecs_service.service["api"]"#,
            r#"module.ecs["auth"].aws_ecs_task_definition.this"#,
            r#"terraform_data.task_definitions["api"]"#,
        ]);
        assert_eq!(
            unmatched_targets(&bad, &state),
            bad.iter().map(String::as_str).collect::<Vec<_>>()
        );
        // Nothing applied yet: everything would be created.
        assert!(unmatched_targets(&bad, &[]).is_empty());
        assert_eq!(
            addresses_of("api", &state),
            [
                r#"terraform_data.task_definition["api"]"#,
                r#"terraform_data.service["api"]"#
            ]
        );
        assert_eq!(
            addresses_of("auth", &state),
            [r#"module.ecs["auth"].aws_ecs_service.this"#]
        );
    }
}
