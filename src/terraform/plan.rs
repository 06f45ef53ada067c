//! The reviewed roll: what `terraform show -json <planfile>` says a saved plan will do,
//! read into a typed [`PlanDiff`], then classified against the deployment into a
//! [`Review`]: per planned service its image `old tag → new tag` and the names of other
//! attributes that change, and every change to infrastructure outside the deployment.
//!
//! Values are never kept in the review: only addresses, actions, attribute names and
//! image tags, so that neither sensitive attributes nor tfvars values can reach any
//! output (`terraform show -json` prints both in full).

use std::fmt;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One action terraform plans for a resource instance (`change.actions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    /// Destroy and create (either order).
    Replace,
    Delete,
    /// Removed from the state without being destroyed (a `removed` block).
    Forget,
    Read,
    NoOp,
}

impl ChangeKind {
    fn from_actions(actions: &[String]) -> Self {
        let has = |name: &str| actions.iter().any(|a| a == name);
        match () {
            _ if has("delete") && has("create") => ChangeKind::Replace,
            _ if has("delete") => ChangeKind::Delete,
            _ if has("create") => ChangeKind::Create,
            _ if has("update") => ChangeKind::Update,
            _ if has("forget") => ChangeKind::Forget,
            _ if has("read") => ChangeKind::Read,
            _ => ChangeKind::NoOp,
        }
    }

    /// Whether the apply changes anything real (reads and no-ops do not).
    pub fn changes_something(self) -> bool {
        !matches!(self, ChangeKind::Read | ChangeKind::NoOp)
    }

    /// Whether something is destroyed (a replace destroys the old object).
    pub fn destroys(self) -> bool {
        matches!(self, ChangeKind::Delete | ChangeKind::Replace)
    }

    /// terraform's own symbols in its plan output.
    pub fn symbol(self) -> &'static str {
        match self {
            ChangeKind::Create => "+",
            ChangeKind::Update => "~",
            ChangeKind::Replace => "-/+",
            ChangeKind::Delete => "-",
            ChangeKind::Forget => ".",
            ChangeKind::Read => "<=",
            ChangeKind::NoOp => " ",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Replace => "replace",
            ChangeKind::Delete => "destroy",
            ChangeKind::Forget => "forget",
            ChangeKind::Read => "read",
            ChangeKind::NoOp => "no-op",
        })
    }
}

/// A saved plan as `terraform show -json` describes it: its resource changes, values
/// and sensitivity masks included. Never printed as such: see [`Review`].
#[derive(Debug, Clone)]
pub struct PlanDiff {
    pub changes: Vec<ResourceChange>,
}

#[derive(Debug, Clone)]
pub struct ResourceChange {
    pub address: String,
    pub kind: ChangeKind,
    pub before: Value,
    pub after: Value,
    /// Per attribute, `true` where terraform marks the value sensitive.
    pub before_sensitive: Value,
    pub after_sensitive: Value,
    /// Per attribute, `true` where the value is known only after the apply.
    pub after_unknown: Value,
}

#[derive(Deserialize)]
struct ShowJson {
    #[serde(default)]
    resource_changes: Vec<RawChange>,
}

#[derive(Deserialize)]
struct RawChange {
    address: String,
    change: RawChangeBody,
}

#[derive(Deserialize)]
struct RawChangeBody {
    actions: Vec<String>,
    #[serde(default)]
    before: Value,
    #[serde(default)]
    after: Value,
    #[serde(default)]
    before_sensitive: Value,
    #[serde(default)]
    after_sensitive: Value,
    #[serde(default)]
    after_unknown: Value,
}

impl PlanDiff {
    /// Parses the output of `terraform show -json <planfile>`.
    pub fn from_show_json(text: &str) -> Result<Self> {
        // serde_json's messages quote the value they choke on (`invalid type: string
        // "…"`), which may be a secret: only the position is kept.
        let show: ShowJson = serde_json::from_str(text).map_err(|err| {
            anyhow!(
                "`terraform show -json` did not print a plan document (at line {}, column {})",
                err.line(),
                err.column()
            )
        })?;
        let changes = show
            .resource_changes
            .into_iter()
            .map(|raw| ResourceChange {
                address: raw.address,
                kind: ChangeKind::from_actions(&raw.change.actions),
                before: raw.change.before,
                after: raw.change.after,
                before_sensitive: raw.change.before_sensitive,
                after_sensitive: raw.change.after_sensitive,
                after_unknown: raw.change.after_unknown,
            })
            .collect();
        Ok(Self { changes })
    }
}

mod review;

#[cfg(test)]
use review::{first_image, image_tag_of};
pub use review::{AddressChange, ImageChange, Review, ServiceDiff, ServiceResources};

#[cfg(test)]
mod tests;
