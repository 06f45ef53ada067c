//! Step 6's registry build cache (`docker.cache = "registry"`, README "Build cache"):
//! what each service's builds import (its live tag, its nearest earlier commit tags in
//! the registry, its dependency stage's cache image: only what the registry holds, read
//! with one tag listing per repository) and the cache image its dependency stage is
//! pushed as. The pushes happen in the same step as the images', after the review.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::aws::ecr::RegistryAccess;
use crate::deploy::ledger::Before;
use crate::deploy::run::Run;
use crate::docker::build_cache::{CacheStage, CacheUse};
use crate::docker::build_context::{self, ContextSpec};
use crate::docker::engine::{BuilderKind, Engine};
use crate::docker::images::{ImageJob, ImageSettings};
use crate::docker::stages;
use crate::model::config::{cache_tag, is_cache_tag, ConfigError, DockerCache, CONFIG_FILE};
use crate::registry::manifest::Content;
use crate::registry::{Place, RegistryClient};

/// Earlier commit tags of a service imported, nearest first (besides the live one).
const PREVIOUS_TAGS: usize = 2;
/// First-parent commits before HEAD searched for them.
const ANCESTORS: usize = 100;

impl Run<'_> {
    /// Gives each job its registry cache; nothing with `docker.cache = "off"` or the
    /// classic builder (which imports only images already pulled).
    pub(super) async fn plan_build_cache(
        &self,
        engine: &Engine,
        access: &RegistryAccess,
        settings: &ImageSettings,
        before: &Before,
        jobs: &mut [ImageJob],
    ) -> Result<()> {
        let config = &self.platform.config.docker;
        if config.cache == DockerCache::Off || jobs.is_empty() {
            return Ok(());
        }
        if engine.builder != BuilderKind::BuildKit {
            tracing::debug!(
                "the classic builder imports no registry cache: images build without it"
            );
            return Ok(());
        }
        let dockerfile = build_context::dockerfile_text(&ContextSpec {
            repo_root: settings.repo_root.clone(),
            commit: settings.commit.clone(),
            dir: settings.context_dir.clone(),
            dockerfile: settings.dockerfile.clone(),
            include: None,
        });
        // A Dockerfile that cannot be read is the build's to report, in its own words.
        let (stage, shared) = match dockerfile {
            Ok(text) => {
                let stage =
                    stages::choose(&text, config.cache_stage.as_deref()).map_err(|message| {
                        ConfigError {
                            path: self.platform.root.join(CONFIG_FILE),
                            message,
                        }
                    })?;
                let shared = stage
                    .as_ref()
                    .is_some_and(|stage| !stages::reads_arg(&text, stage, &settings.service_arg));
                (stage, shared)
            }
            Err(_) => (None, false),
        };
        let ancestors = first_parent_ancestors(&self.platform.root, &settings.commit);
        let registry = access.registry_client();
        for job in jobs.iter_mut() {
            let Some((repository, _)) = job.image.rsplit_once(':') else {
                continue;
            };
            let repo_path = repository
                .strip_prefix(&format!("{}/", access.host))
                .unwrap_or(repository);
            let tags = match &registry {
                Ok(client) => crate::registry::tags::list(client, repo_path).await,
                Err(err) => Err(anyhow::anyhow!("{err:#}")),
            };
            let tags = tags.unwrap_or_else(|err| {
                tracing::warn!("cannot list the tags of {repository} for the build cache: {err:#}");
                Vec::new()
            });
            let stage = stage.as_ref().map(|name| CacheStage {
                name: name.clone(),
                image: format!("{repository}:{}", cache_tag(name)),
                shared,
            });
            let live = before.tag_of(&job.service);
            let import = imports(repository, &tags, &ancestors, live, stage.as_ref());
            let layer_sizes = match &registry {
                Ok(client) => layer_sizes(client, repo_path, &import).await,
                Err(_) => BTreeMap::new(),
            };
            job.cache = Some(CacheUse {
                import,
                stage,
                layer_sizes,
            });
        }
        Ok(())
    }
}

