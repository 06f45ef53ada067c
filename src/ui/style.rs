//! Colour for people at a terminal, plain text everywhere else: pipes, files, `NO_COLOR`,
//! `TERM=dumb`. `CLICOLOR_FORCE=1` colours even when the output is not a terminal.
//!
//! Tables are coloured by what a cell says, so that every table (plan, summary, status)
//! reads the same way: green for done and healthy, red for failed, yellow for what was
//! left undone, dim for what was skipped.

use std::io::IsTerminal;
use std::sync::OnceLock;

const BOLD: &str = "1";
const DIM: &str = "2";
const RED: &str = "1;31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";

/// Whether stdout gets colour.
pub fn stdout() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| from_env(std::io::stdout().is_terminal()))
}

/// Whether stderr gets colour.
pub fn stderr() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| from_env(std::io::stderr().is_terminal()))
}

fn from_env(terminal: bool) -> bool {
    decide(terminal, |name| std::env::var(name).ok())
}

/// The conventions: NO_COLOR (any value) wins, then CLICOLOR_FORCE, then a terminal
/// that is not `dumb`.
fn decide(terminal: bool, var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|value| !value.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if var("CLICOLOR_FORCE").is_some_and(|value| !value.is_empty() && value != "0") {
        return true;
    }
    terminal && var("TERM").as_deref() != Some("dumb")
}

/// `text` in the SGR colour `code`.
fn paint(text: &str, code: &str) -> String {
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A table header, padded to `width` (when given), bold when `colour` is on.
pub fn header(text: &str, width: Option<usize>, colour: bool) -> String {
    styled(text, width, (colour && !text.is_empty()).then_some(BOLD))
}

/// `text` in colour `code` (if any), then the padding to `width`: the padding is
/// counted on the text alone and stays outside the colour.
fn styled(text: &str, width: Option<usize>, code: Option<&str>) -> String {
    let pad = width
        .map(|width| " ".repeat(width.saturating_sub(text.chars().count())))
        .unwrap_or_default();
    match code {
        Some(code) => format!("{}{pad}", paint(text, code)),
        None => format!("{text}{pad}"),
    }
}

/// `error:` as the start of an error message on stderr.
pub fn error_label() -> String {
    if stderr() {
        paint("error:", RED)
    } else {
        "error:".to_owned()
    }
}

/// The colour a table cell gets, from what it says.
fn cell_colour(text: &str) -> Option<&'static str> {
    let first = text.split_whitespace().next().unwrap_or_default();
    match first {
        "FAILED" | "NO" | "UNHEALTHY" | "ERROR" => Some(RED),
        "DEPLOY" | "yes" | "built," | "COMPLETED" => Some(GREEN),
        "IN_PROGRESS" | "PRIMARY" => Some(YELLOW),
        "already" => Some(CYAN),
        "skip" | "skipped" | "-" => Some(DIM),
        _ if text == "not done" => Some(YELLOW),
        _ => None,
    }
}

/// A table cell padded to `width` (when given), coloured when `colour` is on.
pub fn cell(text: &str, width: Option<usize>, colour: bool) -> String {
    styled(text, width, cell_colour(text).filter(|_| colour))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn colour_follows_the_conventions() {
        assert!(decide(true, env(&[("TERM", "xterm")])));
        assert!(!decide(false, env(&[("TERM", "xterm")])), "not a terminal");
        assert!(!decide(true, env(&[("TERM", "dumb")])));
        assert!(!decide(true, env(&[("NO_COLOR", "1")])));
        assert!(decide(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!decide(false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(
            !decide(true, env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")])),
            "NO_COLOR wins"
        );
    }

    #[test]
    fn cells_are_coloured_by_what_they_say_and_padded_by_their_text() {
        assert_eq!(cell("FAILED", Some(8), true), "\x1b[1;31mFAILED\x1b[0m  ");
        assert_eq!(
            cell("yes (:abc1234)", None, true),
            "\x1b[32myes (:abc1234)\x1b[0m"
        );
        assert_eq!(cell("skip", Some(6), true), "\x1b[2mskip\x1b[0m  ");
        assert_eq!(cell("api", Some(5), true), "api  ");
        assert_eq!(cell("FAILED", Some(8), false), "FAILED  ");
    }
}
