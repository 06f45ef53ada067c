//! The subcommands besides the deploy itself: `status`, `prune`, `unlock`, `history` and
//! `continue` (`pauses`).

pub mod history;
pub mod pauses;
pub mod prune;
pub mod status;
pub mod unlock;
