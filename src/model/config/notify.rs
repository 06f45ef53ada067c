//! `[notify]`: the webhook told when a run starts, succeeds or fails (sent by
//! `crate::notify`), and what deploy.toml may say about it.

use serde::{Deserialize, Serialize};

/// A Slack-compatible webhook told when a run starts, succeeds or fails. The URL is
/// a secret: deploy.toml names the environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// The environment variable holding the webhook URL; unset: no notifications.
    pub webhook_env: Option<String>,
    /// How long one attempt may take, in seconds.
    pub timeout_secs: u64,
    /// Attempts per message (connection errors, timeouts, 429 and 5xx are retried).
    pub attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhook_env: None,
            timeout_secs: 5,
            attempts: 3,
        }
    }
}

impl NotifyConfig {
    /// Checked when deploy.toml is loaded: the variable's name, never a URL.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(variable) = &self.webhook_env {
            let name_like = !variable.is_empty()
                && variable
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_like {
                return Err(format!(
                    "notify.webhook_env must name an environment variable (e.g. \"DEPLOY_WEBHOOK_URL\"), not hold the URL: {}",
                    if variable.contains("://") {
                        "put the URL in that variable, never in deploy.toml"
                    } else {
                        "letters, digits and _ only"
                    }
                ));
            }
        }
        if self.timeout_secs == 0 {
            return Err("notify.timeout_secs must be at least 1".into());
        }
        if !(1..=10).contains(&self.attempts) {
            return Err("notify.attempts must be between 1 and 10".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_a_variable_never_a_url() {
        let config = |env: &str| NotifyConfig {
            webhook_env: Some(env.into()),
            ..NotifyConfig::default()
        };
        assert!(config("DEPLOY_WEBHOOK_URL").validate().is_ok());
        assert!(NotifyConfig::default().validate().is_ok());
        let err = config("https://hooks.slack.com/services/x")
            .validate()
            .unwrap_err();
        assert!(err.contains("never in deploy.toml"), "{err}");
        assert!(!err.contains("hooks.slack.com"), "{err}");
        assert!(config("").validate().is_err());
        assert!(NotifyConfig {
            attempts: 0,
            ..NotifyConfig::default()
        }
        .validate()
        .is_err());
    }
}
