//! A saved plan held against the deployment: per planned service, its image change and
//! the names of its other changed attributes; every other change, by address and action.
//! Values never enter a [`Review`].

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::{ChangeKind, PlanDiff, ResourceChange};
use crate::terraform::within;

pub use crate::model::plan::terraform::ServiceResources;

/// A resource change, without its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressChange {
    pub address: String,
    pub action: ChangeKind,
}

impl fmt::Display for AddressChange {
    /// `~   update   aws_security_group.db`: terraform's symbol, the action, the address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:3} {:8} {}",
            self.action.symbol(),
            self.action.to_string(),
            self.address
        )
    }
}

/// An image tag before and after the roll (`None`: no such image on that side, as when
/// the service is created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// What the plan does to one planned service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDiff {
    pub service: String,
    /// The image tag change found in its resources, when there is one.
    pub image: Option<ImageChange>,
    /// Other attributes that change, by name (paths such as `cpu` or
    /// `container_definitions[api].environment[LOG_LEVEL]`); values are never kept.
    pub attributes: Vec<String>,
    pub resources: Vec<AddressChange>,
}

/// A saved plan, reviewed against the deployment: safe to print and serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    pub services: Vec<ServiceDiff>,
    /// Changes to resources that belong to no planned service.
    pub other: Vec<AddressChange>,
    /// Every resource destroyed outright, the deployment's own too. (A replacement is
    /// how a task definition rolls: it is listed with its resource, not here.)
    pub destroyed: Vec<String>,
}

impl Review {
    /// Classifies every change of `plan`: a change to a resource named by a planned
    /// service's targets is the deployment's own; everything else is other
    /// infrastructure (what a targeted plan drags in through dependencies included).
    pub fn new(plan: &PlanDiff, services: &[ServiceResources]) -> Self {
        let mut diffs: Vec<ServiceDiff> = services
            .iter()
            .map(|owner| ServiceDiff {
                service: owner.service.clone(),
                image: None,
                attributes: Vec::new(),
                resources: Vec::new(),
            })
            .collect();
        let mut other = Vec::new();
        let mut destroyed = Vec::new();
        for change in plan.changes.iter().filter(|c| c.kind.changes_something()) {
            if change.kind == ChangeKind::Delete {
                destroyed.push(change.address.clone());
            }
            let entry = AddressChange {
                address: change.address.clone(),
                action: change.kind,
            };
            let owner = services.iter().position(|owner| {
                owner
                    .targets
                    .iter()
                    .any(|target| within(target, &change.address))
            });
            let Some(index) = owner else {
                other.push(entry);
                continue;
            };
            let diff = &mut diffs[index];
            diff.resources.push(entry);
            let repository = &services[index].repository;
            let from = first_image(&change.before, &change.before_sensitive, repository);
            let to = first_image(&change.after, &change.after_sensitive, repository);
            if diff.image.is_none() && (from.is_some() || to.is_some()) && from != to {
                diff.image = Some(ImageChange { from, to });
            }
            if matches!(change.kind, ChangeKind::Update | ChangeKind::Replace) {
                let mut names = Vec::new();
                changed_paths(change, repository, &mut names);
                for name in names {
                    if !diff.attributes.contains(&name) {
                        diff.attributes.push(name);
                    }
                }
            }
        }
        Self {
            services: diffs,
            other,
            destroyed,
        }
    }

    /// The changes the operator must accept with `--allow-infra-changes`: every change
    /// to other infrastructure, and every destroy, the deployment's own included.
    pub fn needs_acceptance(&self) -> Vec<AddressChange> {
        let mut listed = self.other.clone();
        for service in &self.services {
            listed.extend(
                service
                    .resources
                    .iter()
                    .filter(|change| change.action == ChangeKind::Delete)
                    .cloned(),
            );
        }
        listed
    }

