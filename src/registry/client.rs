//! One registry, through its HTTP API v2 (hyper + rustls): URLs, credentials (Basic, as
//! ECR takes its GetAuthorizationToken user and password, and the Bearer token dance of
//! other registries), redirects (ECR serves blobs from S3), and the answer's helpers
//! (headers, bounded bodies, the registry's error text). How a request failed, and
//! whether another try can help, is `failure`'s.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;

pub use super::failure::shown;
use super::failure::{connection_failure, transient_status, Transient};
use crate::http::Https;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body: empty, a small manifest, or a blob streamed from the other registry.
pub type Body = BoxBody<Bytes, BoxError>;

/// How long a request without a body may take to answer (a blob's upload may take
/// longer: its answer comes once the body is sent).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a registry request without a body may wait for its answer:
/// `DEPLOY_REGISTRY_TIMEOUT` (whole seconds) or 60 s.
pub fn answer_timeout() -> Duration {
    std::env::var("DEPLOY_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .unwrap_or(ANSWER_TIMEOUT)
}

/// A registry user and password (ECR: `AWS` and the GetAuthorizationToken password).
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A registry reached over HTTPS, or plain HTTP for a loopback host (as the Docker
/// daemon treats 127.0.0.0/8) or one written `http://host:port`.
pub struct RegistryClient {
    /// `host[:port]`, as images are named.
    pub host: String,
    scheme: &'static str,
    credentials: Option<Credentials>,
    http: Client<Https, Body>,
    /// The last Bearer token a challenge asked for (registries other than ECR).
    bearer: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.host)
            .field("scheme", &self.scheme)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The scheme and the bare host of `host` as configured.
pub fn scheme_and_host(host: &str) -> (&'static str, String) {
    if let Some(rest) = host.strip_prefix("http://") {
        return ("http", rest.trim_end_matches('/').to_owned());
    }
    if let Some(rest) = host.strip_prefix("https://") {
        return ("https", rest.trim_end_matches('/').to_owned());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    (if loopback { "http" } else { "https" }, host.to_owned())
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

impl RegistryClient {
    pub fn new(host: &str, credentials: Option<Credentials>) -> Result<Self> {
        let (scheme, host) = scheme_and_host(host);
        Ok(Self {
            host,
            scheme,
            credentials,
            http: crate::http::client()?,
            bearer: std::sync::Mutex::new(None),
        })
    }

    /// `<scheme>://<host>/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}/v2/{path}", self.scheme, self.host)
    }

    /// A `Location` header made absolute (registries may answer with a path).
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}://{}{location}", self.scheme, self.host)
        }
    }

    fn authorization(&self) -> Option<String> {
        let bearer = self.bearer.lock().ok().and_then(|token| token.clone());
        match bearer {
            Some(token) => Some(format!("Bearer {token}")),
            None => self.credentials.as_ref().map(Credentials::basic),
        }
    }

    /// One request to this registry. Without a body, a 401 with a Bearer challenge
    /// gets a token and is asked again, and redirects are followed (without our
    /// credentials when they leave this host). A 5xx, a 429 and a connection failure
    /// are [`Transient`]; other statuses are the caller's to judge.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Response<Incoming>> {
        let Some(body) = body else {
            return self.send_bodiless(method, url, headers).await;
        };
        let response = self
            .send_once(method.clone(), url, headers, body, true)
            .await?;
        transient_status(&method, url, response)
    }

    async fn send_bodiless(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let mut url = url.to_owned();
        let mut asked_for_token = false;
        for _ in 0..6 {
            let ours = url.starts_with(&format!("{}://{}/", self.scheme, self.host));
            let request = self.send_once(method.clone(), &url, headers, empty(), ours);
            let limit = answer_timeout();
            let response = tokio::time::timeout(limit, request).await.map_err(|_| {
                anyhow!(Transient(format!(
                    "{method} {}: no answer within {}s (DEPLOY_REGISTRY_TIMEOUT)",
                    shown(&url),
                    limit.as_secs()
                )))
            })??;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && ours && !asked_for_token {
                let challenge = header(&response, "www-authenticate").unwrap_or_default();
                if let Some(params) = challenge.strip_prefix("Bearer ") {
                    self.fetch_token(params).await?;
                    asked_for_token = true;
                    continue;
                }
            }
            if status.is_redirection() {
                if let Some(location) = header(&response, "location") {
                    url = if ours {
                        self.absolute(&location)
                    } else {
                        location
                    };
                    continue;
                }
            }
            return transient_status(&method, &url, response);
        }
        Err(anyhow!("{method} {}: too many redirects", shown(&url)))
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
        with_credentials: bool,
    ) -> Result<Response<Incoming>> {
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if with_credentials {
            if let Some(value) = self.authorization() {
                builder = builder.header("authorization", value);
            }
        }
        let request = builder
            .body(body)
            .with_context(|| format!("{method} {}: not a valid request", shown(url)))?;
        self.http
            .request(request)
            .await
            .map_err(|err| connection_failure(&format!("{method} {}", shown(url)), &err))
    }

    /// The Bearer token dance: GET `realm?service=..&scope=..` with our credentials.
    async fn fetch_token(&self, challenge: &str) -> Result<()> {
        let params = challenge_params(challenge);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .context("the registry asked for a Bearer token without saying where (no realm)")?;
        let query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let url = if query.is_empty() {
            realm.clone()
        } else {
            format!("{realm}?{}", query.join("&"))
        };
        let mut builder = Request::builder().method(Method::GET).uri(&url);
        if let Some(credentials) = &self.credentials {
            builder = builder.header("authorization", credentials.basic());
        }
        let request = builder.body(empty()).context("invalid token request")?;
        let what = format!("GET {realm} (registry token)");
        let limit = answer_timeout();
        let response = tokio::time::timeout(limit, self.http.request(request))
            .await
            .map_err(|_| {
                anyhow!(Transient(format!(
                    "{what}: no answer within {}s (DEPLOY_REGISTRY_TIMEOUT)",
                    limit.as_secs()
                )))
            })?
            .map_err(|err| connection_failure(&what, &err))?;
        let response = transient_status(&Method::GET, &realm, response)?;
        let status = response.status();
        let body = read_limited(response, 1 << 20).await?;
        if !status.is_success() {
            return Err(anyhow!(
                "the registry's token service {realm} refused the credentials (HTTP {status})"
            ));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).context("the registry's token is not JSON")?;
        let token = json["token"]
            .as_str()
            .or(json["access_token"].as_str())
            .context("the registry's token service answered without a token")?;
        if let Ok(mut slot) = self.bearer.lock() {
            *slot = Some(token.to_owned());
        }
        Ok(())
    }
}

