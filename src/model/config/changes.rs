//! `[changes]` of `deploy.toml`: how `--changed` tells what changed (the runbook's rule,
//! or the workspace graph), with graph mode's extra inputs and ignores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How `--changed` tells what changed since the live image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangesMode {
    /// The runbook's rule: a service's directory, and any shared package or build input
    /// for every service.
    #[default]
    Runbook,
    /// The pnpm workspace graph and the lockfile by importer: only what a service (or
    /// SPA) depends on; SPAs included.
    Graph,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangesConfig {
    pub mode: ChangesMode,
    /// Graph mode: changed paths matching these globs count for nothing
    /// (`**/*.md`, `**/*.test.ts`).
    pub ignore: Vec<String>,
    /// Graph mode: extra input globs of every service (`infra/docker/**`).
    pub inputs: Vec<String>,
    /// Graph mode: extra input globs per service, on top of `inputs`.
    pub service_inputs: BTreeMap<String, Vec<String>>,
}

impl ChangesConfig {
    /// The extra input globs of `service`.
    pub fn inputs_of(&self, service: &str) -> Vec<&str> {
        self.inputs
            .iter()
            .chain(self.service_inputs.get(service).into_iter().flatten())
            .map(String::as_str)
            .collect()
    }
}
