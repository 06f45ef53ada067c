//! The one way out: every command's result goes through [`emit`] to stdout, as text or
//! JSON; every warning through [`warn`] to stderr, as `warning: …`. Every JSON document
//! carries `schema_version` first ([`SCHEMA_VERSION`]), then how the command ended
//! ([`Ending`]: `outcome`, and `error` on failure). A command that fails before it has
//! a result still writes one JSON document ([`emit_failure`], from `main`).

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::error::WritingStdout;

/// The version of the JSON documents' shape, the first key of each. Raised when a key
/// is removed or changes meaning (scripts can then refuse what they do not know);
/// added keys keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// How results are written on stdout (`--output`; the command line maps its flag to
/// this, so that no clap type reaches the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Tables for people.
    Text,
    /// One JSON document for scripts.
    Json,
}

/// How a command ended, in every JSON document: the words of the history records'
/// `state` (`succeeded`, `failed`, `interrupted`), and `needs_review` for `deploy diff`'s
/// exit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// By a signal (exit 129, 130 or 143).
    Interrupted,
    /// `deploy diff`: the plan changes more than the deployment (exit 3).
    NeedsReview,
}

/// Why a command did not succeed: the message printed on stderr, the exit status, and
/// the step of the run it stopped in (when a run had begun).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub message: String,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// `outcome`, and `error` (`null` when it succeeded): the keys after `schema_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ending {
    pub outcome: Outcome,
    pub error: Option<Failure>,
}

impl Ending {
    pub const SUCCEEDED: Ending = Ending {
        outcome: Outcome::Succeeded,
        error: None,
    };

    /// How `result` ended: its error as `main` prints it (`verbose` as `-v` says), its
    /// exit code, and `step` when the run had one.
    pub fn of(result: &Result<()>, verbose: u8, step: Option<&str>) -> Self {
        let Err(err) = result else {
            return Self::SUCCEEDED;
        };
        let code = crate::error::exit_code_for(err);
        Self::failed(crate::error::render(err, verbose), code as i32, step)
    }

    /// A failure given by its message and exit code (clap's errors, which are no
    /// `anyhow::Error`).
    pub fn failed(message: String, exit_code: i32, step: Option<&str>) -> Self {
        use crate::error::ExitCode;
        let outcome = match exit_code {
            code if code == ExitCode::NeedsReview as i32 => Outcome::NeedsReview,
            code if [
                ExitCode::Interrupted,
                ExitCode::Hangup,
                ExitCode::Terminated,
            ]
            .iter()
            .any(|c| *c as i32 == code) =>
            {
                Outcome::Interrupted
            }
            _ => Outcome::Failed,
        };
        Self {
            outcome,
            error: Some(Failure {
                message,
                exit_code,
                step: step.map(str::to_owned),
            }),
        }
    }
}

/// A JSON document: `schema_version`, `outcome`, `error`, then the result's own keys.
#[derive(Serialize)]
struct Versioned<'a, T> {
    schema_version: u32,
    #[serde(flatten)]
    ending: &'a Ending,
    #[serde(flatten)]
    document: &'a T,
}

/// Whether a JSON document went to stdout: `main` then adds none for an error.
static DOCUMENT_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Writes `value` as `format` says: its `Display` (the tables for people), or one
/// pretty JSON document (a map, `schema_version` first, `outcome` succeeded) and a
/// newline. A failed write (stdout closed) carries [`WritingStdout`], which `main`
/// treats as the reader having gone away.
pub fn emit<T: Serialize + Display>(
    value: &T,
    format: OutputFormat,
    writer: &mut impl Write,
) -> Result<()> {
    emit_ended(value, format, &Ending::SUCCEEDED, writer)
}

/// [`emit`] for a command that ended as `ending` says (the text shows the result only;
/// the error goes to stderr from `main`).
pub fn emit_ended<T: Serialize + Display>(
    value: &T,
    format: OutputFormat,
    ending: &Ending,
    writer: &mut impl Write,
) -> Result<()> {
    match format {
        OutputFormat::Text => write!(writer, "{value}"),
        OutputFormat::Json => {
            let document = Versioned {
                schema_version: SCHEMA_VERSION,
                ending,
                document: value,
            };
            writeln!(writer, "{}", serde_json::to_string_pretty(&document)?)
        }
    }
    .and_then(|()| writer.flush())
    .context(WritingStdout)
}

/// [`emit`] to stdout, and the text to the CI step summary when there is one
/// ([`crate::ui::ci::step_summary`]).
pub fn emit_stdout<T: Serialize + Display>(value: &T, format: OutputFormat) -> Result<()> {
    emit_stdout_ended(value, format, &Ending::SUCCEEDED)
}

/// [`emit_ended`] to stdout, and the text to the CI step summary when there is one.
pub fn emit_stdout_ended<T: Serialize + Display>(
    value: &T,
    format: OutputFormat,
    ending: &Ending,
) -> Result<()> {
    if format == OutputFormat::Json {
        DOCUMENT_WRITTEN.store(true, Ordering::Relaxed);
    }
    emit_ended(value, format, ending, &mut std::io::stdout().lock())?;
    crate::ui::progress::printed_on_stdout();
    if let Err(message) = crate::ui::ci::step_summary(&value.to_string()) {
        warn(&message);
    }
    Ok(())
}

