//! `[docker] cache` and `cache_stage` of `deploy.toml`: the registry build cache, and the
//! tag scheme of its images, which never collides with a commit tag.
//!
//! With `cache = "registry"` (the default) every image is built with BuildKit's inline
//! cache and imports the cache of the service's live image, its nearest earlier commit
//! tags in the registry, and the cache image of the dependency stage: that stage built
//! alone (`target`) and pushed as `<repository>:cache-<stage>` beside the service's
//! commit tags. `cache = "off"` builds as before: no import, no cache image.

use serde::{Deserialize, Serialize};

/// `docker.cache`: where builds find and leave their cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerCache {
    /// Import from the registry and export to it (inline cache, the dependency stage's
    /// cache image).
    #[default]
    Registry,
    /// Only the daemon's own build cache.
    Off,
}

/// The tags of cache images start so; a commit tag is hex, so never does.
pub const CACHE_TAG_PREFIX: &str = "cache-";

/// The tag of the cache image of the dependency stage `stage`.
pub fn cache_tag(stage: &str) -> String {
    format!("{CACHE_TAG_PREFIX}{}", stage.to_ascii_lowercase())
}

/// Whether `tag` is one of the cache images' (the one test every tag reader filters by:
/// prune, the previous tags a build imports from).
pub fn is_cache_tag(tag: &str) -> bool {
    tag.starts_with(CACHE_TAG_PREFIX)
}

/// Checks `docker.cache_stage`: empty (no dependency stage) or a stage name that makes
/// a valid tag.
pub fn check_stage(stage: Option<&str>) -> Result<(), String> {
    let Some(stage) = stage else {
        return Ok(());
    };
    let valid = stage.len() <= 100
        && stage
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "docker.cache_stage `{stage}` is not a stage name (letters, digits, `_`, `.`, `-`; \"\" for none)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_tags_never_look_like_a_commit() {
        let tag = cache_tag("Deps");
        assert_eq!(tag, "cache-deps");
        assert!(is_cache_tag(&tag));
        assert!(!is_cache_tag("abc1234"));
        assert!(!is_cache_tag("0123456789abcdef0123456789abcdef01234567"));
        // Not hex: no commit id starts so.
        assert!(!CACHE_TAG_PREFIX.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_keys_parse_and_bad_values_name_the_key() {
        use super::super::Config;
        let default = Config::parse("").unwrap();
        assert_eq!(default.docker.cache, DockerCache::Registry);
        assert_eq!(default.docker.cache_stage, None);
        let set = Config::parse("[docker]\ncache = \"off\"\ncache_stage = \"deps\"\n").unwrap();
        assert_eq!(set.docker.cache, DockerCache::Off);
        assert_eq!(set.docker.cache_stage.as_deref(), Some("deps"));
        let none = Config::parse("[docker]\ncache_stage = \"\"\n").unwrap();
        assert_eq!(none.docker.cache_stage.as_deref(), Some(""));
        let err = Config::parse("[docker]\ncache = \"s3\"\n").unwrap_err();
        assert!(err.contains("registry") && err.contains("off"), "{err}");
        let err = Config::parse("[docker]\ncache_stage = \"a b\"\n").unwrap_err();
        assert!(err.contains("docker.cache_stage"), "{err}");
    }

    #[test]
    fn stage_names_are_checked() {
        assert!(check_stage(None).is_ok());
        assert!(check_stage(Some("")).is_ok());
        assert!(check_stage(Some("deps")).is_ok());
        assert!(check_stage(Some("node-deps_1.2")).is_ok());
        let err = check_stage(Some("deps stage")).unwrap_err();
        assert!(err.contains("docker.cache_stage"), "{err}");
    }
}
