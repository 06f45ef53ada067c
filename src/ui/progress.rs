//! Progress on stderr: a live line per service on a terminal (indicatif), plain
//! `service: state` lines otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let live = !quiet && std::io::stderr().is_terminal();
        Self {
            multi: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            quiet,
        }
    }

    /// A line of progress for one item (a service, an SPA).
    pub fn item(&self, name: &str) -> ItemProgress {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<16} {elapsed:>4} {wide_msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        ItemProgress {
            name: name.to_owned(),
            bar,
            quiet: self.quiet,
        }
    }

    /// A message that is not about one item.
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        self.println(message);
    }

    /// [`crate::ui::output::warn`] during a run: the same line and policy (never
    /// silenced), printed above the live lines so that they do not overwrite it.
    pub fn warn(&self, message: &str) {
        self.println(&crate::ui::output::warning_line(message));
    }

    fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

pub struct ItemProgress {
    name: String,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl ItemProgress {
    /// A change of state worth a plain line (`building`, `pushed`, ...).
    pub fn state(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None if !self.quiet => eprintln!("{}: {message}", self.name),
            None => {}
        }
    }

    /// Fine-grained detail: shown live on a terminal, dropped otherwise.
    pub fn detail(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.chars().take(120).collect::<String>());
        }
    }

    pub fn finish(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(message.to_owned()),
            None if !self.quiet => eprintln!("{}: {message}", self.name),
            None => {}
        }
    }
}
