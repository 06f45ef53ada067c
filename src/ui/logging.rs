//! Diagnostics through `tracing` on stderr: `-v`/`-vv` or `RUST_LOG`, nothing by default
//! but warnings. Results go to stdout and progress to stderr elsewhere; secrets never
//! reach any of them.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Libraries that log what they send and receive, capped at the level below that, whatever
/// `RUST_LOG` asks (SPEC §4: no secret at any level). At trace the AWS SDK prints response
/// bodies (the ECR token, the keys STS AssumeRole and SSO hand out) and the resolved
/// credentials; bollard prints JSON request and response bodies at debug. The HTTP and TLS
/// stacks under them see the same bytes. The SDK's debug lines (endpoint resolution) and
/// aws_config's info lines (the credential chain it builds) show access key ids. A name ending in `_` stands for every crate
/// whose name starts with it; the first entry that names a crate applies.
const CAPPED: [(&str, Level); 11] = [
    ("aws_config", Level::WARN),
    ("aws_", Level::INFO),
    ("hyper", Level::DEBUG),
    ("hyper_", Level::DEBUG),
    ("h2", Level::DEBUG),
    ("rustls", Level::DEBUG),
    ("tower", Level::DEBUG),
    ("tower_", Level::DEBUG),
    ("tonic", Level::DEBUG),
    ("bollard", Level::INFO),
    ("bollard_", Level::INFO),
];

pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "deploy=info",
        (false, 2) => "deploy=debug",
        (false, _) => "deploy=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish()
        // On top of the env filter, so that no directive, however specific, lifts a cap.
        .with(filter_fn(within_caps))
        .init();
}

fn within_caps(metadata: &Metadata<'_>) -> bool {
    level_allowed(metadata.target(), *metadata.level())
}

/// Whether an event or span of `target` at `level` may be logged at all.
fn level_allowed(target: &str, level: Level) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    CAPPED
        .iter()
        .find(|(name, _)| match name.strip_suffix('_') {
            Some(_) => krate.starts_with(name),
            None => krate == *name,
        })
        .is_none_or(|(_, cap)| level <= *cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_that_log_bodies_are_capped_and_deploy_is_not() {
        for target in [
            "aws_smithy_runtime::client::orchestrator::http",
            "aws_sdk_ecr::operation",
            "aws_sigv4::http_request::sign",
        ] {
            assert!(!level_allowed(target, Level::DEBUG), "{target}");
            assert!(level_allowed(target, Level::INFO), "{target}");
        }
        for target in ["hyper_util::client::legacy", "h2::codec", "rustls::client"] {
            assert!(!level_allowed(target, Level::TRACE), "{target}");
            assert!(level_allowed(target, Level::DEBUG), "{target}");
        }
        assert!(!level_allowed(
            "aws_config::profile::credentials",
            Level::INFO
        ));
        assert!(level_allowed(
            "aws_config::profile::credentials",
            Level::WARN
        ));
        assert!(!level_allowed("bollard::docker", Level::DEBUG));
        assert!(level_allowed("bollard::docker", Level::INFO));
        assert!(level_allowed("deploy::images", Level::TRACE));
        // A crate is named whole, unless the entry ends in `_`.
        assert!(level_allowed("h2o::x", Level::TRACE));
        assert!(!level_allowed("hyper", Level::TRACE));
    }
}
