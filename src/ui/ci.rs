//! What CI runners read besides stdout and stderr, from the variables they set:
//!
//! - `GITHUB_ACTIONS=true`: errors and warnings on stderr become workflow commands
//!   (`::error::…`, `::warning::…`), which GitHub shows as annotations on the run and
//!   the pull request, and still as a line of the log.
//! - `GITHUB_STEP_SUMMARY` (a file GitHub renders as Markdown on the run's page): every
//!   result deploy prints on stdout (the plan, the review of the terraform plan, the
//!   run's summary, a status) is appended to it as a text block, whatever `--output`
//!   says, since people read the summary.
//!
//! Decisions are pure functions of the variables' values; the wrappers read them.

use std::io::Write as _;

/// Whether this runs as a GitHub Actions step.
pub fn github_actions() -> bool {
    is_github_actions(std::env::var("GITHUB_ACTIONS").ok().as_deref())
}

fn is_github_actions(value: Option<&str>) -> bool {
    value == Some("true")
}

/// The line of an error (`kind` "error") or warning ("warning") on stderr: the workflow
/// command under GitHub Actions, else `None` (the caller prints its own line).
pub fn annotation(kind: &str, message: &str) -> Option<String> {
    github_actions().then(|| workflow_command(kind, message))
}

/// `::kind::message`, with the message escaped as GitHub's runner unescapes it: a
/// multi-line message stays one command whose annotation keeps its lines.
pub(crate) fn workflow_command(kind: &str, message: &str) -> String {
    let escaped = message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!("::{kind}::{escaped}")
}

/// Appends `text` (a result as deploy prints it for people) to `$GITHUB_STEP_SUMMARY`
/// when the variable names a file. A summary that cannot be written is the message of
/// a warning (the caller's to give), never a failed run.
pub fn step_summary(text: &str) -> Result<(), String> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) else {
        return Ok(());
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| file.write_all(summary_block(text).as_bytes()));
    written.map_err(|err| {
        format!(
            "cannot append to the step summary {} (GITHUB_STEP_SUMMARY): {err}",
            std::path::Path::new(&path).display()
        )
    })
}

/// `text` as a Markdown block that keeps its columns: fenced, without colour codes,
/// with a fence longer than any run of backticks inside it.
pub(crate) fn summary_block(text: &str) -> String {
    let plain = strip_colour(text);
    let longest = plain.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}\n\n", plain.trim_end_matches('\n'))
}

/// Removes SGR sequences (`ESC [ … m`), the only escapes our tables use.
fn strip_colour(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_github_actions_true_counts() {
        assert!(is_github_actions(Some("true")));
        for value in [None, Some(""), Some("false"), Some("1")] {
            assert!(!is_github_actions(value), "{value:?}");
        }
    }

    #[test]
    fn workflow_commands_escape_what_the_runner_unescapes() {
        assert_eq!(
            workflow_command("error", "lock held by ci\nwait: 100%\r"),
            "::error::lock held by ci%0Await: 100%25%0D"
        );
        assert_eq!(workflow_command("warning", "plain"), "::warning::plain");
    }

    #[test]
    fn summary_blocks_are_fenced_plain_text() {
        assert_eq!(
            summary_block("\x1b[1mSERVICE\x1b[0m  ACTION\napi      DEPLOY\n"),
            "```text\nSERVICE  ACTION\napi      DEPLOY\n```\n\n"
        );
        // A command quoted in backticks cannot close the fence.
        assert_eq!(
            summary_block("run ```x```"),
            "````text\nrun ```x```\n````\n\n"
        );
    }
}
