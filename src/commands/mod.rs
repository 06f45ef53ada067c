//! The subcommands besides the deploy itself: `status`, `prune`, `unlock` and `history`;
//! and the candidates the shell completions ask for (`complete`). `continue`, which
//! reconciles through the pipeline, is `deploy::pauses`.

pub mod complete;
pub mod history;
pub mod prune;
pub mod status;
pub mod unlock;
