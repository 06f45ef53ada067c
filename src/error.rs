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
            Interrupted::BeforeRoll => "interrupted: builds, pushes and uploads in flight were cancelled; nothing was applied. Re-run to resume: images already pushed are not rebuilt",
            Interrupted::DuringApply => "interrupted during terraform apply: terraform was let stop cleanly, and some services may already be rolled. Run `deploy status` to see what runs, then re-run the deploy to finish",
            Interrupted::AfterApply => "interrupted while waiting for ECS: terraform was applied and ECS goes on rolling; `deploy status` shows the rollouts",
        })
    }
}

impl std::error::Error for Interrupted {}

/// The exit code an error chain maps to.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|cause| cause.is::<Interrupted>()) {
        return ExitCode::Interrupted;
    }
    let usage = err
        .chain()
        .any(|cause| cause.is::<UsageError>() || cause.is::<crate::config::ConfigError>());
    if usage {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
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
}
