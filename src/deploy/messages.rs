//! What a run says to the operator besides progress: the plan, the typed `y`, the
//! account summary, and the state of the world in failure messages.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::source::ImageSource;
use crate::docker::images::{ImageResult, ImageStatus};
use crate::error::{UsageError, WritingStdout};
use crate::model::plan::{Mode, Plan};
use crate::report::RunReport;
use crate::request::{Globals, Request};
use crate::ui::output::{emit_stdout, emit_stdout_ended, Ending, OutputFormat};

/// Step 2's output: the plan as a table (JSON says it in the summary instead), and,
/// when there is nothing to do, the summary or a sentence saying so. Whether the run
/// has work.
pub(super) fn show_plan(plan: &Plan, output: OutputFormat, to: &mut Document) -> Result<bool> {
    if output == OutputFormat::Text {
        emit_stdout(plan, output)?;
    }
    if plan.has_work() {
        return Ok(true);
    }
    if output == OutputFormat::Json {
        to.emit(&RunReport::new(plan).document(), output, &Ending::SUCCEEDED)?;
    } else {
        writeln!(
            std::io::stdout().lock(),
            "\nNothing changed since the live images: nothing to build, push or roll."
        )
        .context(WritingStdout)?;
    }
    Ok(false)
}

/// Step 11: the summary of what was done, and with `--output json` how the run ended
/// (its error, and the step it stopped in).
pub(super) fn summarise(
    run: &super::Run<'_>,
    report: &RunReport,
    outcome: &Result<()>,
    globals: &Globals,
    to: &mut Document,
) -> Result<()> {
    let step = run.stages.current().name();
    let ending = Ending::of(outcome, globals.verbose, Some(step));
    to.emit(&report.document(), globals.output, &ending)
}

/// Where a run's `--output json` document goes: stdout, or kept for the command that
/// runs the pipeline inside its own and prints one document (`continue`'s reconcile).
/// The text goes to stdout either way.
pub enum Document {
    Stdout,
    Kept(Option<serde_json::Value>),
}

impl Document {
    fn emit<T: Serialize + Display>(
        &mut self,
        value: &T,
        output: OutputFormat,
        ending: &Ending,
    ) -> Result<()> {
        match self {
            Document::Kept(kept) if output == OutputFormat::Json => {
                let mut document = serde_json::to_value(ending)?;
                if let (Some(map), serde_json::Value::Object(own)) =
                    (document.as_object_mut(), serde_json::to_value(value)?)
                {
                    map.extend(own);
                }
                *kept = Some(document);
                Ok(())
            }
            _ => emit_stdout_ended(value, output, ending),
        }
    }
}

/// Never wait for input that cannot come (SPEC §3): fail before touching anything.
/// Checked once the plan is known: nothing to do needs no confirmation.
pub(super) fn require_a_way_to_confirm(request: &Request) -> Result<()> {
    if request.assume_yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(UsageError::new(
        "no terminal to confirm on and -y not given; pass -y (with --profile) to deploy without the prompt. Nothing was touched",
    )
    .into())
}

/// Step 4: the operator types `y`, or nothing is touched.
pub(super) fn confirm(source: ImageSource) -> Result<()> {
    let (prompt, not_confirmed) = source.confirmation();
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the confirmation")?;
    if answer.trim() == "y" {
        Ok(())
    } else {
        Err(UsageError::new(not_confirmed).into())
    }
}

/// Who the run is about to act as, and on what: the account summary of step 3.
pub(super) struct AccountSummary<'a> {
    pub account: &'a str,
    pub arn: &'a str,
    pub region: String,
    pub profile: Option<&'a str>,
    pub plan: &'a Plan,
}

impl std::fmt::Display for AccountSummary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plan = self.plan;
        let deploying = plan
            .services
            .iter()
            .filter(|s| s.action == crate::model::plan::Action::Deploy)
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>();
        write!(
            f,
            "AWS account {} as {}\n  region     {}\n  profile    {}\n  workspace  {}\n  git        {} ({})\n  services   {}",
            self.account,
            self.arn,
            self.region,
            self.profile.unwrap_or("(default credential chain)"),
            plan.terraform
                .as_ref()
                .map(|t| t.apply.workspace.as_str())
                .unwrap_or("- (--skip-tf)"),
            plan.image_tag,
            plan.commit(),
            deploying.join(", "),
        )?;
        let restored: Vec<String> = plan
            .spas
            .iter()
            .filter_map(|s| {
                let release = s.restore.as_ref()?;
                let short = &release.git_sha[..release.git_sha.len().min(7)];
                Some(format!(
                    "{} → release #{} ({short})",
                    s.name, release.number
                ))
            })
            .collect();
        let spas = if restored.is_empty() {
            "SPAs are left as they are".to_owned()
        } else {
            format!("SPAs: {}", restored.join(", "))
        };
        if plan.mode == Mode::Rollback {
            write!(
                f,
                "\n  rollback   to {}; HEAD is {}; {spas}",
                plan.image_tag, plan.head.short_sha
            )?;
        } else if plan.mode == Mode::Undo && !restored.is_empty() {
            write!(f, "\n  undo       {spas}")?;
        }
        if !plan.uncommitted.is_empty() {
            write!(
                f,
                "\n  note       images are built from commit {}: {} uncommitted path(s) are NOT included",
                plan.image_tag,
                plan.uncommitted.len()
            )?;
        }
        Ok(())
    }
}

/// "Pushed: a, b. Already in the registry: c. Not pushed: d" for failure messages.
pub(super) fn pushed_sentence(images: &[ImageResult]) -> String {
    let names = |wanted: &[ImageStatus]| -> String {
        let list: Vec<&str> = images
            .iter()
            .filter(|r| wanted.contains(&r.status))
            .map(|r| r.service.as_str())
            .collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    };
    format!(
        "Pushed: {}. Already in the registry: {}. Not pushed: {}",
        names(&[ImageStatus::Pushed, ImageStatus::Copied]),
        names(&[ImageStatus::AlreadyInRegistry]),
        names(&[ImageStatus::Failed, ImageStatus::NotStarted]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(service: &str, status: ImageStatus) -> ImageResult {
        ImageResult {
            service: service.into(),
            image: format!("registry/{service}:abc1234"),
            status,
            build_secs: None,
            push_secs: None,
            error: None,
            dependency_stage: None,
        }
    }

    #[test]
    fn the_pushed_sentence_names_every_image_by_its_state() {
        assert_eq!(
            pushed_sentence(&[]),
            "Pushed: none. Already in the registry: none. Not pushed: none"
        );
        assert_eq!(
            pushed_sentence(&[
                image("api", ImageStatus::Pushed),
                image("auth", ImageStatus::AlreadyInRegistry),
                image("files", ImageStatus::Failed),
                image("ai", ImageStatus::NotStarted),
                image("chat", ImageStatus::Pushed),
            ]),
            "Pushed: api, chat. Already in the registry: auth. Not pushed: files, ai"
        );
    }
}
