//! The docker CLI's configuration file, read as the CLI reads it: where it is
//! (`DOCKER_CONFIG`, else `~/.docker`), the registry logins it holds or names (`auths`,
//! `credsStore`, `credHelpers`) and the Docker context it selects (`currentContext`).
//!
//! Lookups follow the CLI's `configfile` and `credentials` packages: a registry's key is its
//! host (`https://index.docker.io/v1/` for Docker Hub), and an `auths` entry written as a URL
//! (`https://registry.example.com/v2/`) still answers for its host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use base64::Engine as _;
use serde::Deserialize;

/// Docker Hub's key in the config file, as `docker login` writes it.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The directory of the docker CLI's configuration: `DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    non_empty("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            non_empty("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".docker")
        })
}

/// What deploy uses of `config.json`; the rest (plugins, proxies, aliases) is ignored.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    pub creds_store: Option<String>,
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    pub current_context: Option<String>,
    /// Where it was read from (for messages); not in the file.
    #[serde(skip)]
    pub path: PathBuf,
}

/// One `auths` entry. `Debug` never shows a secret.
#[derive(Default, Clone, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A registry login: a user and its password, or an identity token (no user). `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub secret: String,
    /// The secret is an OAuth identity token (`identitytoken`, or a helper's `<token>` user).
    pub identity_token: bool,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("identity_token", &self.identity_token)
            .finish()
    }
}

/// Where a registry's login is to be found, per the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginSource {
    /// A `docker-credential-<helper>` program (`credHelpers` for the host, else `credsStore`).
    Helper(String),
    /// The file's own `auths`.
    File,
}

impl DockerConfig {
    /// Reads `<dir>/config.json`; a missing file is an empty configuration, as for the CLI.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    ..Self::default()
                })
            }
            Err(err) => {
                return Err(anyhow!(
                    "cannot read the Docker config file {}: {err}",
                    path.display()
                ))
            }
        };
        let mut config = Self::parse(&text).map_err(|err| {
            anyhow!(
                "the Docker config file {} is not valid JSON ({err}); fix it (docker cannot use it either) or point DOCKER_CONFIG at another directory",
                path.display()
            )
        })?;
        config.path = path;
        Ok(config)
    }

    pub fn parse(text: &str) -> serde_json::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text)
    }

    /// Where the login for `key` (see [`registry_key`]) is: a helper, or the file.
    pub fn source_for(&self, key: &str) -> LoginSource {
        let helper = self
            .cred_helpers
            .get(key)
            .or(self.creds_store.as_ref())
            .filter(|helper| !helper.is_empty());
        match helper {
            Some(helper) => LoginSource::Helper(helper.clone()),
            None => LoginSource::File,
        }
    }

    /// The file's own login for `key`: the exact entry, else one whose key is a URL of
    /// that host (the CLI's legacy lookup). An entry that cannot be decoded is an error
    /// naming the entry, never its content.
    pub fn file_login(&self, key: &str) -> Result<Option<Login>> {
        let entry = self.auths.get_key_value(key).or_else(|| {
            self.auths
                .iter()
                .find(|(name, _)| convert_to_hostname(name) == key)
        });
        match entry {
            Some((name, entry)) => entry.login().map_err(|why| {
                anyhow!(
                    "the login for {name} in {} cannot be read ({why}); run `docker login {}` again",
                    self.path.display(),
                    convert_to_hostname(name)
                )
            }),
            None => Ok(None),
        }
    }
}

impl AuthEntry {
    /// The login this entry holds, if any: `auth` (base64 `user:password`) wins over
    /// `username`/`password`; an `identitytoken` is the secret when present.
    fn login(&self) -> std::result::Result<Option<Login>, &'static str> {
        let (mut username, mut password) = (
            self.username.clone().unwrap_or_default(),
            self.password.clone().unwrap_or_default(),
        );
        if let Some(auth) = self.auth.as_deref().filter(|auth| !auth.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| "its `auth` is not base64")?;
            let decoded = String::from_utf8(decoded).map_err(|_| "its `auth` is not text")?;
            let (user, pass) = decoded
                .split_once(':')
                .filter(|(user, _)| !user.is_empty())
                .ok_or("its `auth` is not user:password")?;
            username = user.to_owned();
            password = pass.trim_matches('\0').to_owned();
        }
        if let Some(token) = self.identity_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Login {
                username,
                secret: token.to_owned(),
                identity_token: true,
            }));
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Login {
            username,
            secret: password,
            identity_token: false,
        }))
    }
}

