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

/// The profile for the run: `--profile` (which must exist), or with `-y` the default
/// chain, or else a menu (SPEC §3: "a menu of profiles").
pub fn choose(requested: Option<&str>, assume_yes: bool) -> Result<Option<String>> {
    let profiles = available();
    if let Some(name) = requested {
        if profiles.iter().any(|p| p == name) {
            return Ok(Some(name.to_owned()));
        }
        return Err(UsageError::new(format!(
            "AWS profile {name:?} not found in {}; profiles there: {}. Create it with `aws configure --profile {name}` (or `aws configure sso`)",
            files_searched(),
            if profiles.is_empty() { "none".to_owned() } else { profiles.join(", ") }
        ))
        .into());
    }
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
}
