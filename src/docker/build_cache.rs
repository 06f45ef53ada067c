//! The registry build cache of one image (`docker.cache = "registry"`): the images whose
//! inline cache its builds import, the dependency stage built alone and pushed as the
//! service's cache image, and where that stage came from (the report's words).
//!
//! Works on the Docker engine's own BuildKit (no buildx): `BUILDKIT_INLINE_CACHE=1` puts
//! the cache's metadata in the image's config, `cachefrom` names the images to read it
//! from, and the daemon pulls only the layers a cache hit needs. Inline cache records
//! the final stage only, so the dependency stage is built on its own (`target`) and
//! pushed as `<repository>:cache-<stage>`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::build_steps::BuildSteps;

/// The build argument that makes BuildKit write the inline cache into the image.
pub const INLINE_CACHE_ARG: (&str, &str) = ("BUILDKIT_INLINE_CACHE", "1");

/// How one image uses the registry cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    /// Images (`host/repository:tag`) whose cache both builds import, nearest first:
    /// the service's live tag, its nearest earlier commit tags in the registry, its
    /// cache image. Only images the registry holds.
    pub import: Vec<String>,
    /// The dependency stage, built first and pushed as `image`; none when the
    /// Dockerfile has no such stage (or `docker.cache_stage = ""`).
    pub stage: Option<CacheStage>,
    /// The compressed size of each layer of the imported images, by digest (for the
    /// bytes a build pulled: BuildKit names the layers, not their sizes).
    pub layer_sizes: BTreeMap<String, u64>,
}

impl CacheUse {
    /// The bytes of `pulled` layers (those of unknown size count 0).
    pub fn bytes_of(&self, pulled: &[String]) -> u64 {
        pulled
            .iter()
            .filter_map(|digest| self.layer_sizes.get(digest))
            .sum()
    }
}

/// The dependency stage of a Dockerfile and the cache image it is pushed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStage {
    pub name: String,
    /// `host/repository:cache-<stage>`.
    pub image: String,
    /// The stage reads no service build argument: one build serves every service.
    pub shared: bool,
}

/// Where an image's dependency stage came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSource {
    /// Every step was in the daemon's own build cache.
    LocalCache,
    /// Every step was a cache hit, and the daemon pulled layers from the registry.
    RegistryCache,
    /// At least one step ran.
    Built,
}

impl StageSource {
    /// Judged from the stage's own build.
    pub fn of(steps: &BuildSteps) -> Self {
        if !steps.all_cached() {
            StageSource::Built
        } else if !steps.pulled.is_empty() {
            StageSource::RegistryCache
        } else {
            StageSource::LocalCache
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            StageSource::LocalCache => "local cache",
            StageSource::RegistryCache => "registry cache",
            StageSource::Built => "built",
        }
    }
}

/// The report's line of an image's dependency stage (`images[].dependency_stage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyStage {
    /// The stage's name in the Dockerfile.
    pub stage: String,
    pub source: StageSource,
    /// The cache image pushed for it (`host/repository:cache-<stage>`).
    pub cache_image: String,
    /// Whether `cache_image` was pushed (a failed push is a warning, not a failed image).
    pub cache_pushed: bool,
    /// Compressed bytes of the layers the daemon pulled from the registry while
    /// building the stage (the registry cache's).
    pub pulled_bytes: u64,
    /// The images whose cache the builds imported.
    pub imported: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_judged_from_the_stages_steps() {
        let steps = |steps, cached, pulled: &[&str]| BuildSteps {
            steps,
            cached,
            pulled: pulled.iter().map(|d| (*d).to_owned()).collect(),
        };
        let layer = ["sha256:1"];
        assert_eq!(StageSource::of(&steps(3, 2, &[])), StageSource::Built);
        assert_eq!(StageSource::of(&steps(3, 2, &layer)), StageSource::Built);
        assert_eq!(StageSource::of(&steps(0, 0, &[])), StageSource::Built);
        assert_eq!(StageSource::of(&steps(3, 3, &[])), StageSource::LocalCache);
        assert_eq!(
            StageSource::of(&steps(3, 3, &layer)),
            StageSource::RegistryCache
        );
    }

    #[test]
    fn the_bytes_pulled_are_the_sizes_of_the_layers_named() {
        let cache = CacheUse {
            import: Vec::new(),
            stage: None,
            layer_sizes: BTreeMap::from([("sha256:1".to_owned(), 7), ("sha256:2".to_owned(), 5)]),
        };
        assert_eq!(
            cache.bytes_of(&["sha256:1".to_owned(), "sha256:9".to_owned()]),
            7
        );
    }
}
