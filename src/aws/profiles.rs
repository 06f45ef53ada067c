//! AWS profiles: which exist (`~/.aws/config` and `~/.aws/credentials`, or the files
//! `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` name), and choosing one.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::error::UsageError;

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn config_file() -> Option<PathBuf> {
    std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/config")))
}

fn credentials_file() -> Option<PathBuf> {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/credentials")))
}

/// Profile names in a config file (`[profile x]`, `[default]`) or a credentials file
/// (`[x]`).
pub fn parse_profiles(text: &str, is_config: bool) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let section = line.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
            if section == "default" {
                return Some("default".to_owned());
            }
            if is_config {
                section
                    .strip_prefix("profile ")
                    .map(|p| p.trim().to_owned())
            } else {
                Some(section.to_owned())
            }
        })
        .collect()
}

/// Every profile defined in the config and credentials files, sorted.
pub fn available() -> Vec<String> {
    let mut names = BTreeSet::new();
    for (path, is_config) in [(config_file(), true), (credentials_file(), false)] {
        if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
            names.extend(parse_profiles(&text, is_config));
        }
    }
    names.into_iter().collect()
}

fn files_searched() -> String {
    [config_file(), credentials_file()]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The one check of a profile named on the command line (`--profile`, and the
/// `--compare-profile` / `--profile-from` of the commands that read two environments):
/// it must be defined in the AWS config or credentials file. A usage error (exit 2),
/// naming the files looked in and the profiles found there; every command makes it
/// before any AWS call, through [`super::Contexts::for_profiles`].
pub fn check(flag: &str, name: &str) -> Result<()> {
    let profiles = available();
    if profiles.iter().any(|p| p == name) {
        return Ok(());
    }
    Err(UsageError::new(not_found(flag, name, &profiles)).into())
}

fn not_found(flag: &str, name: &str, profiles: &[String]) -> String {
    let files = files_searched();
    let looked = if files.is_empty() {
        "no AWS config or credentials file (HOME is not set)".to_owned()
    } else {
        files
    };
    let create = format!("`aws configure --profile {name}` (or `aws configure sso`)");
    if profiles.is_empty() {
        format!("{flag} {name}: no such AWS profile in {looked}, which define none; create it with {create}")
    } else {
        format!(
            "{flag} {name}: no such AWS profile in {looked}; profiles there: {}. Pass one of those, or create it with {create}",
            profiles.join(", ")
        )
    }
}

/// The profile for a run not given `--profile`: with `-y` (or without a terminal, or
/// with no profile defined) the default chain, or else a menu (SPEC §3: "a menu of
/// profiles").
pub fn choose(assume_yes: bool) -> Result<Option<String>> {
    let profiles = available();
    if assume_yes || profiles.is_empty() || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let current = std::env::var("AWS_PROFILE").ok();
    let default = current
        .as_ref()
        .and_then(|c| profiles.iter().position(|p| p == c))
        .unwrap_or(0);
    let index = dialoguer::Select::new()
        .with_prompt("AWS profile to deploy with")
        .items(&profiles)
        .default(default)
        .interact()
        .context("no profile chosen")?;
    Ok(Some(profiles[index].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_both_file_shapes() {
        let config = "[default]\nregion = eu-west-1\n[profile sandbox]\n[sso-session corp]\n[profile prod ]\n";
        assert_eq!(parse_profiles(config, true), ["default", "sandbox", "prod"]);
        let credentials = "[default]\naws_access_key_id = x\n[ci]\n";
        assert_eq!(parse_profiles(credentials, false), ["default", "ci"]);
    }

    #[test]
    fn an_unknown_profile_names_the_flag_and_the_profiles_there_or_that_there_are_none() {
        let some = not_found(
            "--profile",
            "prod",
            &["ci".to_owned(), "sandbox".to_owned()],
        );
        assert!(
            some.starts_with("--profile prod: no such AWS profile in "),
            "{some}"
        );
        assert!(
            some.contains("; profiles there: ci, sandbox. Pass one of those, or create it with `aws configure --profile prod`"),
            "{some}"
        );
        let none = not_found("--profile-from", "prod", &[]);
        assert!(
            none.contains(", which define none; create it with `aws configure --profile prod`"),
            "{none}"
        );
    }
}