    /// The text block shown before the confirmation; destroys in red when `colour`.
    pub fn render(&self, colour: bool) -> String {
        // Painted line by line, newline outside the colour, as the tables are.
        let red = |text: String| {
            if colour {
                format!("\x1b[1;31m{}\x1b[0m\n", text.trim_end_matches('\n'))
            } else {
                text
            }
        };
        let width = self
            .services
            .iter()
            .map(|s| s.service.len())
            .max()
            .unwrap_or(0);
        let mut out = String::from("terraform plan, reviewed:\n");
        for diff in &self.services {
            let what = match (&diff.image, diff.resources.is_empty()) {
                (_, true) => "no change".to_owned(),
                (Some(image), false) => format!(
                    "image {} → {}",
                    image.from.as_deref().unwrap_or("(none)"),
                    image.to.as_deref().unwrap_or("(none)")
                ),
                (None, false) => "image unchanged".to_owned(),
            };
            out.push_str(&format!("  {:width$}  {what}\n", diff.service));
            if !diff.attributes.is_empty() {
                out.push_str(&format!(
                    "  {:width$}    also changes: {}\n",
                    "",
                    diff.attributes.join(", ")
                ));
            }
            for change in &diff.resources {
                if change.action == ChangeKind::Delete {
                    out.push_str(&red(format!("  {:width$}    {change}\n", "")));
                }
            }
        }
        match self.other.len() {
            0 => out.push_str("  no other infrastructure changes\n"),
            n => {
                out.push_str(&format!(
                    "  {n} change(s) to infrastructure outside the deployment:\n"
                ));
                for change in &self.other {
                    let line = format!("    {change}\n");
                    out.push_str(&if change.action.destroys() {
                        red(line)
                    } else {
                        line
                    });
                }
            }
        }
        out
    }
}

/// Whether `mask` (an `after_sensitive`-style mask) marks `path` sensitive: `true` at
/// the path or at any of its parents.
fn sensitive_at(mask: &Value, path: &[PathPart]) -> bool {
    let mut node = mask;
    for part in path {
        if node == &Value::Bool(true) {
            return true;
        }
        node = match (part, node) {
            (PathPart::Key(key), Value::Object(map)) => map.get(key).unwrap_or(&Value::Null),
            (PathPart::Index(i), Value::Array(items)) => items.get(*i).unwrap_or(&Value::Null),
            // Inside a JSON-encoded string the mask has no structure of its own.
            _ => return false,
        };
    }
    node == &Value::Bool(true)
}

#[derive(Debug, Clone)]
enum PathPart {
    Key(String),
    Index(usize),
    /// Descending into a string that holds JSON (`container_definitions`).
    Decoded,
}

/// A string that holds a JSON object or array, parsed (ECS's `container_definitions`).
fn decoded(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        serde_json::from_str(text).ok()
    } else {
        None
    }
}

/// The tag of `text` if it names an image of `repository`: `<anything>/<repository>:<tag>`
/// or `<repository>:<tag>` (a digest `@sha256:…` counts as the tag).
pub(super) fn image_tag_of(text: &str, repository: &str) -> Option<String> {
    let (name, tag) = match text.split_once('@') {
        Some((name, digest)) => (name, digest),
        None => {
            let (name, tag) = text.rsplit_once(':')?;
            (name, tag)
        }
    };
    let named = name == repository || name.ends_with(&format!("/{repository}"));
    let plausible = !tag.is_empty() && !tag.contains(['/', ' ', '"']);
    (named && plausible).then(|| tag.to_owned())
}

/// The image rule: the first string, in document order, that names an image of the
/// service's repository, in the resource's values, searched through nested objects,
/// lists and strings holding JSON (`container_definitions`). Sensitive values are
/// never searched.
pub(super) fn first_image(value: &Value, sensitive: &Value, repository: &str) -> Option<String> {
    fn walk(
        value: &Value,
        path: &mut Vec<PathPart>,
        sensitive: &Value,
        repository: &str,
    ) -> Option<String> {
        if sensitive_at(sensitive, path) {
            return None;
        }
        match value {
            Value::String(text) => match decoded(text) {
                Some(inner) => {
                    path.push(PathPart::Decoded);
                    let found = walk(&inner, path, sensitive, repository);
                    path.pop();
                    found
                }
                None => image_tag_of(text, repository),
            },
            Value::Object(map) => map.iter().find_map(|(key, item)| {
                path.push(PathPart::Key(key.clone()));
                let found = walk(item, path, sensitive, repository);
                path.pop();
                found
            }),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                path.push(PathPart::Index(i));
                let found = walk(item, path, sensitive, repository);
                path.pop();
                found
            }),
            _ => None,
        }
    }
    walk(value, &mut Vec::new(), sensitive, repository)
}

