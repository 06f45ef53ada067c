//! The subcommands besides the deploy itself: `status`, `prune`, `unlock` and `history`.

pub mod history;
pub mod prune;
pub mod status;
pub mod unlock;

use anyhow::Result;

use crate::changes::live;
use crate::model::environment::{Environment, Outputs};
use crate::model::platform::Platform;

/// The environment of `workspace` (the selected one when `None`). Its terraform
/// outputs are read unless `config_suffices` (deploy.toml names what the caller
/// needs); they are returned when read, for a caller that needs them again.
pub(crate) async fn read_environment(
    platform: &Platform,
    profile: Option<&str>,
    workspace: Option<&str>,
    config_suffices: bool,
) -> Result<(Environment, Option<Outputs>)> {
    let outputs = if config_suffices {
        None
    } else {
        Some(
            live::terraform_of(platform, profile, workspace)
                .outputs()
                .await?,
        )
    };
    let environment = crate::checkout::read_environment(
        platform,
        workspace,
        outputs.as_ref().unwrap_or(&Outputs::new()),
    )?;
    Ok((environment, outputs))
}
