//! Exit codes, and the few error types whose kind decides one (or how the message
//! reads: [`AwsError`]), and the signals that interrupt a run. A base file: it imports
//! nothing of the crate, and the rest of the crate builds on it (the aws adapter makes
//! [`AwsError`]s, `process` sends [`Signal`]s, the config reader returns [`ConfigError`]).
//!
//! Everything else is an `anyhow` chain with `.context()` naming what it was about;
//! it exits 1.

use std::fmt;
use std::path::PathBuf;

/// Process exit codes, one per class of ending: the one table the README ("Exit codes"),
/// `--help` and the man page (EXIT STATUS) say.
///
/// | code | class | errors |
/// | --- | --- | --- |
/// | 0 | done, or nothing to do | |
/// | 1 | failed: something deploy talks to failed or refused (AWS, Docker, terraform, a registry, a health check, a held lock, a roll's plan that needs `--allow-infra-changes`) | any other error |
/// | 2 | cannot run as invoked or set up: flags, files, `deploy.toml`, the repository, an unknown profile, a setting neither `deploy.toml` nor the terraform outputs give (the ECS cluster, the lock, history or SPA bucket), a Dockerfile missing from the commit; nothing was changed | [`UsageError`], [`ConfigError`] |
/// | 3 | `deploy diff`: the plan needs review | [`NeedsReview`] |
/// | 4 | drift: a service runs another image than deploy's last roll or terraform's `image_tags` say (`status --check`; `--changed` without `--adopt-drift` or `--restore-drift`) | [`Drifted`] |
/// | 129, 130, 143 | interrupted by SIGHUP, SIGINT, SIGTERM | [`Interrupted`] |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done, or nothing to do.
    Success = 0,
    /// The run failed; the message says what was and was not done.
    Failure = 1,
    /// Bad flags, files, config or setup: nothing was changed.
    Usage = 2,
    /// `deploy diff`: the plan needs review (`--allow-infra-changes`).
    NeedsReview = 3,
    /// A service runs something else than deploy and terraform recorded (`deploy status
    /// --check`, or `--changed` refusing a drifted service without `--adopt-drift` or
    /// `--restore-drift`).
    Drifted = 4,
    /// Interrupted by SIGINT (Ctrl-C): 128 + 2, as a shell reports it.
    Interrupted = 130,
    /// Interrupted by SIGHUP (the terminal went away): 128 + 1.
    Hangup = 129,
    /// Interrupted by SIGTERM (CI cancelling the job, `docker stop`, systemd, ECS): 128 + 15.
    Terminated = 143,
}

/// A mistake in how deploy was invoked or set up (flags, files, config, repository,
/// profile, a setting the environment lacks): exit 2, always detected before anything is
/// changed. Most are found before anything touches AWS, Docker or terraform; a setting
/// that the terraform outputs should give is found once they are read.
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

/// `deploy diff`: the plan would change infrastructure outside the deployment, or destroy
/// something, so a deploy of it needs `--allow-infra-changes`: exit 3, apart from a failure
/// (1), so that a CI gate can tell "needs review" from broken credentials.
#[derive(Debug)]
pub struct NeedsReview(pub String);

impl fmt::Display for NeedsReview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NeedsReview {}

/// Drift: a service was changed outside deploy (exit 4), for a scheduled CI job to tell
/// from a failure to look (1).
#[derive(Debug)]
pub struct Drifted(pub String);

impl fmt::Display for Drifted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Drifted {}

/// A `deploy.toml` that cannot be used: a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("invalid config {}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The signals deploy sends to its children, and the ones that interrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// What Ctrl-C sends: terraform stops cleanly on the first one.
    Interrupt,
    /// A polite stop: what CI cancelling a job, `docker stop`, systemd and ECS send.
    Terminate,
    /// The terminal (or the ssh session) went away.
    Hangup,
}

impl Signal {
    /// Its name, as `kill -l` and the operator know it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// Where a run was when a signal interrupted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
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

/// The run was interrupted by a signal (see [`crate::signals`]): exit 130 for SIGINT,
/// 143 for SIGTERM, 129 for SIGHUP (128 + the signal's number, as a shell reports a
/// program the signal killed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    pub stage: Stage,
    pub signal: Signal,
}

impl Interrupted {
    pub fn new(stage: Stage, signal: Signal) -> Self {
        Self { stage, signal }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.signal {
            Signal::Interrupt => ExitCode::Interrupted,
            Signal::Terminate => ExitCode::Terminated,
            Signal::Hangup => ExitCode::Hangup,
        }
    }
}