/// The config file's key for a registry host as BuildKit names it: Docker Hub's hosts are
/// `https://index.docker.io/v1/` (the docker CLI's `authprovider` and `getAuthConfigKey`);
/// any other host is itself.
pub fn registry_key(host: &str) -> String {
    match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => DOCKER_HUB_KEY.to_owned(),
        _ => host.to_owned(),
    }
}

/// The host of a config key written as a URL or `host/path` (the CLI's `ConvertToHostname`).
pub fn convert_to_hostname(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> DockerConfig {
        DockerConfig::parse(text).unwrap()
    }

    #[test]
    fn logins_from_auth_from_username_and_password_and_identity_tokens() {
        let c = config(
            r#"{"auths": {
                "registry.example.com": {"auth": "dXNlcjpwYTpzcw=="},
                "https://legacy.example.com/v1/": {"username": "me", "password": "pw"},
                "https://index.docker.io/v1/": {"auth": "", "identitytoken": "tok"},
                "empty.example.com": {}
            }}"#,
        );
        let login = c.file_login("registry.example.com").unwrap().unwrap();
        assert_eq!(
            (login.username.as_str(), login.secret.as_str()),
            ("user", "pa:ss")
        );
        assert!(!login.identity_token);
        // A key written as a URL answers for its host.
        let login = c.file_login("legacy.example.com").unwrap().unwrap();
        assert_eq!(
            (login.username.as_str(), login.secret.as_str()),
            ("me", "pw")
        );
        let login = c
            .file_login(&registry_key("registry-1.docker.io"))
            .unwrap()
            .unwrap();
        assert_eq!(login.secret, "tok");
        assert!(login.identity_token);
        assert_eq!(c.file_login("empty.example.com").unwrap(), None);
        assert_eq!(c.file_login("other.example.com").unwrap(), None);
    }

    #[test]
    fn a_broken_auth_entry_is_named_without_its_content() {
        let c = config(r#"{"auths": {"r.example.com": {"auth": "bm9jb2xvbg=="}}}"#);
        let err = c.file_login("r.example.com").unwrap_err().to_string();
        assert!(err.contains("r.example.com"), "{err}");
        assert!(err.contains("docker login r.example.com"), "{err}");
        assert!(
            !err.contains("bm9jb2xvbg") && !err.contains("nocolon"),
            "{err}"
        );
    }

    #[test]
    fn helpers_per_host_beat_the_store_which_beats_the_file() {
        let c = config(
            r#"{"credsStore": "desktop", "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}}"#,
        );
        assert_eq!(
            c.source_for("123.dkr.ecr.us-east-1.amazonaws.com"),
            LoginSource::Helper("ecr-login".into())
        );
        assert_eq!(
            c.source_for("ghcr.io"),
            LoginSource::Helper("desktop".into())
        );
        assert_eq!(config("{}").source_for("ghcr.io"), LoginSource::File);
        assert_eq!(
            config(r#"{"credsStore": ""}"#).source_for("ghcr.io"),
            LoginSource::File
        );
    }

    #[test]
    fn registry_keys_and_hostnames_are_the_clis() {
        assert_eq!(registry_key("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("127.0.0.1:5002"), "127.0.0.1:5002");
        assert_eq!(
            convert_to_hostname("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(
            convert_to_hostname("http://127.0.0.1:5002"),
            "127.0.0.1:5002"
        );
        assert_eq!(convert_to_hostname("ghcr.io/team"), "ghcr.io");
        assert_eq!(convert_to_hostname("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn the_current_context_and_an_empty_file() {
        assert_eq!(
            config(r#"{"currentContext": "colima"}"#)
                .current_context
                .as_deref(),
            Some("colima")
        );
        assert!(config("").auths.is_empty());
        assert!(DockerConfig::parse("{").is_err());
    }
}