/// The names of the attributes that differ between `before` and `after`, leaves only:
/// object keys joined with `.`, list elements that have a `name` (containers,
/// environment variables, secrets) as `[name]`, others as `[index]`. An image string of
/// the service (shown as the tag change), and values known only after the apply, are
/// left out. A sensitive attribute is named, with ` (sensitive)`, never its value.
fn changed_paths(change: &ResourceChange, repository: &str, names: &mut Vec<String>) {
    struct Walk<'a> {
        change: &'a ResourceChange,
        repository: &'a str,
        names: &'a mut Vec<String>,
    }
    impl Walk<'_> {
        fn diff(&mut self, before: &Value, after: &Value, path: &mut Vec<PathPart>, name: &str) {
            if before == after || sensitive_at(&self.change.after_unknown, path) {
                return;
            }
            let sensitive = sensitive_at(&self.change.before_sensitive, path)
                || sensitive_at(&self.change.after_sensitive, path);
            if sensitive {
                self.names.push(format!("{name} (sensitive)"));
                return;
            }
            match (before, after) {
                (Value::Object(old), Value::Object(new)) => {
                    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
                    keys.sort();
                    keys.dedup();
                    for key in keys {
                        path.push(PathPart::Key(key.clone()));
                        let child = if name.is_empty() {
                            key.clone()
                        } else {
                            format!("{name}.{key}")
                        };
                        self.diff(
                            old.get(key).unwrap_or(&Value::Null),
                            new.get(key).unwrap_or(&Value::Null),
                            path,
                            &child,
                        );
                        path.pop();
                    }
                }
                (Value::Array(old), Value::Array(new)) => self.diff_list(old, new, path, name),
                (Value::String(old), Value::String(new)) => {
                    if image_tag_of(old, self.repository).is_some()
                        && image_tag_of(new, self.repository).is_some()
                    {
                        return;
                    }
                    match (decoded(old), decoded(new)) {
                        (Some(old), Some(new)) => {
                            path.push(PathPart::Decoded);
                            self.diff(&old, &new, path, name);
                            path.pop();
                        }
                        _ => self.names.push(name.to_owned()),
                    }
                }
                _ => self.names.push(name.to_owned()),
            }
        }

        fn diff_list(
            &mut self,
            old: &[Value],
            new: &[Value],
            path: &mut Vec<PathPart>,
            name: &str,
        ) {
            let named = |item: &Value| item.get("name").and_then(Value::as_str).map(str::to_owned);
            let all_named = old.iter().chain(new).all(|item| named(item).is_some());
            if all_named && !(old.is_empty() && new.is_empty()) {
                let mut keys: Vec<String> = old.iter().chain(new).filter_map(named).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let find = |list: &[Value]| {
                        list.iter()
                            .find(|item| named(item).as_deref() == Some(&key))
                            .cloned()
                            .unwrap_or(Value::Null)
                    };
                    // Sensitivity masks follow positions; a named element has none of
                    // its own, so the parent's mark (checked above) is what counts.
                    self.diff(&find(old), &find(new), path, &format!("{name}[{key}]"));
                }
                return;
            }
            for i in 0..old.len().max(new.len()) {
                path.push(PathPart::Index(i));
                self.diff(
                    old.get(i).unwrap_or(&Value::Null),
                    new.get(i).unwrap_or(&Value::Null),
                    path,
                    &format!("{name}[{i}]"),
                );
                path.pop();
            }
        }
    }
    let mut walk = Walk {
        change,
        repository,
        names,
    };
    walk.diff(&change.before, &change.after, &mut Vec::new(), "");
}
