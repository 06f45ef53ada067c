//! Pushing an image and asking a registry whether it has a tag, with retries on the
//! registry's and the network's transient failures.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::engine::{daemon_messages, is_from_the_daemon, Engine};

/// Attempts per push: the first and four retries with backoff.
const PUSH_ATTEMPTS: u32 = 5;

impl Engine {
    /// Whether `image` (`host/repo:tag`) exists in its registry, asked through the
    /// daemon's distribution endpoint (the registry's own manifest API).
    pub async fn exists_in_registry(
        &self,
        image: &str,
        credentials: &DockerCredentials,
    ) -> Result<bool> {
        Ok(self.registry_digest(image, credentials).await?.is_some())
    }

    /// The digest of `image` (`host/repo:tag`) in its registry (`sha256:…`; empty when
    /// the registry gives none), or `None` when the registry does not have it.
    pub async fn registry_digest(
        &self,
        image: &str,
        credentials: &DockerCredentials,
    ) -> Result<Option<String>> {
        match self
            .client
            .inspect_registry_image(image, Some(credentials.clone()))
            .await
        {
            Ok(found) => Ok(Some(found.descriptor.digest.unwrap_or_default())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => {
                let lower = message.to_lowercase();
                if status_code == 404
                    || lower.contains("manifest unknown")
                    || lower.contains("not found")
                    || lower.contains("name unknown")
                {
                    Ok(None)
                } else {
                    bail!("cannot ask the registry about {image}: {message} (HTTP {status_code})")
                }
            }
            Err(err) => Err(anyhow!(err).context(format!("cannot ask the registry about {image}"))),
        }
    }

    /// Tags the local image `id` as `image` (`host/repo:tag`).
    pub async fn tag(&self, id: &str, image: &str) -> Result<()> {
        let (repo, tag) = split_tag(image)?;
        let options = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(tag)
            .build();
        self.client
            .tag_image(id, Some(options))
            .await
            .map_err(|err| anyhow!("cannot tag the dependency stage as {image}: {err}"))
    }

    /// Pushes `image` (`host/repo:tag`); transient registry failures are retried with
    /// backoff, each retry at debug level: one warning says a push needed retries once it
    /// succeeds, and the error says so when they run out.
    pub async fn push(
        &self,
        image: &str,
        credentials: &DockerCredentials,
        mut on_progress: impl FnMut(&str),
    ) -> Result<()> {
        let (name, tag) = split_tag(image)?;
        let mut attempt = 0;
        let mut last_failure = None;
        loop {
            attempt += 1;
            match self
                .push_once(name, tag, credentials, &mut on_progress)
                .await
            {
                Ok(()) => {
                    if let Some(message) = last_failure {
                        tracing::warn!(
                            "pushed {image} on retry {}: push failed {} time(s), last with: {message}",
                            attempt - 1,
                            attempt - 1
                        );
                    }
                    return Ok(());
                }
                Err(PushError::Connection(message)) if self.api().ping().await.is_err() => {
                    return Err(anyhow!(
                        "lost the Docker daemon at {} while pushing {image}: {message}. Check that Docker is running (`docker info`); re-run to resume",
                        self.host
                    ))
                }
                Err(PushError::Connection(message) | PushError::Registry(message))
                    if attempt < PUSH_ATTEMPTS && is_transient(&message) =>
                {
                    let wait = Duration::from_secs(1 << (attempt - 1));
                    tracing::debug!(%image, attempt, %message, "push failed; retrying");
                    on_progress(&format!(
                        "push failed ({message}); retry {attempt} in {}s",
                        wait.as_secs()
                    ));
                    last_failure = Some(message);
                    tokio::time::sleep(wait).await;
                }
                Err(PushError::Connection(message) | PushError::Registry(message)) => {
                    return Err(anyhow!(
                        "cannot push {image} after {attempt} attempt(s): {message}"
                    ))
                }
            }
        }
    }

    async fn push_once(
        &self,
        name: &str,
        tag: &str,
        credentials: &DockerCredentials,
        on_progress: &mut impl FnMut(&str),
    ) -> std::result::Result<(), PushError> {
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = std::pin::pin!(daemon_messages(self.client.push_image(
            name,
            Some(options),
            Some(credentials.clone())
        )));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| {
                if is_from_the_daemon(&err) {
                    PushError::Registry(err.to_string())
                } else {
                    PushError::Connection(err.to_string())
                }
            })?;
            if let Some(detail) = info.error_detail {
                return Err(PushError::Registry(
                    detail
                        .message
                        .unwrap_or_else(|| "unknown push error".into()),
                ));
            }
            if let Some(status) = info.status.as_deref() {
                if status == "Pushed" || status.starts_with(tag) {
                    on_progress(status);
                }
            }
        }
        Ok(())
    }
}

/// Why one push attempt failed.
enum PushError {
    /// The daemon answered: the registry (through it) failed the push.
    Registry(String),
    /// The connection to the daemon failed.
    Connection(String),
}

/// Registry and network failures worth another try; anything else fails at once.
pub fn is_transient(message: &str) -> bool {
    let lower = message.to_lowercase();
    [
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "status: 500",
        "status: 502",
        "status: 503",
        "status: 504",
        "connection reset",
        "connection refused",
        "broken pipe",
        "unexpected eof",
        ": eof",
        "i/o timeout",
        "tls handshake timeout",
        "timeout exceeded",
        "too many requests",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn split_tag(image: &str) -> Result<(&str, &str)> {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => Ok((&image[..slash + colon], &image[slash + colon + 1..])),
        None => bail!("image reference {image} has no tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_handles_registry_ports() {
        assert_eq!(
            split_tag("127.0.0.1:5000/api:abc1234").unwrap(),
            ("127.0.0.1:5000/api", "abc1234")
        );
        assert_eq!(
            split_tag("1234.dkr.ecr.us-east-1.amazonaws.com/team/api:abc")
                .unwrap()
                .1,
            "abc"
        );
        assert!(split_tag("127.0.0.1:5000/api").is_err());
    }

    #[test]
    fn transient_errors_are_recognised() {
        assert!(is_transient(
            "received unexpected HTTP status: 503 Service Unavailable"
        ));
        assert!(is_transient(
            "Put \"http://x/v2/\": read tcp: connection reset by peer"
        ));
        assert!(!is_transient(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_transient("name unknown: repository api not found"));
    }
}
