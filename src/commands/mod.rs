//! The subcommands besides the deploy itself: `status`, `prune`, `unlock` and `history`.

pub mod history;
pub mod prune;
pub mod status;
pub mod unlock;
