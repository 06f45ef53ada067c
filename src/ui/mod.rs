//! What the operator sees: progress on stderr, styled tables and labels, and the
//! diagnostics set up by `-v`/`-q`/`RUST_LOG`.

pub mod logging;
pub mod progress;
pub mod style;
