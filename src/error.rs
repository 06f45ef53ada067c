//! Exit codes, and the few error types whose kind decides one.
//!
//! Everything else is an `anyhow` chain with `.context()` naming what it was about;
//! it exits 1.

use std::fmt;

/// Process exit codes (documented in the README and `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, or nothing to do.
    Success = 0,
    /// The run failed; the message says what was and was not done.
    Failure = 1,
    /// Bad flags, files or config: nothing was touched.
    Usage = 2,
    /// Interrupted (SIGINT).
    Interrupted = 130,
}

/// A mistake in how deploy was invoked (flags, files, config, repository): exit 2,
/// always detected before anything touches AWS, Docker or terraform.
#[derive(Debug)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The run was interrupted (SIGINT): exit 130.
#[derive(Debug)]
pub enum Interrupted {
    /// While taking (or waiting for) the deploy lock: nothing was done, and no lock
    /// is held.
    AtLock,
    /// Before the roll: builds, pushes or uploads were cancelled.
    BeforeRoll,
    /// During `terraform apply`, which was let stop cleanly.
    DuringApply,
    /// While waiting for ECS after the apply.
    AfterApply,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interrupted::AtLock => "interrupted while waiting for the deploy lock: nothing was built, pushed or applied, and this run holds no lock",
            Interrupted::BeforeRoll => "interrupted: builds, pushes and uploads in flight were cancelled; nothing was applied. Re-run to resume: images already pushed are not rebuilt",
            Interrupted::DuringApply => "interrupted during terraform apply: terraform was let stop cleanly, and some services may already be rolled. Run `deploy status` to see what runs, then re-run the deploy to finish",
            Interrupted::AfterApply => "interrupted while waiting for ECS: terraform was applied and ECS goes on rolling; `deploy status` shows the rollouts",
        })
    }
}

impl std::error::Error for Interrupted {}

/// Context for every write of results to stdout. When that write fails because stdout is
/// a pipe whose reader has gone (`deploy status | head -3`), the reader has what it wanted:
/// the run ends quietly with success, as ripgrep does. Only stdout is let off so: a broken
/// pipe to the Docker daemon or to AWS is a real failure.
#[derive(Debug, Clone, Copy)]
pub struct WritingStdout;

impl fmt::Display for WritingStdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot write to stdout")
    }
}

/// Whether the run failed only because stdout was closed early (see [`WritingStdout`]).
pub fn stdout_closed(err: &anyhow::Error) -> bool {
    err.downcast_ref::<WritingStdout>().is_some()
        && err.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// The exit code an error chain maps to.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|cause| cause.is::<Interrupted>()) {
        return ExitCode::Interrupted;
    }
    let usage = err
        .chain()
        .any(|cause| cause.is::<UsageError>() || cause.is::<crate::model::config::ConfigError>());
    if usage {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
}

/// The message printed for a failed run: the chain of causes joined by `: ` (as
/// anyhow's `{:#}`), except that an AWS error is shown as explained for the operator and
/// what the SDK said beneath it (and AWS's request id) only with `-vv`.
pub fn render(err: &anyhow::Error, verbose: u8) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if let Some(aws) = cause.downcast_ref::<crate::aws::AwsError>() {
            if verbose >= 2 {
                parts.push(format!("({})", aws.details()));
            }
            break;
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_map_to_2_even_under_context() {
        let interrupted = anyhow::Error::new(Interrupted::DuringApply).context("roll");
        assert_eq!(exit_code_for(&interrupted), ExitCode::Interrupted);
        let err = Err::<(), _>(UsageError::new("bad"))
            .context("while planning")
            .unwrap_err();
        assert_eq!(exit_code_for(&err), ExitCode::Usage);
        assert_eq!(exit_code_for(&anyhow::anyhow!("boom")), ExitCode::Failure);
    }

    #[test]
    fn only_a_broken_pipe_on_stdout_counts_as_stdout_closed() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let closed = Err::<(), _>(pipe()).context(WritingStdout).unwrap_err();
        assert!(stdout_closed(&closed.context("printing the status")));
        // The Docker daemon or AWS hanging up mid-request is a failure, not a reader gone.
        let daemon = Err::<(), _>(pipe())
            .context("cannot send the build context")
            .unwrap_err();
        assert!(!stdout_closed(&daemon));
        let full = Err::<(), _>(std::io::Error::other("disk full"))
            .context(WritingStdout)
            .unwrap_err();
        assert!(!stdout_closed(&full));
    }

    #[test]
    fn an_aws_error_shows_the_sdk_beneath_it_only_at_vv() {
        let sdk: Box<dyn std::error::Error + Send + Sync> = "dispatch failure: io error".into();
        let aws = crate::aws::AwsError::new("cannot reach AWS", Some("req-1".into()), sdk);
        let err = anyhow::Error::new(aws).context("cannot upload index.html");
        assert_eq!(
            render(&err, 0),
            "cannot upload index.html: cannot reach AWS"
        );
        assert_eq!(
            render(&err, 2),
            "cannot upload index.html: cannot reach AWS: (AWS request id req-1; SDK error: dispatch failure: io error)"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&plain, 2), format!("{plain:#}"));
    }
}
