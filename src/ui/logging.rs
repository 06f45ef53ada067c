//! Diagnostics through `tracing` on stderr: `-v`/`-vv` or `RUST_LOG`, nothing by default
//! but warnings. Results go to stdout and progress to stderr elsewhere; secrets never
//! reach any of them. A warning reads `warning: …` as every other warning of ours does,
//! colour follows the terminal and `NO_COLOR` as the rest of the output does, and the AWS
//! SDK's own warnings (its region chain asking IMDS, with multi-line debug dumps) stay
//! out unless `-v` or `RUST_LOG` asks: what matters of them we say in one line ourselves.

use std::fmt;

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
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
        (false, 1) => "warn,deploy=info",
        (false, 2) => "warn,deploy=debug",
        (false, _) => "warn,deploy=trace",
    };
    let from_env = EnvFilter::try_from_default_env().ok();
    // What the SDK logs below error is its own business unless someone asked for it.
    let sdk_quiet = from_env.is_none() && verbose == 0;
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default));
    subscriber(
        filter,
        sdk_quiet,
        crate::ui::style::stderr(),
        crate::ui::ci::github_actions(),
        std::io::stderr,
    )
    .init();
}

/// The subscriber `init` installs, writing to `writer`; `github`: warnings and errors as
/// GitHub Actions workflow commands.
fn subscriber<W>(
    filter: EnvFilter,
    sdk_quiet: bool,
    ansi: bool,
    github: bool,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(Labelled(
            tracing_subscriber::fmt::format().with_target(false),
            github,
        ))
        .finish()
        // On top of the env filter, so that no directive, however specific, lifts a cap.
        .with(filter_fn(move |metadata| {
            within_caps(metadata) && !(sdk_quiet && sdk_noise(metadata))
        }))
}

/// An AWS SDK event below error: kept out at the default verbosity.
fn sdk_noise(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("aws_") && *metadata.level() > Level::ERROR
}

/// Warnings and errors as the rest of deploy prints them (`warning: …`, `error: …`,
/// then the event's fields); other levels (`-v`) in tracing's own format, timestamped.
struct Labelled<F>(F, bool);

impl<S, N, F> FormatEvent<S, N> for Labelled<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let label = match (*event.metadata().level(), self.1) {
            (Level::ERROR, false) => "error: ",
            (Level::WARN, false) => "warning: ",
            // Workflow commands: annotations on the run (one-line fields).
            (Level::ERROR, true) => "::error::",
            (Level::WARN, true) => "::warning::",
            _ => return self.0.format_event(ctx, writer, event),
        };
        write!(writer, "{label}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
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

    /// What the subscriber writes for the events `emit` sends, at the default verbosity.
    fn logged(ansi: bool, emit: impl FnOnce()) -> String {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let writer = move || SharedBuffer(sink.clone());
        let subscriber = subscriber(EnvFilter::new("warn"), true, ansi, false, writer);
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The README promises `warning:`; tracing's own format said ` WARN` after a
    /// timestamp, in colour even in a pipe.
    #[test]
    fn warnings_read_as_ours_and_plain_without_colour() {
        let text = logged(false, || {
            tracing::warn!(
                image = "r/api:abc1234",
                attempt = 2,
                "push failed; retrying"
            );
            tracing::info!("not at the default verbosity");
        });
        assert_eq!(
            text,
            "warning: push failed; retrying image=\"r/api:abc1234\" attempt=2\n"
        );
    }

    /// Under GitHub Actions a warning is a workflow command: an annotation on the run.
    #[test]
    fn warnings_are_workflow_commands_under_github_actions() {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let writer = move || SharedBuffer(sink.clone());
        let subscriber = subscriber(EnvFilter::new("warn"), true, false, true, writer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(attempt = 2, "push failed; retrying");
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "::warning::push failed; retrying attempt=2\n");
    }

    /// The SDK's region chain warns when IMDS does not answer (a laptop, CI outside EC2):
    /// kept out at the default verbosity; its errors still show.
    #[test]
    fn the_sdks_warnings_are_kept_out_by_default() {
        let text = logged(false, || {
            tracing::warn!(target: "aws_config::imds::region", "failed to load region from IMDS");
            tracing::error!(target: "aws_smithy_runtime::client", "an SDK error");
        });
        assert_eq!(text, "error: an SDK error\n");
    }

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