pub fn header(response: &Response<Incoming>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Reads a body of at most `limit` bytes (manifests, errors, tokens).
pub async fn read_limited(response: Response<Incoming>, limit: usize) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(response.into_body(), limit);
    let collected = limited
        .collect()
        .await
        .map_err(|err| anyhow!(Transient(format!("reading an answer: {err}"))))?;
    Ok(collected.to_bytes())
}

/// The registry's error text (`{"errors":[{"code":..,"message":..}]}`), or the status.
pub async fn error_text(response: Response<Incoming>) -> String {
    let status = response.status();
    let body = read_limited(response, 64 << 10).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let messages: Vec<String> = json["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("ERROR"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if messages.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}, {}", messages.join("; "))
    }
}

/// `realm="x",service="y",scope="a:b:pull,push"` as pairs.
pub fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = challenge.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, remainder)) => (value.to_owned(), remainder),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((value, remainder)) => (value.trim().to_owned(), remainder),
                None => (after.trim().to_owned(), ""),
            }
        };
        params.push((key, value));
        rest = remainder.trim_start_matches(',').trim();
    }
    params
}

fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~:/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http_like_for_the_docker_daemon() {
        assert_eq!(
            scheme_and_host("127.0.0.1:5000"),
            ("http", "127.0.0.1:5000".into())
        );
        assert_eq!(scheme_and_host("localhost:5001").0, "http");
        assert_eq!(
            scheme_and_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            (
                "https",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into()
            )
        );
        assert_eq!(
            scheme_and_host("http://mirror.internal:5000/"),
            ("http", "mirror.internal:5000".into())
        );
        assert_eq!(scheme_and_host("https://127.0.0.1:5443").0, "https");
    }

    #[test]
    fn bearer_challenges_are_read_as_pairs() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            vec![
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
    }

    #[test]
    fn credentials_never_show_in_debug_and_go_as_basic() {
        let credentials = Credentials::new("AWS", "s3cr3t");
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
        let client = RegistryClient::new("127.0.0.1:5000", Some(credentials)).unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        assert_eq!(
            client.authorization().unwrap(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t")
            )
        );
        assert_eq!(
            client.absolute("/v2/api/blobs/uploads/x?_state=y"),
            "http://127.0.0.1:5000/v2/api/blobs/uploads/x?_state=y"
        );
    }
}
