//! The one digest lookup of every reader that can live without an answer (`status`,
//! the run's ledger that `history` and `undo` read): many images asked side by side,
//! one deadline for them all, and a registry that cannot be reached asked once. Each
//! registry's first image goes alone: when it shows the registry unreachable (a name
//! that does not resolve, a refused connection, a connection dropped on every try, no
//! answer in time), the registry's other images are not asked, and one warning names
//! the host and the cause. Promote's checks, which cannot live without an answer, ask
//! through [`super::copy::fetch_manifest`], the same request.
//!
//! [`of_images`] is the lookup by image reference (as ECS task definitions name them):
//! a reference that pins its digest is its own answer, one that names no registry or
//! no tag says so, and the rest are asked through [`lookup`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::time::Instant;

use super::client::{self, RegistryClient};
use super::copy::{fetch_manifest_within, Place};
use super::failure;

/// Tries of one digest read when the registry drops the connection or answers 5xx:
/// a read is cheap to ask again later, and the deadline bounds them all anyway.
pub const ATTEMPTS: u32 = 3;

/// Reads in flight at once (all registries together).
const CONCURRENCY: usize = 8;

/// The deadline of a command's digest reads: `DEPLOY_REGISTRY_TIMEOUT` or 60 s, as
/// one request's answer (client::answer_timeout).
pub fn deadline() -> Duration {
    client::answer_timeout()
}

/// An image whose digest is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// `host[:port]`, a key of the clients given to [`lookup`].
    pub host: String,
    pub repository: String,
    /// A tag, or a digest (`sha256:…`).
    pub reference: String,
}

/// What an image reference asks of its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// It pins its digest (`…@sha256:…`): nothing to ask.
    Pinned(String),
    /// A tag to look up.
    Lookup(Wanted),
    /// It cannot be asked, and why.
    Unaskable(String),
}

/// What `image` asks of its registry.
pub fn asked_of(image: &str) -> Asked {
    let Some(reference) = super::split_reference(image) else {
        return Asked::Unaskable(format!("{image} names no registry"));
    };
    if let Some(digest) = reference.digest {
        return Asked::Pinned(digest);
    }
    match reference.tag {
        Some(tag) => Asked::Lookup(Wanted {
            host: reference.host,
            repository: reference.repository,
            reference: tag,
        }),
        None => Asked::Unaskable(format!("{image} has no tag")),
    }
}

/// Whether any of `images` needs a registry to answer (so that credentials are worth
/// fetching).
pub fn any_to_ask<S: AsRef<str>>(images: &[S]) -> bool {
    images
        .iter()
        .any(|image| matches!(asked_of(image.as_ref()), Asked::Lookup(_)))
}

/// The digest of each of `images` (image references; answers in the same order): a
/// pinned one as it is, the others asked side by side under one deadline ([`lookup`]),
/// each host through the client `client_for` gives (asked once per host). `Err` says
/// why a digest is unknown: no registry or tag named, no client, not in the registry,
/// the registry did not answer.
pub async fn of_images<S: AsRef<str>>(
    images: &[S],
    mut client_for: impl FnMut(&str) -> anyhow::Result<RegistryClient>,
) -> Vec<Result<String, String>> {
    let mut answers: Vec<Result<String, String>> = Vec::with_capacity(images.len());
    let mut clients: BTreeMap<String, RegistryClient> = BTreeMap::new();
    let mut no_client: BTreeMap<String, String> = BTreeMap::new();
    // (index in `answers`, what to ask) for the images a registry must answer.
    let mut asked: Vec<(usize, Wanted)> = Vec::new();
    for image in images {
        match asked_of(image.as_ref()) {
            Asked::Pinned(digest) => answers.push(Ok(digest)),
            Asked::Unaskable(why) => answers.push(Err(why)),
            Asked::Lookup(wanted) => {
                let host = wanted.host.clone();
                if !clients.contains_key(&host) && !no_client.contains_key(&host) {
                    match client_for(&host) {
                        Ok(client) => {
                            clients.insert(host.clone(), client);
                        }
                        Err(err) => {
                            no_client.insert(host.clone(), format!("{err:#}"));
                        }
                    }
                }
                match no_client.get(&host) {
                    Some(why) => answers.push(Err(why.clone())),
                    None => {
                        asked.push((answers.len(), wanted));
                        answers.push(Err("not asked".to_owned()));
                    }
                }
            }
        }
    }
    if asked.is_empty() {
        return answers;
    }
    let wanted: Vec<Wanted> = asked.iter().map(|(_, wanted)| wanted.clone()).collect();
    let found = lookup(&clients, &wanted).await;
    for ((index, wanted), answer) in asked.into_iter().zip(found) {
        answers[index] = match answer {
            Ok(Some(digest)) => Ok(digest),
            Ok(None) => Err(format!(
                "{}/{}:{} is not in its registry",
                wanted.host, wanted.repository, wanted.reference
            )),
            Err(reason) => Err(reason),
        };
    }
    answers
}

/// What the registry said of one image: its digest, no such manifest (`Ok(None)`), or
/// why it could not tell.
pub type Answer = Result<Option<String>, String>;

