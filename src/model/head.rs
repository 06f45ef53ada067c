//! What HEAD points at: the commit a run builds and tags its images with, as the plan
//! names it (read from the repository by `crate::git`).

use serde::Serialize;

/// What HEAD points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Full commit id.
    pub sha: String,
    /// The image tag: exactly what `git rev-parse --short HEAD` prints.
    pub short_sha: String,
    /// Branch name, or `None` on a detached HEAD.
    pub branch: Option<String>,
}