/// The images a service's builds import, nearest first: its live tag, its nearest
/// earlier commit tags (first-parent `ancestors` of HEAD, nearest first, HEAD itself
/// not among them), its cache image; each only when `tags` (the repository's) holds it.
fn imports(
    repository: &str,
    tags: &[String],
    ancestors: &[String],
    live: Option<&str>,
    stage: Option<&CacheStage>,
) -> Vec<String> {
    let held: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let mut chosen: Vec<String> = Vec::new();
    if let Some(live) = live.filter(|live| held.contains(live) && !is_cache_tag(live)) {
        chosen.push(live.to_owned());
    }
    let commit_tags: Vec<&str> = held
        .iter()
        .copied()
        .filter(|tag| !is_cache_tag(tag) && crate::git::looks_like_sha(tag))
        .collect();
    let mut previous = 0;
    for ancestor in ancestors {
        if previous == PREVIOUS_TAGS {
            break;
        }
        let Some(tag) = commit_tags.iter().find(|tag| ancestor.starts_with(*tag)) else {
            continue;
        };
        if !chosen.iter().any(|c| c == tag) {
            chosen.push((*tag).to_owned());
        }
        previous += 1;
    }
    let mut images: Vec<String> = chosen
        .into_iter()
        .map(|tag| format!("{repository}:{tag}"))
        .collect();
    if let Some(stage) = stage {
        let tag = stage.image.rsplit_once(':').map_or("", |(_, tag)| tag);
        if held.contains(tag) {
            images.push(stage.image.clone());
        }
    }
    images
}

/// The compressed size of each layer of `images` (read from their manifests; one that
/// cannot be read adds nothing: the sizes only count the bytes a build pulled).
async fn layer_sizes(
    registry: &RegistryClient,
    repository: &str,
    images: &[String],
) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    for image in images {
        let Some((_, tag)) = image.rsplit_once(':') else {
            continue;
        };
        let place = Place {
            registry,
            repository,
        };
        if let Ok(Some(manifest)) = crate::registry::fetch_manifest(place, tag).await {
            if let Content::Image { blobs } = manifest.content {
                sizes.extend(blobs.into_iter().map(|blob| (blob.digest, blob.size)));
            }
        }
    }
    sizes
}

/// Up to [`ANCESTORS`] first-parent ancestors of `commit`, nearest first (empty when the
/// history cannot be read: the builds then import no earlier tag).
fn first_parent_ancestors(root: &std::path::Path, commit: &str) -> Vec<String> {
    let walk = || -> Result<Vec<String>, git2::Error> {
        let repo = git2::Repository::discover(root)?;
        let mut walk = repo.revwalk()?;
        walk.simplify_first_parent()?;
        walk.push(git2::Oid::from_str(commit)?)?;
        Ok(walk
            .skip(1)
            .take(ANCESTORS)
            .filter_map(|oid| oid.ok().map(|oid| oid.to_string()))
            .collect())
    };
    walk().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_live_tag_the_nearest_earlier_tags_and_the_cache_image_are_imported() {
        let ancestors = tags(&[
            "c3c3c3c3aaaa",
            "b2b2b2b2aaaa",
            "a1a1a1a1aaaa",
            "9999999aaaa",
        ]);
        let stage = CacheStage {
            name: "deps".into(),
            image: "r/api:cache-deps".into(),
            shared: true,
        };
        let held = tags(&[
            "a1a1a1a",
            "b2b2b2b",
            "9999999",
            "cache-deps",
            "latest",
            "f0f0f0f",
        ]);
        // The live tag first, then the two nearest ancestors the registry holds (c3c3…
        // is not there), never a tag off HEAD's history, then the cache image.
        assert_eq!(
            imports("r/api", &held, &ancestors, Some("f0f0f0f"), Some(&stage)),
            [
                "r/api:f0f0f0f",
                "r/api:b2b2b2b",
                "r/api:a1a1a1a",
                "r/api:cache-deps"
            ]
        );
        // A live tag the registry lacks, and a cache image it lacks, are not imported.
        let held = tags(&["b2b2b2b"]);
        assert_eq!(
            imports("r/api", &held, &ancestors, Some("f0f0f0f"), Some(&stage)),
            ["r/api:b2b2b2b"]
        );
        // The live tag among the ancestors counts once.
        let held = tags(&["b2b2b2b", "a1a1a1a", "9999999"]);
        assert_eq!(
            imports("r/api", &held, &ancestors, Some("b2b2b2b"), None),
            ["r/api:b2b2b2b", "r/api:a1a1a1a"]
        );
        assert!(imports("r/api", &[], &ancestors, Some("b2b2b2b"), Some(&stage)).is_empty());
    }
}
