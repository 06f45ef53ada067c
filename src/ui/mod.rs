//! What the operator sees: progress on stderr, aligned tables, styled labels, and the
//! diagnostics set up by `-v`/`-q`/`RUST_LOG`.

pub mod logging;
pub mod progress;
pub mod style;
pub mod table;