/// The digest of each of `wanted` (answers in the same order), asked of `clients`
/// (one per host; a host without a client is an answer of its own).
pub async fn lookup(clients: &BTreeMap<String, RegistryClient>, wanted: &[Wanted]) -> Vec<Answer> {
    let until = Instant::now() + deadline();
    let mut by_host: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, image) in wanted.iter().enumerate() {
        by_host.entry(image.host.as_str()).or_default().push(index);
    }
    let mut answers: Vec<Option<Answer>> = vec![None; wanted.len()];
    // Each registry's first image, side by side across registries.
    let firsts: Vec<(usize, Result<Option<String>, Failure>)> =
        futures_util::stream::iter(by_host.values())
            .map(|indices| {
                let index = indices[0];
                async move { (index, ask(clients, &wanted[index], until).await) }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut rest = Vec::new();
    let mut warned = std::collections::BTreeSet::new();
    for (index, answer) in firsts {
        let host = wanted[index].host.as_str();
        match answer {
            Err(Failure::Unreachable(cause)) => {
                let all = &by_host[host];
                tracing::warn!(
                    "registry {host} cannot be reached: {cause}; the digests of its {} image(s) are unknown",
                    all.len()
                );
                warned.insert(host);
                for other in all {
                    answers[*other] =
                        Some(Err(format!("registry {host} cannot be reached: {cause}")));
                }
            }
            answer => {
                if let Err(failure) = &answer {
                    tracing::warn!("registry {host}: {}", failure.reason());
                    warned.insert(host);
                }
                answers[index] = Some(answer.map_err(Failure::into_reason));
                rest.extend_from_slice(&by_host[host][1..]);
            }
        }
    }
    let later: Vec<(usize, Result<Option<String>, Failure>)> = futures_util::stream::iter(rest)
        .map(|index| async move { (index, ask(clients, &wanted[index], until).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (index, answer) in later {
        if let Err(failure) = &answer {
            let host = wanted[index].host.as_str();
            if warned.insert(host) {
                tracing::warn!("registry {host}: {}", failure.reason());
            }
        }
        answers[index] = Some(answer.map_err(Failure::into_reason));
    }
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err("not asked".to_owned())))
        .collect()
}

/// Why one read gave no digest.
#[derive(Debug)]
enum Failure {
    /// The registry cannot be reached: its other images are not asked.
    Unreachable(String),
    /// This image's read failed (a 403, a manifest that does not parse).
    Other(String),
}

impl Failure {
    fn reason(&self) -> &str {
        match self {
            Failure::Unreachable(reason) | Failure::Other(reason) => reason,
        }
    }

    fn into_reason(self) -> String {
        match self {
            Failure::Unreachable(reason) | Failure::Other(reason) => reason,
        }
    }
}

async fn ask(
    clients: &BTreeMap<String, RegistryClient>,
    image: &Wanted,
    until: Instant,
) -> Result<Option<String>, Failure> {
    let Some(registry) = clients.get(&image.host) else {
        return Err(Failure::Other(format!(
            "no client for registry {}",
            image.host
        )));
    };
    let place = Place {
        registry,
        repository: &image.repository,
    };
    let read = fetch_manifest_within(place, &image.reference, ATTEMPTS);
    match tokio::time::timeout_at(until, read).await {
        Err(_) => Err(Failure::Unreachable(format!(
            "no answer within {}s (DEPLOY_REGISTRY_TIMEOUT)",
            deadline().as_secs()
        ))),
        Ok(Ok(manifest)) => Ok(manifest.map(|m| m.digest)),
        Ok(Err(err)) if failure::is_unreachable(&err) || failure::is_transient(&err) => {
            Err(Failure::Unreachable(root_cause(&err)))
        }
        Ok(Err(err)) => Err(Failure::Other(format!("{err:#}"))),
    }
}

/// The innermost message of `err`: what the connection said, without the layers.
fn root_cause(err: &anyhow::Error) -> String {
    let unreachable = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<failure::Unreachable>())
        .map(|found| found.0.clone());
    let transient = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<failure::Transient>())
        .map(|found| found.0.clone());
    let attempts = err
        .chain()
        .next()
        .map(|outer| outer.to_string())
        .filter(|outer| outer.contains("time(s)"))
        .and_then(|outer| outer.rsplit_once(": ").map(|(_, n)| format!(" ({n})")))
        .unwrap_or_default();
    match (unreachable, transient) {
        (Some(cause), _) => cause,
        (None, Some(cause)) => format!("{cause}{attempts}"),
        (None, None) => format!("{err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_asks_for_its_tag_pins_its_digest_or_cannot_be_asked() {
        assert_eq!(
            asked_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:3f2c1ab"),
            Asked::Lookup(Wanted {
                host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
                repository: "team/api".into(),
                reference: "3f2c1ab".into(),
            })
        );
        assert_eq!(
            asked_of("127.0.0.1:5000/api@sha256:abc"),
            Asked::Pinned("sha256:abc".into())
        );
        assert_eq!(
            asked_of("nginx:1.27"),
            Asked::Unaskable("nginx:1.27 names no registry".into())
        );
        assert_eq!(
            asked_of("registry.example/api"),
            Asked::Unaskable("registry.example/api has no tag".into())
        );
        assert!(any_to_ask(&["nginx", "registry.example/api:1"]));
        assert!(!any_to_ask(&["nginx", "127.0.0.1:5000/api@sha256:abc"]));
    }

    #[tokio::test]
    async fn answers_keep_their_order_and_a_host_without_a_client_is_asked_once() {
        let mut tried = Vec::new();
        let answers = of_images(
            &[
                "registry.example/api:1",
                "127.0.0.1:5000/api@sha256:abc",
                "nginx",
                "registry.example/auth:1",
            ],
            |host| {
                tried.push(host.to_owned());
                Err(anyhow::anyhow!("no credentials for {host}"))
            },
        )
        .await;
        assert_eq!(tried, ["registry.example"]);
        assert_eq!(
            answers,
            [
                Err("no credentials for registry.example".to_owned()),
                Ok("sha256:abc".to_owned()),
                Err("nginx names no registry".to_owned()),
                Err("no credentials for registry.example".to_owned()),
            ]
        );
    }
}
