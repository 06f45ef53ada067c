//! Which local image tags are this platform's, for `deploy prune`: on a shared build
//! host the daemon holds other teams' images too, often under the same repository name
//! (`api`). A tag is ours only when all three hold: its registry is one of this
//! platform's, its repository one of this platform's services', and its tag a commit of
//! this git repository. Everything else is left alone; what looked like ours by name but
//! failed one of the others is reported as skipped, with the reason.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::aws::ecs::image_tag_of;

/// Why a tag of one of our repository names is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Under a registry host this platform does not push to.
    OtherRegistry,
    /// Not a commit id (`latest`, a version).
    NotACommitTag,
    /// A commit id this repository does not have (another project's, or one this clone
    /// never fetched).
    NotACommitOfThisRepository,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::OtherRegistry => "under another registry host",
            Self::NotACommitTag => "tag is not a commit id",
            Self::NotACommitOfThisRepository => "tag is not a commit of this repository",
        }
    }
}

/// What prune may touch: this platform's registries and repositories.
pub struct Scope {
    /// The `<registry>` part of `<registry>/<repository>:<tag>` (a host, perhaps with a
    /// path): the configured hosts and those of the images running live. Empty when
    /// none is known (ECR with no host configured and the live check skipped): then any
    /// ECR registry host, the commit check standing guard.
    pub registries: BTreeSet<String>,
    /// The repository of each service (`registry.repository` expanded).
    pub repositories: BTreeSet<String>,
}

/// One local tag, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ours: prune may remove it (unless live, HEAD's or among the newest).
    Ours { repository: String },
    /// Named like ours, but not ours.
    Skipped(SkipReason),
    /// Another repository altogether (postgres, another team's service): not mentioned.
    Unrelated,
}

impl Scope {
    /// Judges `reference` (`host/repo:tag` as tagged locally); `is_our_commit` answers
    /// whether a hex tag is a commit of this repository.
    pub fn judge(&self, reference: &str, is_our_commit: impl Fn(&str) -> bool) -> Verdict {
        let Some(tag) = image_tag_of(reference) else {
            return Verdict::Unrelated;
        };
        // The build cache's images (`cache-<stage>`) are kept, and not ours to mention.
        if reference.contains('@') || crate::model::config::is_cache_tag(tag) {
            return Verdict::Unrelated;
        }
        let name = &reference[..reference.len() - tag.len() - 1];
        // Every split of the name into `<registry>/<repository>` that names one of ours
        // (no registry at all: Docker Hub's `docker.io`, never ours).
        let splits: Vec<(&str, &str)> = self
            .repositories
            .iter()
            .filter_map(|repository| {
                let rest = name.strip_suffix(repository.as_str())?;
                let registry = if rest.is_empty() {
                    "docker.io"
                } else {
                    rest.strip_suffix('/')?
                };
                Some((registry, repository.as_str()))
            })
            .collect();
        if splits.is_empty() {
            return Verdict::Unrelated;
        }
        let Some((_, repository)) = splits.iter().find(|(registry, _)| self.is_ours(registry))
        else {
            return Verdict::Skipped(SkipReason::OtherRegistry);
        };
        let sha = tag.strip_suffix("-dirty").unwrap_or(tag);
        if !crate::git::looks_like_sha(sha) {
            return Verdict::Skipped(SkipReason::NotACommitTag);
        }
        if !is_our_commit(sha) {
            return Verdict::Skipped(SkipReason::NotACommitOfThisRepository);
        }
        Verdict::Ours {
            repository: (*repository).to_owned(),
        }
    }

    fn is_ours(&self, registry: &str) -> bool {
        if self.registries.is_empty() {
            is_ecr_host(registry)
        } else {
            self.registries.contains(registry)
        }
    }

