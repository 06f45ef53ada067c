//! The one way out: every command's result goes through [`emit`] to stdout, as text or
//! JSON; every warning through [`warn`] to stderr, as `warning: …`. Every JSON document
//! carries `schema_version` first ([`SCHEMA_VERSION`]).

use std::fmt::Display;
use std::io::Write;

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

/// A JSON document: `schema_version`, then the result's own keys.
#[derive(Serialize)]
struct Versioned<'a, T> {
    schema_version: u32,
    #[serde(flatten)]
    document: &'a T,
}

/// Writes `value` as `format` says: its `Display` (the tables for people), or one
/// pretty JSON document (a map, `schema_version` first) and a newline. A failed write
/// (stdout closed) carries [`WritingStdout`], which `main` treats as the reader having
/// gone away.
pub fn emit<T: Serialize + Display>(
    value: &T,
    format: OutputFormat,
    writer: &mut impl Write,
) -> Result<()> {
    match format {
        OutputFormat::Text => write!(writer, "{value}"),
        OutputFormat::Json => {
            let document = Versioned {
                schema_version: SCHEMA_VERSION,
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
    emit(value, format, &mut std::io::stdout().lock())?;
    crate::ui::progress::printed_on_stdout();
    if let Err(message) = crate::ui::ci::step_summary(&value.to_string()) {
        warn(&message);
    }
    Ok(())
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
            "{\n  \"schema_version\": 1,\n  \"name\": \"api\",\n  \"count\": 2\n}\n"
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
