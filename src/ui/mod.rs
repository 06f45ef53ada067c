//! What the operator sees: results on stdout (`output`), progress and warnings on
//! stderr, aligned tables (`table`), styled labels, and the diagnostics set up by
//! `-v`/`-q`/`RUST_LOG`, and what CI runners read (`ci`: annotations, the step summary).

pub mod ci;
pub mod history;
pub mod logging;
pub mod output;
pub mod progress;
pub mod style;
pub mod table;
