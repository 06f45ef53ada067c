//! The alarms `deploy.toml` watches per service (`[alarms]`) during the wait: read where
//! ECS reports them, in the followed deployment's alarm configuration (deploy has no
//! CloudWatch client). One in ALARM while the deployment runs fails the service, and
//! deploy asks ECS to roll the deployment back.

use super::DeploymentView;

/// The watched alarms ECS reports in ALARM for this deployment.
pub fn in_alarm(view: &DeploymentView, watched: &[String]) -> Vec<String> {
    watched
        .iter()
        .filter(|name| view.triggered_alarms.contains(name))
        .cloned()
        .collect()
}

/// The watched alarms that are not in the deployment's alarm configuration: ECS does
/// not report their state, so deploy cannot tell when they fire.
pub fn unreported(view: &DeploymentView, watched: &[String]) -> Vec<String> {
    watched
        .iter()
        .filter(|name| !view.alarms.contains(name))
        .cloned()
        .collect()
}

/// The item's line when some watched alarms cannot be watched.
pub fn unreported_line(names: &[String]) -> String {
    format!(
        "cannot watch alarm(s) {} ([alarms] of deploy.toml): they are not in the service's deploymentConfiguration.alarms, so ECS does not report their state (deploy reads alarms only through ECS)",
        names.join(", ")
    )
}

/// Why deploy asked ECS to roll back, for the record.
pub fn rollback_reason(names: &[String]) -> String {
    format!(
        "alarm {} in ALARM ([alarms] of deploy.toml)",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watched_alarms_ecs_reports_count() {
        let view = DeploymentView {
            alarms: vec!["auth-5xx".into(), "auth-latency".into()],
            triggered_alarms: vec!["auth-latency".into()],
            ..Default::default()
        };
        let watched = vec!["auth-latency".to_owned(), "auth-cpu".to_owned()];
        assert_eq!(in_alarm(&view, &watched), ["auth-latency"]);
        assert_eq!(unreported(&view, &watched), ["auth-cpu"]);
        assert!(in_alarm(&view, &[]).is_empty());
        assert!(rollback_reason(&watched[..1]).starts_with("alarm auth-latency in ALARM"));
    }
}