    /// Adds the registry of each live image that names one of our repositories.
    pub fn add_registries_of(&mut self, images: &[String]) {
        for image in images {
            let name = image.split(['@']).next().unwrap_or(image);
            let name = match image_tag_of(name) {
                Some(tag) => &name[..name.len() - tag.len() - 1],
                None => name,
            };
            for repository in &self.repositories {
                if let Some(registry) = name
                    .strip_suffix(repository.as_str())
                    .and_then(|rest| rest.strip_suffix('/'))
                {
                    self.registries.insert(registry.to_owned());
                }
            }
        }
    }
}

/// `<12 digits>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`: an ECR registry.
fn is_ecr_host(registry: &str) -> bool {
    let host = registry
        .strip_suffix(".amazonaws.com")
        .or_else(|| registry.strip_suffix(".amazonaws.com.cn"));
    let Some(host) = host else {
        return false;
    };
    let parts: Vec<&str> = host.split('.').collect();
    matches!(parts.as_slice(), [account, "dkr", ecr, region]
        if account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && (*ecr == "ecr" || *ecr == "ecr-fips")
            && !region.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(registries: &[&str]) -> Scope {
        Scope {
            registries: registries.iter().map(|r| (*r).to_owned()).collect(),
            repositories: ["api".to_owned(), "team/auth".to_owned()].into(),
        }
    }

    fn ours(sha: &str) -> bool {
        ["aaaaaaa", "bbbbbbbbbb"].contains(&sha)
    }

    #[test]
    fn only_our_registry_repository_and_commits_are_ours() {
        let scope = scope(&["127.0.0.1:5000", "registry.example/prefix"]);
        let judge = |reference: &str| scope.judge(reference, ours);
        let api = Verdict::Ours {
            repository: "api".into(),
        };
        assert_eq!(judge("127.0.0.1:5000/api:aaaaaaa"), api);
        assert_eq!(judge("registry.example/prefix/api:bbbbbbbbbb"), api);
        assert_eq!(
            judge("127.0.0.1:5000/team/auth:aaaaaaa"),
            Verdict::Ours {
                repository: "team/auth".into()
            }
        );
        // Another team's `api` on the same build host.
        assert_eq!(
            judge("127.0.0.1:5001/api:aaaaaaa"),
            Verdict::Skipped(SkipReason::OtherRegistry)
        );
        assert_eq!(
            judge("api:aaaaaaa"),
            Verdict::Skipped(SkipReason::OtherRegistry)
        );
        assert_eq!(
            judge("127.0.0.1:5000/api:latest"),
            Verdict::Skipped(SkipReason::NotACommitTag)
        );
        assert_eq!(
            judge("127.0.0.1:5000/api:ccccccc"),
            Verdict::Skipped(SkipReason::NotACommitOfThisRepository)
        );
        for unrelated in [
            "127.0.0.1:5000/apix:aaaaaaa",
            "postgres:15",
            "127.0.0.1:5000/auth:aaaaaaa",
            "127.0.0.1:5000/api@sha256:00",
            // The build cache's image: kept, and not mentioned.
            "127.0.0.1:5000/api:cache-deps",
        ] {
            assert_eq!(judge(unrelated), Verdict::Unrelated, "{unrelated}");
        }
    }

    #[test]
    fn with_no_registry_known_any_ecr_registry_is_ours() {
        let scope = scope(&[]);
        assert_eq!(
            scope.judge(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:aaaaaaa",
                ours
            ),
            Verdict::Ours {
                repository: "api".into()
            }
        );
        assert!(is_ecr_host(
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"
        ));
        assert!(is_ecr_host(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
        ));
        for other in [
            "127.0.0.1:5000",
            "public.ecr.aws",
            "12345.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
        ] {
            assert!(!is_ecr_host(other), "{other}");
        }
    }

    #[test]
    fn live_images_name_registries() {
        let mut scope = scope(&[]);
        scope.add_registries_of(&[
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:aaaaaaa".into(),
            "mirror.example:5000/team/auth@sha256:00".into(),
            "postgres:15".into(),
        ]);
        assert_eq!(
            scope.registries,
            BTreeSet::from([
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com".to_owned(),
                "mirror.example:5000".to_owned()
            ])
        );
    }
}
