//! The subcommands besides the deploy itself: `status`, `unlock` and `prune`.

pub mod prune;
pub mod status;