/// "interrupted", naming the signal unless it was Ctrl-C's.
pub fn interrupted_by(signal: Signal) -> String {
    match signal {
        Signal::Interrupt => "interrupted".to_owned(),
        other => format!("interrupted by {}", other.name()),
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interrupted = interrupted_by(self.signal);
        match self.stage {
            Stage::AtLock => write!(f, "{interrupted} while waiting for the deploy lock: nothing was built, pushed or applied, and this run holds no lock"),
            Stage::BeforeRoll => write!(f, "{interrupted}: builds, pushes and uploads in flight were cancelled; nothing was applied. Re-run to resume: images already pushed are not rebuilt"),
            Stage::DuringApply => write!(f, "{interrupted} during terraform apply: terraform was let stop cleanly, and some services may already be rolled. Run `deploy status` to see what runs, then re-run the deploy to finish"),
            Stage::AfterApply => write!(f, "{interrupted} while waiting for ECS: terraform was applied and ECS goes on rolling; `deploy status` shows the rollouts"),
        }
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
    if let Some(interrupted) = err.chain().find_map(|c| c.downcast_ref::<Interrupted>()) {
        return interrupted.exit_code();
    }
    if err.chain().any(|cause| cause.is::<NeedsReview>()) {
        return ExitCode::NeedsReview;
    }
    if err.chain().any(|cause| cause.is::<Drifted>()) {
        return ExitCode::Drifted;
    }
    let usage = err
        .chain()
        .any(|cause| cause.is::<UsageError>() || cause.is::<ConfigError>());
    if usage {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
}

/// An AWS call that failed, explained for the operator (its `Display`), keeping what
/// the SDK said (its `source`) and AWS's request id for `-vv` and for AWS support.
#[derive(Debug, thiserror::Error)]
#[error("{explanation}")]
pub struct AwsError {
    explanation: String,
    pub request_id: Option<String>,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl AwsError {
    pub fn new(
        explanation: impl Into<String>,
        request_id: Option<String>,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        Self {
            explanation: explanation.into(),
            request_id,
            source,
        }
    }

    /// The request id and the SDK's own error chain, for `-vv`.
    pub fn details(&self) -> String {
        let mut details = match &self.request_id {
            Some(id) => format!("AWS request id {id}; "),
            None => String::new(),
        };
        details.push_str("SDK error: ");
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self.source.as_ref());
        let mut first = true;
        while let Some(err) = cause {
            if !first {
                details.push_str(": ");
            }
            details.push_str(&err.to_string());
            first = false;
            cause = err.source();
        }
        details
    }
}

/// The message printed for a failed run: the chain of causes joined by `: ` (as
/// anyhow's `{:#}`), except that an AWS error is shown as explained for the operator and
/// what the SDK said beneath it (and AWS's request id) only with `-vv`.
pub fn render(err: &anyhow::Error, verbose: u8) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if let Some(aws) = cause.downcast_ref::<AwsError>() {
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
        let interrupted =
            anyhow::Error::new(Interrupted::new(Stage::DuringApply, Signal::Interrupt))
                .context("roll");
        assert_eq!(exit_code_for(&interrupted), ExitCode::Interrupted);
        let err = Err::<(), _>(UsageError::new("bad"))
            .context("while planning")
            .unwrap_err();
        assert_eq!(exit_code_for(&err), ExitCode::Usage);
        assert_eq!(exit_code_for(&anyhow::anyhow!("boom")), ExitCode::Failure);
    }

    #[test]
    fn each_signal_has_its_exit_code_and_is_named_unless_it_was_ctrl_c() {
        let by = |signal| anyhow::Error::new(Interrupted::new(Stage::BeforeRoll, signal));
        let codes = [
            (Signal::Interrupt, 130, "interrupted: builds"),
            (Signal::Terminate, 143, "interrupted by SIGTERM: builds"),
            (Signal::Hangup, 129, "interrupted by SIGHUP: builds"),
        ];
        for (signal, code, message) in codes {
            let err = by(signal).context("building");
            assert_eq!(exit_code_for(&err) as i32, code, "{signal:?}");
            assert!(
                render(&err, 0).starts_with(&format!("building: {message}")),
                "{signal:?}"
            );
        }
        let at_lock = Interrupted::new(Stage::AtLock, Signal::Terminate).to_string();
        assert!(
            at_lock.starts_with("interrupted by SIGTERM while waiting for the deploy lock"),
            "{at_lock}"
        );
        let review = anyhow::Error::new(NeedsReview("would change 1".into()));
        assert_eq!(exit_code_for(&review) as i32, 3);
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
        let aws = AwsError::new("cannot reach AWS", Some("req-1".into()), sdk);
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
