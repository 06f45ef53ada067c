//! The closing `terraform apply` as arguments: what it rolls (every service, or some
//! through `image_tags` and `-target`), HCL quoting for `-var`, the workspace a tfvars
//! file names, and whether the targets match anything in the state. A value of the plan,
//! built here once; `crate::terraform` runs it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::config::{self, TerraformConfig};

/// What the closing `terraform apply` rolls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Roll {
    /// Every service, through the global `image_tag` variable (a full deploy).
    All { tag: String },
    /// Exactly these services: `image_tags` for them and `-target` at their resources.
    /// `tags` gives a service its own tag instead of `tag` (a promotion, `deploy undo`
    /// and the automatic rollback: services may run different commits).
    Only {
        services: Vec<String>,
        tag: String,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        tags: std::collections::BTreeMap<String, String>,
        /// Services whose task definition is replaced (`-replace` of their target that
        /// names a task definition) though terraform's state already holds their tag:
        /// `--restore-drift`, where what runs was changed outside terraform, which may
        /// not see it (a provider that does not refresh it, `ignore_changes`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        renew: Vec<String>,
    },
}

impl Roll {
    /// Exactly these services, each to its own tag (`deploy undo`, the automatic
    /// rollback). Any of the tags will do for the global variable (see
    /// [`Apply::plan_args`]): the targets confine the apply to these services.
    pub fn restore(tags: std::collections::BTreeMap<String, String>) -> Self {
        Roll::Only {
            services: tags.keys().cloned().collect(),
            tag: tags.values().next().cloned().unwrap_or_default(),
            tags,
            renew: Vec::new(),
        }
    }

    /// The services a targeted roll names (`None`: every service).
    pub fn targeted(&self) -> Option<Vec<String>> {
        match self {
            Roll::All { .. } => None,
            Roll::Only { services, .. } => Some(services.clone()),
        }
    }
}

/// The resources a planned service owns: its `terraform.targets`, expanded.
#[derive(Debug, Clone)]
pub struct ServiceResources {
    pub service: String,
    /// The ECR repository its images are named after (`<registry>/<repository>:<tag>`).
    pub repository: String,
    pub targets: Vec<String>,
}

/// How a roll's `terraform plan` runs, besides what it rolls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `-lock-timeout`: how long terraform waits for its state lock. A run queued with
    /// `--lock-wait` plans while the run ahead may be applying, and then waits for
    /// terraform's lock as long as it waits for its own.
    pub lock_timeout: Option<std::time::Duration>,
}

/// A `terraform apply`, as arguments (never through a shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Apply {
    /// The terraform root, relative to the repository root (where terraform runs from).
    pub dir: PathBuf,
    /// The tfvars file as terraform will read it (relative to `dir`, or absolute).
    pub var_file: PathBuf,
    /// The workspace the tfvars file's name implies (`tfvars/sandbox.tfvars` → `sandbox`).
    pub workspace: String,
    pub roll: Roll,
}

impl Apply {
    /// `terraform plan` with exactly the roll's variables and targets, saving the plan
    /// to `out`; [`Apply::apply_saved_args`] applies it. (A run never applies without a
    /// saved plan: what the operator reviewed is what is applied.)
    pub fn plan_args(&self, config: &TerraformConfig, out: &Path) -> Vec<String> {
        self.plan_args_with(config, out, PlanOptions::default())
    }

    /// [`Apply::plan_args`] as a run makes it: the one author of that command line, so
    /// that nobody patches it by position.
    pub fn plan_args_with(
        &self,
        config: &TerraformConfig,
        out: &Path,
        options: PlanOptions,
    ) -> Vec<String> {
        let mut args = vec![
            format!("-chdir={}", self.dir.display()),
            "plan".to_owned(),
            "-input=false".to_owned(),
        ];
        if let Some(wait) = options.lock_timeout {
            args.push(format!("-lock-timeout={}s", wait.as_secs()));
        }
        args.push(format!("-out={}", out.display()));
        args.extend(self.variables_and_targets(config));
        args
    }

    /// `terraform apply <planfile>`: the saved plan carries its variables and targets
    /// (terraform refuses -var and -target beside one), and applying a saved plan never
    /// prompts: deploy's own confirmation, given after the review, is the approval.
    pub fn apply_saved_args(&self, planfile: &Path) -> Vec<String> {
        vec![
            format!("-chdir={}", self.dir.display()),
            "apply".to_owned(),
            "-input=false".to_owned(),
            planfile.display().to_string(),
        ]
    }

