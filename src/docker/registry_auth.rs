//! Registry logins for the images a build pulls (`FROM` a private registry): the run's own
//! registries (the ECR token the SDK fetched) and the docker CLI's (`config.json`, its
//! credential helpers), handed to BuildKit through the session's `moby.filesync.v1.Auth`
//! service and to the classic builder as `X-Registry-Config`, as the docker CLI does.
//!
//! No secret is ever logged or put in a message: only hosts and where a login came from.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use bollard::auth::DockerCredentials;
use bollard::moby::filesync::v1::auth_server::Auth;
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use super::docker_config::{self, DockerConfig, Login, LoginSource};

/// How long a credential helper may take (a keychain prompt, `ecr-login` calling AWS).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The logins a run's builds may use.
pub struct RegistryLogins {
    /// The run's own registries (host → login): no `docker login` needed for them.
    run: BTreeMap<String, Login>,
    config: DockerConfig,
    /// [`Self::all`], asked of the helpers once per run (each classic build sends it).
    all: tokio::sync::OnceCell<HashMap<String, DockerCredentials>>,
}

impl std::fmt::Debug for RegistryLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogins")
            .field("run", &self.run.keys().collect::<Vec<_>>())
            .field("config", &self.config.path)
            .finish()
    }
}

/// Where a login came from, for messages (never the login itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The run's registry (ECR's token).
    Run,
    File(String),
    Helper(String),
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Run => write!(f, "the run's registry token"),
            Found::File(path) => write!(f, "auths in {path}"),
            Found::Helper(helper) => write!(f, "docker-credential-{helper}"),
        }
    }
}

impl RegistryLogins {
    /// The run's registry logins, and the docker CLI's configuration (`DOCKER_CONFIG` or
    /// `~/.docker`).
    pub fn load(run: &[&DockerCredentials]) -> Result<Self> {
        let config = DockerConfig::load(&docker_config::config_dir())?;
        Ok(Self::new(run, config))
    }

    pub fn new(run: &[&DockerCredentials], config: DockerConfig) -> Self {
        let run = run
            .iter()
            .filter_map(|credentials| {
                Some((
                    credentials.serveraddress.clone()?,
                    Login {
                        username: credentials.username.clone().unwrap_or_default(),
                        secret: credentials.password.clone().unwrap_or_default(),
                        identity_token: false,
                    },
                ))
            })
            .collect();
        Self {
            run,
            config,
            all: tokio::sync::OnceCell::new(),
        }
    }

    /// The config file the logins come from, for messages.
    pub fn config_path(&self) -> String {
        self.config.path.display().to_string()
    }

    /// The login for `host` as BuildKit names it (`registry-1.docker.io` for Docker Hub),
    /// or none (an anonymous pull), as the docker CLI's `authprovider` answers.
    pub async fn login_for(&self, host: &str) -> Result<Option<(Login, Found)>> {
        if let Some(login) = self.run.get(host) {
            return Ok(Some((login.clone(), Found::Run)));
        }
        let key = docker_config::registry_key(host);
        match self.config.source_for(&key) {
            LoginSource::Helper(helper) => Ok(helper_get(&helper, &key, &self.config)
                .await?
                .map(|login| (login, Found::Helper(helper)))),
            LoginSource::File => Ok(self
                .config
                .file_login(&key)?
                .map(|login| (login, Found::File(self.config_path())))),
        }
    }

    /// Every login, keyed as the classic builder's `X-Registry-Config` takes them (the
    /// docker CLI's `GetAllCredentials`: the file or `credsStore`, then each `credHelpers`
    /// host, then the run's registries). A login that cannot be read is left out, with a
    /// warning naming the host (once per run).
    pub async fn all(&self) -> HashMap<String, DockerCredentials> {
        self.all.get_or_init(|| self.read_all()).await.clone()
    }

    async fn read_all(&self) -> HashMap<String, DockerCredentials> {
        let mut all = HashMap::new();
        let mut add = |key: &str, login: Login| {
            all.insert(key.to_owned(), docker_credentials(key, login));
        };
        match self.config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            Some(store) => match helper_list(store, &self.config).await {
                Ok(keys) => {
                    for key in keys {
                        match helper_get(store, &key, &self.config).await {
                            Ok(Some(login)) => add(&key, login),
                            Ok(None) => {}
                            Err(err) => tracing::warn!("{err:#}"),
                        }
                    }
                }
                Err(err) => tracing::warn!("{err:#}"),
            },
            None => {
                for key in self.config.auths.keys() {
                    match self.config.file_login(key) {
                        Ok(Some(login)) => add(key, login),
                        Ok(None) => {}
                        Err(err) => tracing::warn!("{err:#}"),
                    }
                }
            }
        }
        for (key, helper) in &self.config.cred_helpers {
            match helper_get(helper, key, &self.config).await {
                Ok(Some(login)) => add(key, login),
                Ok(None) => {}
                Err(err) => tracing::warn!("{err:#}"),
            }
        }
        for (host, login) in &self.run {
            add(host, login.clone());
        }
        all
    }
}

