//! Progress on stderr: a live line per service on a terminal (indicatif), plain
//! `service: state` lines otherwise, nothing with `--quiet`. [`settle`] stops the live
//! lines before an error is printed, so that `error:` starts on a line of its own.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, WeakProgressBar};

/// Every live line of this process, whichever [`Progress`] drew it: an error ends the
/// run wherever it is, while items may still be held (by a task being cancelled) and
/// ticking, and would draw over the error line.
static LIVE: Mutex<Vec<WeakProgressBar>> = Mutex::new(Vec::new());
/// Whether the last thing drawn at the terminal is a live line, with the cursor at its
/// end: set by each live line, cleared once results are printed below them.
static AFTER_A_LIVE_LINE: AtomicBool = AtomicBool::new(false);

/// Before an error is printed: every live line still drawn stops where it is (its
/// spinner no longer redraws the lines, which would overwrite what follows) and, when
/// the cursor is still at the end of the last one, it goes to the start of a line of its
/// own, written to `stderr`. Nothing when no live line was drawn (not a terminal,
/// `--quiet`) or results were printed below them (the summary).
pub fn settle(stderr: &mut impl Write) {
    let bars = LIVE
        .lock()
        .map(|mut live| std::mem::take(&mut *live))
        .unwrap_or_default();
    for bar in bars.iter().filter_map(WeakProgressBar::upgrade) {
        stop(&bar);
    }
    if AFTER_A_LIVE_LINE.swap(false, Ordering::SeqCst) {
        // indicatif pads the last live line to the terminal's width and leaves the
        // cursor there: back to its start, then down, so that no blank line is left
        // where the terminal would have wrapped anyway.
        let _ = stderr.write_all(b"\r\n");
        let _ = stderr.flush();
    }
}

/// Results were printed on stdout, ending their last line: at a terminal, below the
/// live lines, so the error after them needs no line of its own.
pub fn printed_on_stdout() {
    printed_below(std::io::stdout().is_terminal());
}

fn printed_below(at_the_terminal: bool) {
    if at_the_terminal {
        AFTER_A_LIVE_LINE.store(false, Ordering::SeqCst);
    }
}

/// Stops a live line where it is (its last state drawn once more).
fn stop(bar: &ProgressBar) {
    bar.disable_steady_tick();
    if !bar.is_finished() {
        bar.abandon();
    }
}

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    quiet: bool,
    /// Per item not finished: what it still had to do ([`ItemProgress::leaves`]).
    left: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        if !quiet && std::io::stderr().is_terminal() {
            Self::live(ProgressDrawTarget::stderr())
        } else {
            Self {
                multi: None,
                quiet,
                left: Arc::default(),
            }
        }
    }

    /// Live lines drawn on `target` (a terminal, or a test's).
    fn live(target: ProgressDrawTarget) -> Self {
        Self {
            multi: Some(MultiProgress::with_draw_target(target)),
            quiet: false,
            left: Arc::default(),
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
            AFTER_A_LIVE_LINE.store(true, Ordering::SeqCst);
            if let Ok(mut live) = LIVE.lock() {
                live.retain(|bar| bar.upgrade().is_some());
                live.push(bar.downgrade());
            }
            bar
        });
        ItemProgress {
            name: name.to_owned(),
            bar,
            quiet: self.quiet,
            left: Arc::clone(&self.left),
        }
    }

    /// What the items that never finished still had to do, as they last said it
    /// ([`ItemProgress::leaves`]): for the message of a wait cut short.
    pub fn unfinished(&self) -> Vec<(String, String)> {
        self.left
            .lock()
            .map(|left| left.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
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
    left: Arc<Mutex<BTreeMap<String, String>>>,
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

    /// What this item still has to do should the run stop before it finishes (shown by
    /// [`Progress::unfinished`]; forgotten when it finishes).
    pub fn leaves(&self, what: &str) {
        if let Ok(mut left) = self.left.lock() {
            left.insert(self.name.clone(), what.to_owned());
        }
    }

    pub fn finish(&self, message: &str) {
        if let Ok(mut left) = self.left.lock() {
            left.remove(&self.name);
        }
        match &self.bar {
            Some(bar) => bar.finish_with_message(message.to_owned()),
            None if !self.quiet => eprintln!("{}: {message}", self.name),
            None => {}
        }
    }
}

/// An item dropped before it finished: its run ended mid-way (an error, a task that was
/// cancelled). Its line stays as it was last drawn, and no longer ticks.
impl Drop for ItemProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            stop(bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    #[test]
    fn an_item_cut_short_leaves_what_it_said_it_still_had_to_do() {
        let progress = Progress::new(true);
        let cut = progress.item("auth");
        cut.leaves("its CANARY deployment is at BAKE_TIME");
        let done = progress.item("api");
        done.leaves("its ROLLING deployment is at SCALE_UP");
        done.finish("steady");
        drop(cut);
        assert_eq!(
            progress.unfinished(),
            [(
                "auth".to_owned(),
                "its CANARY deployment is at BAKE_TIME".to_owned()
            )]
        );
    }

    /// A terminal that records what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn write(&self, text: &str) {
            self.0.lock().unwrap().push_str(text);
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            60
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.write(&format!("<up {n}>"));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.write(&format!("<down {n}>"));
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, line: &str) -> std::io::Result<()> {
            self.write(&format!("{line}\n"));
            Ok(())
        }
        fn write_str(&self, text: &str) -> std::io::Result<()> {
            self.write(text);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.write("<clear>");
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The error after a live line: the line stops ticking, keeps its last state, and
    /// the cursor is put at the start of a fresh line; nothing is drawn afterwards. After
    /// results printed below the lines, nothing is added. (One test: the live lines are
    /// the process's.)
    #[test]
    fn settle_stops_the_live_lines_and_starts_a_fresh_line() {
        let screen = Screen::default();
        let progress = Progress::live(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        let item = progress.item("api");
        item.state("pushing api:abc1234");
        std::thread::sleep(Duration::from_millis(300));
        let mut stderr = Vec::new();
        settle(&mut stderr);
        assert_eq!(stderr, b"\r\n");
        let bar = item.bar.as_ref().unwrap();
        assert!(bar.is_finished());
        let drawn = screen.text();
        assert!(drawn.contains("pushing api:abc1234"), "{drawn:?}");
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(screen.text(), drawn, "nothing is drawn after settle");
        // Once settled, a second error has nothing to settle.
        let mut again = Vec::new();
        settle(&mut again);
        assert!(again.is_empty());

        // An item dropped mid-way (its task cancelled by the error) stops too.
        let cut = progress.item("files");
        cut.state("building");
        let weak = cut.bar.as_ref().unwrap().downgrade();
        drop(cut);
        assert!(weak.upgrade().is_none_or(|bar| bar.is_finished()));
        // Results printed below the lines at the terminal end their own line...
        printed_below(true);
        let mut stderr = Vec::new();
        settle(&mut stderr);
        assert!(stderr.is_empty());
        // ... but not when stdout is elsewhere: the cursor is still after the lines.
        let done = progress.item("auth");
        done.finish("pushed");
        printed_below(false);
        let mut stderr = Vec::new();
        settle(&mut stderr);
        assert_eq!(stderr, b"\r\n");
    }
}