    fn variables_and_targets(&self, config: &TerraformConfig) -> Vec<String> {
        let mut args = vec![format!("-var-file={}", self.var_file.display())];
        match &self.roll {
            Roll::All { tag } => {
                args.push("-var".to_owned());
                args.push(format!("{}={tag}", config.image_tag_var));
            }
            Roll::Only {
                services,
                tag,
                tags,
                renew,
            } => {
                let entries: Vec<String> = services
                    .iter()
                    .map(|service| {
                        let tag = tags.get(service).unwrap_or(tag);
                        format!("{}={}", hcl_string(service), hcl_string(tag))
                    })
                    .collect();
                args.push("-var".to_owned());
                args.push(format!(
                    "{}={{{}}}",
                    config.image_tags_var,
                    entries.join(",")
                ));
                // A root may declare `image_tag` without a default (natural when every
                // full deploy sets it), and terraform then refuses any apply that leaves
                // it unset, targeted or not. The -targets below confine the apply to the
                // planned services, whose `image_tags` entries win, so giving the global
                // variable the roll's tag too changes nothing else.
                args.push("-var".to_owned());
                args.push(format!("{}={tag}", config.image_tag_var));
                for service in services {
                    args.extend(
                        targets_of(config, service)
                            .into_iter()
                            .map(|target| format!("-target={target}")),
                    );
                }
                for service in renew {
                    args.extend(
                        targets_of(config, service)
                            .into_iter()
                            .filter(|target| names_a_task_definition(target))
                            .map(|target| format!("-replace={target}")),
                    );
                }
            }
        }
        args
    }

    /// The services this apply rolls, with the resources each one owns (the targets
    /// expanded), for the review of its plan. A full roll rolls every service of
    /// `all_services`.
    pub fn owners(
        &self,
        config: &TerraformConfig,
        all_services: &[(String, String)],
    ) -> Vec<ServiceResources> {
        let targeted = self.roll.targeted();
        let rolled = |name: &str| {
            targeted
                .as_ref()
                .is_none_or(|services| services.iter().any(|s| s == name))
        };
        all_services
            .iter()
            .filter(|(name, _)| rolled(name))
            .map(|(name, repository)| ServiceResources {
                service: name.clone(),
                repository: repository.clone(),
                targets: targets_of(config, name),
            })
            .collect()
    }
}

/// Whether a target address is a task definition (`aws_ecs_task_definition.…`, any
/// resource whose type or name says `task_definition`), not a service: replacing a
/// task definition registers a new revision, replacing a service would recreate it.
pub fn names_a_task_definition(target: &str) -> bool {
    let resource = target.split('[').next().unwrap_or(target);
    resource.contains("task_definition") && !resource.contains("aws_ecs_service")
}

/// `terraform.targets` for one service: the resources it owns.
pub fn targets_of(config: &TerraformConfig, service: &str) -> Vec<String> {
    config
        .targets
        .iter()
        .map(|target| config::expand(target, service))
        .collect()
}

/// The workspace a tfvars file selects: its file name without the extension.
pub fn workspace_for(var_file: &Path) -> Option<String> {
    let name = var_file.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".tfvars.json")
        .or_else(|| name.strip_suffix(".tfvars"))?;
    (!stem.is_empty()).then(|| stem.to_owned())
}

/// A value as an HCL quoted string (for `-var 'name={"key"="value"}'`). Rust's `{:?}`
/// is not HCL: it writes `\u{e9}` for é, which terraform rejects.
pub fn hcl_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            // `${` and `%{` open template sequences; doubling the sign escapes them.
            '$' | '%' if chars.peek() == Some(&'{') => {
                quoted.push(c);
                quoted.push(c);
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The `-target` addresses that match nothing terraform knows: not in the state, and
/// not a new instance of a resource the state has (a service added to a `for_each`
/// would be created, and so is fine). An empty state (an environment never applied)
/// would create everything: nothing is reported then.
pub fn unmatched_targets<'a>(targets: &'a [String], state: &[String]) -> Vec<&'a str> {
    if state.is_empty() {
        return Vec::new();
    }
    targets
        .iter()
        .map(String::as_str)
        .filter(|target| {
            let resource = resource_of(target);
            !state
                .iter()
                .any(|address| within(target, address) || resource_of(address) == resource)
        })
        .collect()
}

/// Whether `address` is `target` or inside it (a module, or a resource's instance):
/// what `-target=<target>` reaches.
pub fn within(target: &str, address: &str) -> bool {
    address == target
        || address
            .strip_prefix(target)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// An address without its final instance key: `a.b["x"]` → `a.b`.
fn resource_of(address: &str) -> &str {
    match address.strip_suffix(']').and_then(|a| a.rfind('[')) {
        Some(open) => &address[..open],
        None => address,
    }
}

/// The state's addresses that look like they belong to `service` (an instance key or
/// a name part equal to it), to show where a target should point.
pub fn addresses_of<'a>(service: &str, state: &'a [String]) -> Vec<&'a str> {
    let key = format!("[{}]", hcl_string(service));
    state
        .iter()
        .map(String::as_str)
        .filter(|address| {
            address.contains(&key)
                || address
                    .split(['.', '[', ']'])
                    .any(|part| part == service || part.trim_matches('"') == service)
        })
        .collect()
}

#[cfg(test)]
mod tests;
