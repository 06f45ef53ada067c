//! Webhook notifications: a Slack-compatible JSON message when a run starts, succeeds
//! or fails, POSTed to the URL held by the environment variable `notify.webhook_env`
//! names. The URL is a secret (for Slack it is the credential itself): it is never
//! printed or logged, and a failure is described without it. A webhook that fails is
//! one warning per run, never a failed deploy: each message has a short timeout and
//! a bounded number of attempts, and once one failed the others get one try each.
//! Its settings, and their check when deploy.toml is read, are
//! `model::config::NotifyConfig`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use serde::Serialize;
use serde_json::json;

use crate::http::Https;
use crate::model::config::NotifyConfig;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Started,
    Succeeded,
    Failed,
}

/// One notification: who runs what where, and how it ended. Holds nothing secret:
/// the error is the message the operator sees on stderr, cut to its first line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub event: Event,
    /// The terraform workspace, or `none (--skip-tf)`.
    pub environment: String,
    /// `full deploy`, `rollback`, ...
    pub mode: String,
    /// `user@host`, and the AWS caller when known.
    pub who: String,
    /// The services rolled (or built and pushed, with `--skip-tf`).
    pub services: Vec<String>,
    /// The SPAs uploaded.
    pub spas: Vec<String>,
    /// The image tag: the short SHA of the commit deployed (or rolled back to).
    pub sha: String,
    /// Seconds since the run started; `None` in the start message.
    pub duration_secs: Option<f64>,
    /// The step that failed (`build and push`, `roll`, `verify`, ...).
    pub failed_step: Option<String>,
    pub error: Option<String>,
}

/// The longest error kept in a message: the first line, cut here.
const ERROR_CHARS: usize = 300;

impl Notice {
    /// Cuts an error message to what a chat message should carry.
    pub fn short_error(message: &str) -> String {
        let first = message.lines().next().unwrap_or_default();
        match first.char_indices().nth(ERROR_CHARS) {
            Some((at, _)) => format!("{}…", &first[..at]),
            None => first.to_owned(),
        }
    }

    /// The message as Slack's incoming webhooks take it: `text` for the notification
    /// itself and one attachment whose fields carry each value (other chat tools that
    /// accept Slack's format read `text`).
    pub fn to_slack(&self) -> serde_json::Value {
        let what = match self.event {
            Event::Started => "started",
            Event::Succeeded => "succeeded",
            Event::Failed => "FAILED",
        };
        let mut text = format!(
            "deploy to {}: {} of {} {what} ({})",
            self.environment, self.mode, self.sha, self.who
        );
        if let Some(secs) = self.duration_secs {
            text.push_str(&format!(" after {}", human_duration(secs)));
        }
        if let Some(step) = &self.failed_step {
            text.push_str(&format!(" at {step}"));
        }
        let services = if self.services.is_empty() {
            "none".to_owned()
        } else {
            self.services.join(", ")
        };
        let mut fields = vec![
            field("environment", &self.environment, true),
            field("mode", &self.mode, true),
            field("sha", &self.sha, true),
            field("who", &self.who, true),
            field("services", &services, false),
        ];
        if !self.spas.is_empty() {
            fields.push(field("spas", &self.spas.join(", "), false));
        }
        if let Some(secs) = self.duration_secs {
            fields.push(field("duration", &human_duration(secs), true));
        }
        if let Some(step) = &self.failed_step {
            fields.push(field("failed step", step, true));
        }
        if let Some(error) = &self.error {
            fields.push(field("error", error, false));
        }
        json!({
            "text": text,
            "attachments": [{
                "color": match self.event {
                    Event::Started => "#439FE0",
                    Event::Succeeded => "good",
                    Event::Failed => "danger",
                },
                "fallback": text,
                "fields": fields,
            }],
        })
    }
}

fn field(title: &str, value: &str, short: bool) -> serde_json::Value {
    json!({ "title": title, "value": value, "short": short })
}

/// `42s`, `3m 05s`.
fn human_duration(secs: f64) -> String {
    let secs = secs.round() as u64;
    match secs {
        s if s < 60 => format!("{s}s"),
        s => format!("{}m {:02}s", s / 60, s % 60),
    }
}

