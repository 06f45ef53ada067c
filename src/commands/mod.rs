//! The subcommands besides the deploy itself: `status`, `prune`, `unlock`, `history` and
//! `continue` (`pauses`); and the candidates the shell completions ask for (`complete`).

pub mod complete;
pub mod history;
pub mod pauses;
pub mod prune;
pub mod status;
pub mod unlock;