fn docker_credentials(key: &str, login: Login) -> DockerCredentials {
    let (username, password, identitytoken) = if login.identity_token {
        (Some(login.username), None, Some(login.secret))
    } else {
        (Some(login.username), Some(login.secret), None)
    };
    DockerCredentials {
        username,
        password,
        identitytoken,
        serveraddress: Some(key.to_owned()),
        ..Default::default()
    }
}

/// What `docker-credential-<name> get` prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// `docker-credential-<helper> get` with `key` on stdin, as the docker CLI runs it;
/// "credentials not found" is no login.
async fn helper_get(helper: &str, key: &str, config: &DockerConfig) -> Result<Option<Login>> {
    let output = run_helper(helper, "get", key, config).await?;
    if !output.status.success() {
        let said = helper_said(&output);
        if said.contains("credentials not found") {
            tracing::debug!("docker-credential-{helper} has no login for {key}");
            return Ok(None);
        }
        return Err(anyhow!(
            "the credential helper docker-credential-{helper} (named in {}) failed for {key}: {said}",
            config.path.display()
        ));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|_| {
        anyhow!(
            "the credential helper docker-credential-{helper} answered for {key} with something that is not its JSON ({{\"Username\", \"Secret\"}})"
        )
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    // A helper's user `<token>` marks an identity token (the docker CLI's native store).
    let identity_token = answer.username == "<token>";
    Ok(Some(Login {
        username: if identity_token {
            String::new()
        } else {
            answer.username
        },
        secret: answer.secret,
        identity_token,
    }))
}

/// `docker-credential-<helper> list`: the keys the store holds logins for.
async fn helper_list(helper: &str, config: &DockerConfig) -> Result<Vec<String>> {
    let output = run_helper(helper, "list", "", config).await?;
    if !output.status.success() {
        return Err(anyhow!(
            "the credential helper docker-credential-{helper} (named in {}) failed to list its logins: {}",
            config.path.display(),
            helper_said(&output)
        ));
    }
    let keys: HashMap<String, String> = serde_json::from_slice(&output.stdout).map_err(|_| {
        anyhow!("docker-credential-{helper} list answered with something that is not JSON")
    })?;
    Ok(keys.into_keys().collect())
}

async fn run_helper(
    helper: &str,
    verb: &str,
    input: &str,
    config: &DockerConfig,
) -> Result<std::process::Output> {
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg(verb)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| {
            anyhow!(
                "cannot run the credential helper {program} named in {} ({err}): install it on PATH, or remove it from credsStore/credHelpers",
                config.path.display()
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!(
                "the credential helper {program} {verb} did not answer within {}s",
                HELPER_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("the credential helper {program} {verb} failed"))
}

/// A failed helper's own words: its stdout (where docker's helpers write errors), else stderr.
fn helper_said(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !stdout.is_empty() {
        return stdout;
    }
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// A registry BuildKit asked the session about, and whether deploy had a login for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub host: String,
    pub found: Option<Found>,
}

/// The session's `moby.filesync.v1.Auth`: `Credentials` answers a host's login (empty for
/// an anonymous pull); the token-authority calls are unimplemented, as in the docker CLI's
/// provider without a token authority, so BuildKit fetches registry tokens itself with
/// the login.
pub struct AuthService {
    pub logins: Arc<RegistryLogins>,
    pub asked: Arc<Mutex<Vec<Asked>>>,
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: tonic::Request<CredentialsRequest>,
    ) -> Result<tonic::Response<CredentialsResponse>, tonic::Status> {
        let host = request.into_inner().host;
        let found = self.logins.login_for(&host).await;
        let (response, found) = match found {
            Ok(Some((login, found))) => {
                tracing::debug!("registry login for {host}: from {found}");
                let username = if login.identity_token {
                    String::new()
                } else {
                    login.username
                };
                (
                    CredentialsResponse {
                        username,
                        secret: login.secret,
                    },
                    Some(found),
                )
            }
            Ok(None) => {
                tracing::debug!("no registry login for {host}: pulling anonymously");
                (CredentialsResponse::default(), None)
            }
            Err(err) => {
                tracing::warn!("{err:#}");
                return Err(tonic::Status::unavailable(format!("{err:#}")));
            }
        };
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(Asked { host, found });
        }
        Ok(tonic::Response::new(response))
    }

    async fn fetch_token(
        &self,
        _request: tonic::Request<FetchTokenRequest>,
    ) -> Result<tonic::Response<FetchTokenResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("no token authority"))
    }

    async fn get_token_authority(
        &self,
        _request: tonic::Request<GetTokenAuthorityRequest>,
    ) -> Result<tonic::Response<GetTokenAuthorityResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _request: tonic::Request<VerifyTokenAuthorityRequest>,
    ) -> Result<tonic::Response<VerifyTokenAuthorityResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("no token authority"))
    }
}

