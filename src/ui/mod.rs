//! What the operator sees: results on stdout (`output`, as text or JSON), the plan's
//! table (`plan`), progress and warnings on stderr, aligned tables (`table`), styled
//! labels, the diagnostics set up by `-v`/`-q`/`RUST_LOG`, and what CI runners read
//! (`ci`: annotations, the step summary). It takes plain values: nothing of `cli`, no
//! clap.

pub mod ci;
pub mod history;
pub mod logging;
pub mod output;
pub mod plan;
pub mod progress;
pub mod style;
pub mod table;
