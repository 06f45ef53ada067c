//! `[alarms]` of `deploy.toml`: per service, the CloudWatch alarm names the verify step
//! watches while it follows the service's ECS deployment, for alarms terraform attaches
//! to the service without letting ECS roll back on them (or that the team wants named
//! as deploy's own failure). One in ALARM during the wait fails the service as a failed
//! health check does: deploy asks ECS to roll the deployment back.
//!
//! deploy has no CloudWatch client: it reads an alarm's state where ECS reports it, in
//! the service deployment's `alarms.triggeredAlarmNames`, so a watched alarm must be in
//! the service's `deploymentConfiguration.alarms` (terraform's `alarms` block of
//! `aws_ecs_service`, `rollback = false` to leave the decision to deploy). A watched
//! alarm ECS does not report is named in the run's output, never silently ignored.
//!
//! ```toml
//! [alarms]
//! auth = ["auth-5xx", "auth-latency-p99"]
//! "*" = ["platform-errors"]          # every service
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Service name (or `*`) → alarm names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct AlarmsConfig(pub BTreeMap<String, Vec<String>>);

/// The key naming every service.
pub const EVERY_SERVICE: &str = "*";

impl AlarmsConfig {
    /// The alarms watched for `service`: its own, then those of `*`, each once.
    pub fn of(&self, service: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for key in [service, EVERY_SERVICE] {
            for name in self.0.get(key).into_iter().flatten() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// The services named that are not among `services` (a typo watches nothing).
    pub fn unknown_services<'a>(&'a self, services: &[&str]) -> Vec<&'a str> {
        self.0
            .keys()
            .map(String::as_str)
            .filter(|key| *key != EVERY_SERVICE && !services.contains(key))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_watches_its_own_alarms_then_everyones_once() {
        let config: AlarmsConfig = toml::from_str(
            "auth = [\"auth-5xx\", \"errors\"]\n\"*\" = [\"errors\", \"platform\"]\n",
        )
        .unwrap();
        assert_eq!(config.of("auth"), ["auth-5xx", "errors", "platform"]);
        assert_eq!(config.of("api"), ["errors", "platform"]);
        assert!(AlarmsConfig::default().of("api").is_empty());
        assert_eq!(config.unknown_services(&["api"]), ["auth"]);
        assert!(config.unknown_services(&["api", "auth"]).is_empty());
    }
}