/// Whether a build failed because a registry refused an anonymous or wrong login.
pub fn is_login_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "401 unauthorized",
        "no basic auth credentials",
        "authentication required",
        "unauthorized:",
        "pull access denied",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The registry named by a URL in a failure (the classic builder says
/// `Head "http://host/v2/…": no basic auth credentials`).
pub fn registry_in(text: &str) -> Option<String> {
    let at = text.find("https://").or_else(|| text.find("http://"))?;
    let host = docker_config::convert_to_hostname(&text[at..]);
    let host: String = host
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        .collect();
    (!host.is_empty()).then_some(host)
}

/// What to do about a registry that refused the pull: log in, or log in again.
pub fn login_advice(host: &str, found: Option<&Found>, config_path: &str) -> String {
    let login = if host == "registry-1.docker.io" {
        "docker login".to_owned()
    } else {
        format!("docker login {host}")
    };
    match found {
        None => format!(
            "the registry {host} requires a login to pull the base image, and deploy found none for it (it reads the docker CLI's logins: {config_path}, its credsStore and credHelpers; DOCKER_CONFIG moves it): run `{login}`, then run deploy again"
        ),
        Some(found) => format!(
            "the registry {host} refused the login deploy found for it ({found}): run `{login}` again, then run deploy again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_failures_in_the_daemons_words() {
        for text in [
            "failed to solve: pulling from host 127.0.0.1:5002 failed with status code [manifests latest]: 401 Unauthorized",
            "Head \"http://127.0.0.1:5002/v2/base/manifests/latest\": no basic auth credentials",
            "pull access denied for private/base, repository does not exist or may require 'docker login'",
            "unauthorized: authentication required",
        ] {
            assert!(is_login_failure(text), "{text}");
        }
        assert!(!is_login_failure("exit code: 1"));
    }

    #[test]
    fn the_registry_is_found_in_a_url() {
        assert_eq!(
            registry_in("Head \"http://127.0.0.1:5002/v2/base/manifests/latest\": no basic auth credentials")
                .as_deref(),
            Some("127.0.0.1:5002")
        );
        assert_eq!(
            registry_in("GET https://ghcr.io/v2/x: 401").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(registry_in("401 Unauthorized"), None);
    }

    #[test]
    fn the_advice_names_the_registry_and_the_login_command() {
        let none = login_advice("127.0.0.1:5002", None, "/home/me/.docker/config.json");
        assert!(
            none.contains("registry 127.0.0.1:5002 requires a login"),
            "{none}"
        );
        assert!(none.contains("`docker login 127.0.0.1:5002`"), "{none}");
        assert!(none.contains("/home/me/.docker/config.json"), "{none}");
        let refused = login_advice(
            "registry-1.docker.io",
            Some(&Found::Helper("desktop".into())),
            "",
        );
        assert!(refused.contains("docker-credential-desktop"), "{refused}");
        assert!(refused.contains("`docker login` again"), "{refused}");
    }

    #[tokio::test]
    async fn the_runs_registry_needs_no_docker_login() {
        let ecr = DockerCredentials {
            username: Some("AWS".into()),
            password: Some("token".into()),
            serveraddress: Some("123.dkr.ecr.us-east-1.amazonaws.com".into()),
            ..Default::default()
        };
        let logins = RegistryLogins::new(&[&ecr], DockerConfig::default());
        let (login, found) = logins
            .login_for("123.dkr.ecr.us-east-1.amazonaws.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((login.username.as_str(), found), ("AWS", Found::Run));
        assert_eq!(logins.login_for("ghcr.io").await.unwrap(), None);
        let all = logins.all().await;
        assert_eq!(
            all["123.dkr.ecr.us-east-1.amazonaws.com"]
                .password
                .as_deref(),
            Some("token")
        );
        assert!(!format!("{logins:?}").contains("token"));
    }
}
