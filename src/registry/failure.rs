//! How a registry request failed, as the callers branch on it: [`Transient`] is worth
//! another try (a 5xx, a 429, a dropped connection); [`Unreachable`] is not (a name
//! that does not resolve, a refused connection, a proxy that cannot reach the host).

use anyhow::{anyhow, Result};
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};

/// A failure worth another try: a 5xx, a 429, a dropped connection, a timeout.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// Whether `err` (or what it wraps) is [`Transient`].
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Transient>())
}

/// The registry cannot be reached from here, and asking again soon will not change
/// it: its name does not resolve, it refuses the connection, or the proxy could not
/// open a tunnel to it (an ECR VPC endpoint from a laptop off VPN).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// Whether `err` (or what it wraps) is [`Unreachable`].
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<Unreachable>())
}

/// Why a connection could not open, if no retry can help: `None` for what may pass
/// (a reset, a timeout).
fn unreachable_cause(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause = Some(err);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Some("the connection was refused");
            }
        }
        let text = current.to_string();
        // hyper-util's resolver says "dns error"; its tunnel says the proxy refused.
        if text.starts_with("dns error") {
            return Some("its name does not resolve");
        }
        if text.contains("tunnel error: unsuccessful") {
            return Some("the proxy could not open a tunnel to it");
        }
        cause = current.source();
    }
    None
}

/// A request that got no answer: [`Unreachable`] when retrying cannot help,
/// [`Transient`] otherwise.
pub(super) fn connection_failure(
    what: &str,
    err: &(dyn std::error::Error + 'static),
) -> anyhow::Error {
    let chain = error_chain(err);
    match unreachable_cause(err) {
        Some(cause) => anyhow!(Unreachable(format!("{what}: {cause} ({chain})"))),
        None => anyhow!(Transient(format!("{what}: {chain}"))),
    }
}

/// A 5xx or 429 is [`Transient`]; anything else is returned as it is.
pub(super) fn transient_status(
    method: &Method,
    url: &str,
    response: Response<Incoming>,
) -> Result<Response<Incoming>> {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(anyhow!(Transient(format!(
            "{method} {}: HTTP {status}",
            shown(url)
        ))));
    }
    Ok(response)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A URL as messages show it: without its query, which can carry a presigned
/// signature (ECR serves blobs from S3 through one) or an upload's state.
pub fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_and_network_failures_are_transient() {
        let transient = anyhow!(Transient("x".into())).context("copying api");
        assert!(is_transient(&transient));
        assert!(!is_transient(&anyhow!("HTTP 404")));
    }

    #[test]
    fn refused_and_unresolvable_are_unreachable_and_a_reset_is_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let failure = connection_failure("GET x", &refused);
        assert!(is_unreachable(&failure) && !is_transient(&failure));
        assert!(format!("{failure}").contains("the connection was refused"));
        #[derive(Debug, thiserror::Error)]
        #[error("dns error")]
        struct Dns(#[source] std::io::Error);
        let dns = Dns(std::io::Error::other(
            "failed to lookup address information",
        ));
        let failure = connection_failure("GET x", &dns);
        assert!(format!("{failure}").contains("its name does not resolve"));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_transient(&connection_failure("GET x", &reset)));
    }
}