/// A command that failed before it had a result (flags, config, a check): with
/// `--output json`, one document saying so on stdout, unless the command already wrote
/// its own. The message stays on stderr too (`main` prints it).
pub fn emit_failure(ending: &Ending, format: OutputFormat) {
    if format != OutputFormat::Json || DOCUMENT_WRITTEN.swap(true, Ordering::Relaxed) {
        return;
    }
    // Nothing to say if stdout is gone: the error still reaches stderr.
    let _ = write_failure(ending, &mut std::io::stdout().lock());
}

fn write_failure(ending: &Ending, writer: &mut impl Write) -> Result<()> {
    #[derive(Serialize)]
    struct Nothing {}
    impl Display for Nothing {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Ok(())
        }
    }
    emit_ended(&Nothing {}, OutputFormat::Json, ending, writer)
}

/// A warning on stderr, `warning: <message>`. One policy: warnings are never silenced,
/// `-q` included (it hides progress and diagnostics), because each one says something
/// about the state of the world the operator must act on (a lock left held, a run
/// without the lock, a disk about to fill).
///
/// Progress bars draw on stderr too: a warning during a run goes through
/// [`crate::ui::progress::Progress::warn`], which prints it above them.
pub fn warn(message: &str) {
    eprintln!("{}", warning_line(message));
}

/// `warning: <message>`, or the workflow command of a warning under GitHub Actions.
pub(crate) fn warning_line(message: &str) -> String {
    warning_line_for(message, crate::ui::ci::github_actions())
}

fn warning_line_for(message: &str, github: bool) -> String {
    if github {
        crate::ui::ci::workflow_command("warning", message)
    } else {
        format!("warning: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Answer {
        name: &'static str,
        count: usize,
    }

    impl Display for Answer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            writeln!(f, "{}: {}", self.name, self.count)
        }
    }

    #[test]
    fn text_is_the_display_and_json_one_document() {
        let answer = Answer {
            name: "api",
            count: 2,
        };
        let mut text = Vec::new();
        emit(&answer, OutputFormat::Text, &mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), "api: 2\n");
        let mut json = Vec::new();
        emit(&answer, OutputFormat::Json, &mut json).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\n  \"schema_version\": 1,\n  \"outcome\": \"succeeded\",\n  \"error\": null,\n  \"name\": \"api\",\n  \"count\": 2\n}\n"
        );
    }

    fn json(value: &impl Serialize, ending: &Ending) -> serde_json::Value {
        serde_json::to_value(Versioned {
            schema_version: SCHEMA_VERSION,
            ending,
            document: value,
        })
        .unwrap()
    }

    #[test]
    fn a_failed_command_says_so_with_its_error_exit_code_and_step() {
        let failed: Result<()> =
            Err(anyhow::anyhow!("auth: build failed").context("build and push"));
        let ending = Ending::of(&failed, 0, Some("build and push"));
        let document = json(&serde_json::json!({"images": []}), &ending);
        assert_eq!(document["outcome"], "failed");
        assert_eq!(
            document["error"],
            serde_json::json!({
                "message": "build and push: auth: build failed",
                "exit_code": 1,
                "step": "build and push"
            })
        );
        assert_eq!(document["images"], serde_json::json!([]));
        assert_eq!(Ending::of(&Ok(()), 0, Some("roll")), Ending::SUCCEEDED);
    }

    #[test]
    fn the_outcome_follows_the_exit_code() {
        let usage: Result<()> = Err(crate::error::UsageError::new("no --var-file").into());
        let ending = Ending::of(&usage, 0, None);
        assert_eq!(ending.outcome, Outcome::Failed);
        assert_eq!(ending.error.as_ref().map(|e| e.exit_code), Some(2));
        let review: Result<()> = Err(crate::error::NeedsReview("outside".into()).into());
        assert_eq!(Ending::of(&review, 0, None).outcome, Outcome::NeedsReview);
        for code in [129, 130, 143] {
            let ending = Ending::failed("interrupted".into(), code, Some("roll"));
            assert_eq!(ending.outcome, Outcome::Interrupted, "{code}");
        }
    }

    #[test]
    fn a_failure_without_a_result_is_one_document_with_the_error() {
        let mut out = Vec::new();
        write_failure(
            &Ending::failed("unknown flag --frobnicate".into(), 2, None),
            &mut out,
        )
        .unwrap();
        let document: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "outcome": "failed",
                "error": {"message": "unknown flag --frobnicate", "exit_code": 2}
            })
        );
    }

    /// A reader that went away (`deploy status | head -1`).
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_is_an_error_main_recognises() {
        let answer = Answer {
            name: "api",
            count: 2,
        };
        for format in [OutputFormat::Text, OutputFormat::Json] {
            let err = emit(&answer, format, &mut Closed).unwrap_err();
            assert!(crate::error::stdout_closed(&err), "{format:?}: {err:#}");
        }
    }

    #[test]
    fn warnings_say_warning() {
        assert_eq!(warning_line_for("no lock", false), "warning: no lock");
        assert_eq!(warning_line_for("no lock", true), "::warning::no lock");
    }
}
