//! Colour for people at a terminal, plain text everywhere else: pipes, files, `NO_COLOR`,
//! `TERM=dumb`. `CLICOLOR_FORCE=1` colours even when the output is not a terminal.
//!
//! Table cells carry a [`Tone`], chosen where the cell is made from what it means, so
//! that every table (plan, summary, status) reads the same way: green for done and
//! healthy, red for failed, yellow for what was left undone or is under way, cyan for
//! what was already there, dim for what was skipped.

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

/// The line of an error message on stderr: `error: <message>`, or the workflow
/// command of an error under GitHub Actions.
pub fn error_line(message: &str) -> String {
    crate::ui::ci::annotation("error", message)
        .unwrap_or_else(|| format!("{} {message}", error_label()))
}

/// `error:` as the start of an error message on stderr.
pub fn error_label() -> String {
    if stderr() {
        paint("error:", RED)
    } else {
        "error:".to_owned()
    }
}

/// What a table cell means, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Done, healthy, deployed.
    Done,
    Failed,
    /// Left undone, or still under way.
    Pending,
    /// Already there: nothing had to be done.
    Known,
    Skipped,
}

impl Tone {
    fn colour(self) -> Option<&'static str> {
        match self {
            Tone::Plain => None,
            Tone::Done => Some(GREEN),
            Tone::Failed => Some(RED),
            Tone::Pending => Some(YELLOW),
            Tone::Known => Some(CYAN),
            Tone::Skipped => Some(DIM),
        }
    }
}

/// A table cell: its text and its tone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl Cell {
    pub fn new(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone,
        }
    }

    pub fn plain(text: impl Into<String>) -> Self {
        Self::new(text, Tone::Plain)
    }

    /// `-`, dimmed: nothing to show.
    pub fn none() -> Self {
        Self::new("-", Tone::Skipped)
    }
}

/// A table cell padded to `width` (when given), in its tone's colour when `colour` is on.
pub fn cell(cell: &Cell, width: Option<usize>, colour: bool) -> String {
    styled(&cell.text, width, cell.tone.colour().filter(|_| colour))
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
    fn cells_are_coloured_by_their_tone_and_padded_by_their_text() {
        let failed = Cell::new("FAILED", Tone::Failed);
        assert_eq!(cell(&failed, Some(8), true), "\x1b[1;31mFAILED\x1b[0m  ");
        assert_eq!(
            cell(&Cell::new("yes (:abc1234)", Tone::Done), None, true),
            "\x1b[32myes (:abc1234)\x1b[0m"
        );
        assert_eq!(
            cell(&Cell::new("skip", Tone::Skipped), Some(6), true),
            "\x1b[2mskip\x1b[0m  "
        );
        assert_eq!(cell(&Cell::plain("api"), Some(5), true), "api  ");
        assert_eq!(cell(&failed, Some(8), false), "FAILED  ");
        assert_eq!(
            cell(&Cell::new("already in registry", Tone::Known), None, true),
            "\x1b[36malready in registry\x1b[0m"
        );
        assert_eq!(
            cell(&Cell::new("not done", Tone::Pending), None, true),
            "\x1b[33mnot done\x1b[0m"
        );
    }

    #[test]
    fn what_a_cell_says_does_not_colour_it() {
        // A service or a reason that happens to start with a status word stays plain.
        for text in ["FAILED", "skip-list", "yes", "- (none)"] {
            assert_eq!(cell(&Cell::plain(text), None, true), text);
        }
    }
}
