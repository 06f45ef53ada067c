//! ECR: repository lookup and registry credentials (GetAuthorizationToken).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use bollard::auth::DockerCredentials;

use crate::aws;

/// Where to push, and the credentials to do it with. `Debug` never shows the password.
pub struct RegistryAccess {
    /// Host (and port) images are pushed to.
    pub host: String,
    pub username: String,
    password: String,
}

impl std::fmt::Debug for RegistryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RegistryAccess {
    pub fn docker_credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.clone()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        }
    }
}

/// Finds each repository's URI; a missing one is an error naming it and the bootstrap.
pub async fn repository_uris(
    client: &aws_sdk_ecr::Client,
    names: &[String],
    profile: Option<&str>,
) -> Result<BTreeMap<String, String>> {
    let mut uris = BTreeMap::new();
    // DescribeRepositories takes up to 100 names a call.
    for chunk in names.chunks(100) {
        let result = client
            .describe_repositories()
            .set_repository_names(Some(chunk.to_vec()))
            .send()
            .await;
        match result {
            Ok(output) => {
                for repo in output.repositories() {
                    if let (Some(name), Some(uri)) = (repo.repository_name(), repo.repository_uri())
                    {
                        uris.insert(name.to_owned(), uri.to_owned());
                    }
                }
            }
            Err(err) => {
                let not_found = err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_not_found_exception());
                if not_found {
                    // Ask one by one to name exactly which are missing.
                    let mut missing = Vec::new();
                    for name in chunk {
                        let one = client
                            .describe_repositories()
                            .repository_names(name)
                            .send()
                            .await;
                        match one {
                            Ok(output) => {
                                for repo in output.repositories() {
                                    if let (Some(n), Some(uri)) =
                                        (repo.repository_name(), repo.repository_uri())
                                    {
                                        uris.insert(n.to_owned(), uri.to_owned());
                                    }
                                }
                            }
                            Err(_) => missing.push(name.clone()),
                        }
                    }
                    bail!(
                        "ECR repository {} does not exist in this account/region; was the environment bootstrapped (infra/scripts/bootstrap.sh)? Nothing was built or pushed",
                        missing.join(", ")
                    );
                }
                return Err(anyhow!(aws::explain(&err, profile)))
                    .context("cannot look up the ECR repositories");
            }
        }
    }
    Ok(uris)
}

/// Registry credentials from GetAuthorizationToken. `host_override` (a local registry)
/// replaces the ECR host; the credentials are still ECR's.
pub async fn registry_access(
    client: &aws_sdk_ecr::Client,
    host_override: Option<&str>,
    profile: Option<&str>,
) -> Result<RegistryAccess> {
    let output = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, profile)))
        .context("cannot get ECR credentials (GetAuthorizationToken)")?;
    let data = output
        .authorization_data()
        .first()
        .context("ECR returned no authorization data")?;
    let token = data
        .authorization_token()
        .context("ECR returned no token")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .context("the ECR token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR token is not text")?;
    let (username, password) = decoded
        .split_once(':')
        .context("the ECR token is not user:password")?;
    let host = match host_override {
        Some(host) => host.to_owned(),
        None => {
            let endpoint = data
                .proxy_endpoint()
                .context("ECR returned no proxy endpoint")?;
            endpoint
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned()
        }
    };
    Ok(RegistryAccess {
        host,
        username: username.to_owned(),
        password: password.to_owned(),
    })
}
