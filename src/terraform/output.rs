//! terraform's output on its way to our stderr: colour only at a terminal, its
//! targeting warnings dropped on purpose-targeted rolls, its `Error:` lines kept for our
//! message, and what a failed apply means for running again.

use std::path::Path;

/// Whether terraform may colour its output: only at a terminal, and never under
/// `NO_COLOR` (<https://no-color.org>: set and not empty).
pub(super) fn colour_wanted(
    stderr_is_terminal: bool,
    no_color: Option<std::ffi::OsString>,
) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Copies one of terraform's output streams to our stderr through `filter`, as it
/// comes (a prompt without a newline included); returns the `Error:` summaries seen.
pub(super) fn forward<R>(
    stream: Option<R>,
    mut filter: OutputFilter,
) -> tokio::task::JoinHandle<Vec<String>>
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

/// `terraform plan` or `terraform apply` exited non-zero. Carries terraform's own `Error:` summaries, so
/// that the message says why, and whether running again can help.
#[derive(Debug)]
pub struct ApplyFailed {
    /// `plan` or `apply`: the terraform command that failed.
    pub command: &'static str,
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
        if has("Saved plan is stale") {
            "the environment's terraform state changed after this run planned its roll (another terraform run); terraform applied nothing. Run the same command again to plan and review anew".to_owned()
        } else if has("Error acquiring the state lock") {
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
        write!(f, "terraform {} failed ({})", self.command, self.status)?;
        for error in &self.errors {
            write!(f, "\n  Error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyFailed {}

#[cfg(test)]
mod tests {
    use super::*;

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
            command: "apply",
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
        // A saved plan applied after another run changed the state: nothing applied,
        // and a fresh run plans (and shows) again.
        let stale = failed(&["Saved plan is stale"]);
        assert!(stale.advice(var_file).contains("terraform applied nothing"));
        assert!(stale.advice(var_file).contains("plan and review anew"));
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
}