/// Posts notices to the webhook. Built once per run.
pub struct Notifier {
    client: Client<Https, Full<Bytes>>,
    /// The URL: a secret. Only ever handed to the HTTP client.
    url: hyper::Uri,
    /// The variable's name: what messages say instead of the URL.
    variable: String,
    timeout: Duration,
    attempts: u32,
    /// A message failed: later ones get one try each and no new warning.
    failed: AtomicBool,
}

impl Notifier {
    /// The notifier `config` asks for: `None` when notifications are off, or when the
    /// variable is unset or not an http(s) URL, which is then a warning through `warn`
    /// (a run is never stopped by its notifications).
    pub fn from_config(config: &NotifyConfig, warn: impl Fn(&str)) -> Option<Self> {
        let variable = config.webhook_env.as_deref()?;
        let url = std::env::var(variable).unwrap_or_default();
        if url.trim().is_empty() {
            warn(&format!(
                "notify.webhook_env names ${variable}, which is not set: this run sends no notifications"
            ));
            return None;
        }
        let uri = match parse_webhook(url.trim()) {
            Ok(uri) => uri,
            Err(why) => {
                warn(&format!(
                    "${variable} (notify.webhook_env) {why}: this run sends no notifications"
                ));
                return None;
            }
        };
        let client = match crate::http::client() {
            Ok(client) => client,
            Err(err) => {
                warn(&format!("{err:#}: this run sends no notifications"));
                return None;
            }
        };
        Some(Self {
            client,
            url: uri,
            variable: variable.to_owned(),
            timeout: Duration::from_secs(config.timeout_secs),
            attempts: config.attempts,
            failed: AtomicBool::new(false),
        })
    }

    /// Posts `notice`, retrying what may pass (connection errors, timeouts, 429, 5xx)
    /// with a short backoff; `hurry` (the operator pressed Ctrl-C) makes one attempt.
    /// A failure is a warning through `warn`, the first time.
    pub async fn send(&self, notice: &Notice, hurry: bool, warn: impl Fn(&str)) {
        let body = Bytes::from(notice.to_slack().to_string());
        let attempts = if hurry || self.failed.load(Ordering::Relaxed) {
            1
        } else {
            self.attempts
        };
        let mut last = String::new();
        let mut tries = 0;
        for attempt in 0..attempts {
            tries += 1;
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << (attempt - 1).min(3))).await;
            }
            match self.post(body.clone()).await {
                Ok(()) => {
                    tracing::debug!(event = ?notice.event, "notification delivered");
                    return;
                }
                Err(Failure { message, retry }) => {
                    tracing::debug!(event = ?notice.event, attempt, %message, "notification failed");
                    last = message;
                    if !retry {
                        break;
                    }
                }
            }
        }
        if !self.failed.swap(true, Ordering::Relaxed) {
            let tries = match tries {
                1 => "1 attempt".to_owned(),
                n => format!("{n} attempts"),
            };
            warn(&format!(
                "the notification webhook (${}) did not take the {} message: {last} ({tries}); the deploy goes on without it",
                self.variable,
                match notice.event {
                    Event::Started => "start",
                    Event::Succeeded => "success",
                    Event::Failed => "failure",
                }
            ));
        }
    }

    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "deploy")
            .body(Full::new(body))
            .map_err(|err| Failure {
                message: scrub(&format!("cannot build the request: {err}"), &self.url),
                retry: false,
            })?;
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => {
                return Err(Failure {
                    message: format!("no answer within {}s", self.timeout.as_secs()),
                    retry: true,
                })
            }
            Ok(Err(err)) => {
                return Err(Failure {
                    message: scrub(&error_chain(&err), &self.url),
                    retry: true,
                })
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Failure {
            message: format!("it answered HTTP {}", status.as_u16()),
            retry: status.is_server_error() || status.as_u16() == 429,
        })
    }
}

struct Failure {
    message: String,
    retry: bool,
}

