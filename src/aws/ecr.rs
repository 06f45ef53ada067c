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
    /// A client of this registry's HTTP API with these credentials (`deploy promote`).
    pub fn registry_client(&self) -> Result<crate::registry::RegistryClient> {
        crate::registry::RegistryClient::new(
            &self.host,
            Some(crate::registry::Credentials::new(
                &self.username,
                &self.password,
            )),
        )
    }

    /// A client of `host` with these credentials: the account's token holds for each
    /// of its registries (`status` reads images of several hosts with one token).
    pub fn client_for(&self, host: &str) -> Result<crate::registry::RegistryClient> {
        crate::registry::RegistryClient::new(
            host,
            Some(crate::registry::Credentials::new(
                &self.username,
                &self.password,
            )),
        )
    }

    pub fn docker_credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.clone()),
            serveraddress: Some(self.host.clone()),
            ..Default::default()
        }
    }
}

/// The registry digest of each of `images` (image references as ECS names them; answers
/// in the same order, see [`crate::registry::digests::of_images`]), asked with the ECR
/// credentials of the account `aws` acts for: one token (GetAuthorizationToken) holds
/// for each of its registries. A registry it is not for, or no token at all, is asked
/// anonymously. Nothing is asked of AWS when no image needs a registry's answer.
pub async fn image_digests<S: AsRef<str>>(
    aws: &aws::Aws,
    images: &[S],
) -> Vec<Result<String, String>> {
    use crate::registry::{digests, RegistryClient};
    let access = if digests::any_to_ask(images) {
        let ecr = aws_sdk_ecr::Client::new(&aws.sdk);
        Some(registry_access(&ecr, None, aws.profile.as_deref()).await)
    } else {
        None
    };
    digests::of_images(images, |host| match &access {
        Some(Ok(access)) => access.client_for(host),
        _ => RegistryClient::new(host, None),
    })
    .await
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
                return Err(anyhow!(aws::explain(
                    "ecr:DescribeRepositories",
                    &err,
                    profile
                )))
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
        .map_err(|err| anyhow!(aws::explain("ecr:GetAuthorizationToken", &err, profile)))
        .context("cannot get ECR credentials (GetAuthorizationToken)")?;
    let data = output
        .authorization_data()
        .first()
        .context("ECR returned no authorization data")?;
    let token = data
        .authorization_token()
        .context("ECR returned no token")?;
    let host = match host_override {
        Some(host) => host.to_owned(),
        None => registry_host(
            data.proxy_endpoint()
                .context("ECR returned no proxy endpoint")?,
        ),
    };
    let (username, password) = parse_token(token)?;
    Ok(RegistryAccess {
        host,
        username,
        password,
    })
}

/// An ECR authorization token: base64 of `user:password` (the user is `AWS`).
fn parse_token(token: &str) -> Result<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .context("the ECR token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR token is not text")?;
    let (username, password) = decoded
        .split_once(':')
        .context("the ECR token is not user:password")?;
    Ok((username.to_owned(), password.to_owned()))
}

/// The registry host of an ECR proxy endpoint (`https://<host>` → `<host>`).
fn registry_host(proxy_endpoint: &str) -> String {
    proxy_endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn the_token_is_user_and_password_split_at_the_first_colon() {
        assert_eq!(
            parse_token(&token("AWS:eyJwYXlsb2Fk:with:colons")).unwrap(),
            ("AWS".to_owned(), "eyJwYXlsb2Fk:with:colons".to_owned())
        );
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong_and_never_show_the_token() {
        let secret = "AWSsecretwithoutcolon";
        for (token, message) in [
            ("not base64!".to_owned(), "the ECR token is not base64"),
            (
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
                "the ECR token is not text",
            ),
            (token(secret), "the ECR token is not user:password"),
        ] {
            let err = parse_token(&token).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert!(!format!("{err:#}").contains(secret));
        }
    }

    #[test]
    fn the_host_is_the_proxy_endpoint_without_scheme_or_slash() {
        assert_eq!(
            registry_host("https://1234.dkr.ecr.eu-west-1.amazonaws.com"),
            "1234.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(registry_host("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let (username, password) = parse_token(&token("AWS:s3cr3t-password")).unwrap();
        let access = RegistryAccess {
            host: "h".into(),
            username,
            password,
        };
        assert!(!format!("{access:?}").contains("s3cr3t"));
        assert_eq!(
            access.docker_credentials().password.as_deref(),
            Some("s3cr3t-password")
        );
    }
}
