//! The runbook's manual checks after a deploy, automated: `GET <base>/<prefix>/health`
//! answers 200 (and `<prefix>/docs` when API docs are exposed), retried for a while
//! since a load balancer takes a moment to send traffic to new tasks.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use serde::Serialize;

use crate::http::Https;

/// An HTTP(S) client for health checks (rustls, the system's roots).
pub struct Checker {
    client: Client<Https, Empty<Bytes>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub service: String,
    pub url: String,
    pub status: Option<u16>,
    pub healthy: bool,
    pub error: Option<String>,
}

impl Checker {
    pub fn new() -> Result<Self> {
        Ok(Self {
            client: crate::http::client()?,
        })
    }

    async fn status_of(&self, url: &str) -> Result<u16> {
        let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.get(uri))
            .await
            .map_err(|_| anyhow!("no answer within 10s"))?
            .map_err(|err| anyhow!("{err}"))?;
        Ok(response.status().as_u16())
    }

    /// GETs `url` until it answers 200 or `patience` runs out.
    pub async fn check(&self, service: &str, url: String, patience: Duration) -> Check {
        let started = Instant::now();
        loop {
            let (status, error) = match self.status_of(&url).await {
                Ok(status) => (Some(status), None),
                Err(err) => (None, Some(format!("{err:#}"))),
            };
            if status == Some(200) || started.elapsed() >= patience {
                return Check {
                    service: service.to_owned(),
                    healthy: status == Some(200),
                    error: match (status, error) {
                        (Some(200), _) => None,
                        (Some(code), _) => Some(format!("GET {url} answered {code}")),
                        (None, Some(err)) => Some(format!("GET {url} failed: {err}")),
                        (None, None) => None,
                    },
                    url,
                    status,
                };
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// `https://host` + `/v1/x` + `/health` → `https://host/v1/x/health`.
pub fn join_url(base: &str, prefix: &str, path: &str) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    for part in [prefix, path] {
        let part = part.trim_matches('/');
        if !part.is_empty() {
            url.push('/');
            url.push_str(part);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_without_double_slashes() {
        assert_eq!(
            join_url("https://api.example.com/", "/v1/clinical-api/", "/health"),
            "https://api.example.com/v1/clinical-api/health"
        );
        assert_eq!(
            join_url("http://127.0.0.1:8080", "api", "docs"),
            "http://127.0.0.1:8080/api/docs"
        );
        assert_eq!(join_url("http://h", "", "health"), "http://h/health");
    }
}