/// An http(s) URL with a host, or why not (without the value: it is a secret).
fn parse_webhook(url: &str) -> Result<hyper::Uri, &'static str> {
    let uri: hyper::Uri = url.parse().map_err(|_| "is not a URL")?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err("is not an http(s) URL with a host"),
    }
}

/// The error and its causes, joined as anyhow's `{:#}` does.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(inner) = cause {
        parts.push(inner.to_string());
        cause = inner.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// `text` with the URL, and its path and query (where a webhook's secret lives), cut
/// out: what the HTTP stack says should never carry them, but a message is only
/// printed once this is sure.
fn scrub(text: &str, url: &hyper::Uri) -> String {
    let mut text = text.replace(&url.to_string(), "<webhook>");
    if let Some(path) = url.path_and_query().map(|p| p.as_str()) {
        if path.len() > 1 {
            text = text.replace(path, "<path>");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event: Event) -> Notice {
        Notice {
            event,
            environment: "sandbox".into(),
            mode: "full deploy".into(),
            who: "ci@runner-7 (arn:aws:sts::123456789012:assumed-role/deployer/ci)".into(),
            services: vec!["api".into(), "auth".into()],
            spas: Vec::new(),
            sha: "3f2c1ab".into(),
            duration_secs: None,
            failed_step: None,
            error: None,
        }
    }

    fn field<'a>(message: &'a serde_json::Value, title: &str) -> Option<&'a str> {
        message["attachments"][0]["fields"]
            .as_array()?
            .iter()
            .find(|f| f["title"] == title)?["value"]
            .as_str()
    }

    #[test]
    fn a_start_message_says_who_deploys_what_where() {
        let message = notice(Event::Started).to_slack();
        assert_eq!(
            message["text"],
            "deploy to sandbox: full deploy of 3f2c1ab started (ci@runner-7 (arn:aws:sts::123456789012:assumed-role/deployer/ci))"
        );
        assert_eq!(field(&message, "environment"), Some("sandbox"));
        assert_eq!(field(&message, "services"), Some("api, auth"));
        assert_eq!(field(&message, "sha"), Some("3f2c1ab"));
        assert_eq!(field(&message, "duration"), None);
        assert_eq!(field(&message, "failed step"), None);
    }

    #[test]
    fn a_failure_names_the_step_the_duration_and_the_first_line_of_the_error() {
        let mut failed = notice(Event::Failed);
        failed.duration_secs = Some(185.4);
        failed.failed_step = Some("verify".into());
        failed.error = Some(Notice::short_error(
            "1 service(s) did not settle on :3f2c1ab:\n  api: timed out",
        ));
        let message = failed.to_slack();
        assert!(message["text"]
            .as_str()
            .unwrap()
            .ends_with("FAILED (ci@runner-7 (arn:aws:sts::123456789012:assumed-role/deployer/ci)) after 3m 05s at verify"));
        assert_eq!(message["attachments"][0]["color"], "danger");
        assert_eq!(field(&message, "failed step"), Some("verify"));
        assert_eq!(field(&message, "duration"), Some("3m 05s"));
        assert_eq!(
            field(&message, "error"),
            Some("1 service(s) did not settle on :3f2c1ab:")
        );
        let long = Notice::short_error(&"x".repeat(1000));
        assert_eq!(long.chars().count(), ERROR_CHARS + 1);
    }

    #[test]
    fn only_http_urls_with_a_host_are_webhooks_and_errors_never_carry_them() {
        assert!(parse_webhook("https://hooks.slack.com/services/T0/B0/secret").is_ok());
        assert!(parse_webhook("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "hooks.slack.com/services/x",
            "ftp://host/x",
            "not a url",
            "/path",
        ] {
            assert!(parse_webhook(bad).is_err(), "{bad}");
        }
        let url = parse_webhook("https://hooks.example.com/services/T0/B0/s3cr3t?x=1").unwrap();
        let text = format!("error sending to {url}: or /services/T0/B0/s3cr3t?x=1");
        let scrubbed = scrub(&text, &url);
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert_eq!(scrubbed, "error sending to <webhook>: or <path>");
    }
}
