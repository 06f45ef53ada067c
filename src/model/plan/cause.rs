//! Why a service or SPA deploys in graph mode, as data: the chain from a changed file or
//! lockfile entry to it. Its `Display` is the plan's reason.

use std::fmt;

use serde::Serialize;

/// Why something deploys in graph mode (`[changes] mode = "graph"`): the chain from a
/// changed file or lockfile entry to the service or SPA. Its `Display` is the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A file of its own directory (`more`: how many others changed there).
    Own { path: String, more: usize },
    /// A file of a workspace package it depends on; `chain` runs from that package to
    /// the dependent (`@platform/events`, `@platform/common`, `billing`).
    Package { path: String, chain: Vec<String> },
    /// An external package its lockfile closure reaches changed; `through` names the
    /// workspace package whose importer reaches it (none: its own importer).
    Lockfile {
        package: String,
        from: Vec<String>,
        to: Vec<String>,
        through: Option<String>,
    },
    /// Its lockfile importer's entries changed with no resolved version changing
    /// (a specifier, a dependency kind).
    Importer { importer: String },
    /// A build input every image or SPA reads (Dockerfile, `.npmrc`, root files).
    BuildInput { path: String },
    /// A path matching one of its extra input globs (`[changes] inputs`).
    ExtraInput { path: String, glob: String },
    /// The lockfile cannot be compared by importer: everything deploys.
    LockfileFallback { reason: String },
    /// The workspace graph cannot be read at one of the commits: everything deploys.
    GraphFallback { reason: String },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Own { path, more: 0 } => write!(f, "{path} changed"),
            Cause::Own { path, more } => write!(f, "{path} and {more} more changed"),
            Cause::Package { path, chain } => {
                let (package, dependents) = chain.split_first().expect("a chain has a package");
                write!(f, "{path} → {package}")?;
                for name in dependents {
                    write!(f, " ← {name}")?;
                }
                Ok(())
            }
            Cause::Lockfile {
                package,
                from,
                to,
                through,
            } => {
                let bump = Bump {
                    name: package.clone(),
                    from: from.clone(),
                    to: to.clone(),
                };
                write!(f, "lockfile: {bump}")?;
                match through {
                    Some(name) => write!(f, " (reached through {name})"),
                    None => Ok(()),
                }
            }
            Cause::Importer { importer } => {
                write!(f, "lockfile: importer {importer} changed")
            }
            Cause::BuildInput { path } => write!(f, "build input {path} changed"),
            Cause::ExtraInput { path, glob } => write!(f, "{path} changed (input {glob})"),
            Cause::LockfileFallback { reason } => {
                write!(f, "{reason}: every service and SPA deploys")
            }
            Cause::GraphFallback { reason } => {
                write!(f, "{reason}: every service and SPA deploys")
            }
        }
    }
}

/// An external package that differs between two closures: `zod 3.22.4 → 3.23.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bump {
    pub name: String,
    /// Versions before, empty when the package was not reached before.
    pub from: Vec<String>,
    /// Versions after, empty when it is no longer reached.
    pub to: Vec<String>,
}

impl std::fmt::Display for Bump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions = |v: &[String]| v.join(", ");
        match (self.from.is_empty(), self.to.is_empty()) {
            (true, _) => write!(f, "{} added at {}", self.name, versions(&self.to)),
            (_, true) => write!(f, "{} {} removed", self.name, versions(&self.from)),
            _ if self.from == self.to => {
                write!(f, "{} {} re-resolved", self.name, versions(&self.to))
            }
            _ => write!(
                f,
                "{} {} → {}",
                self.name,
                versions(&self.from),
                versions(&self.to)
            ),
        }
    }
}
