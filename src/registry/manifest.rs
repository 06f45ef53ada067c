//! Image manifests as the registry HTTP API serves them: their media types, their
//! digest (sha256 of the exact bytes), and what they reference (config and layer blobs,
//! or the platform manifests of a manifest list / OCI index).

use anyhow::{bail, Context as _, Result};
use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The `Accept` header of every manifest request: every kind this copies.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small JSON documents; anything bigger is refused rather than held.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in hash {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    format!("sha256:{hex}")
}

/// Whether `digest` is a well-formed `sha256:<64 hex>`.
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A blob a manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

/// What one manifest references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An image: its config blob, then its layers.
    Image { blobs: Vec<BlobRef> },
    /// A manifest list or index: its platform manifests, by digest.
    Index { manifests: Vec<String> },
}

/// A manifest as fetched: its exact bytes (the digest covers them), its media type and
/// what it references.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
    pub digest: String,
    pub content: Content,
}

impl Manifest {
    /// Parses `bytes` served with `content_type` (the document's own `mediaType` wins
    /// when it has one).
    pub fn parse(bytes: bytes::Bytes, content_type: Option<&str>) -> Result<Self> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            bail!(
                "the manifest is {} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may have",
                bytes.len()
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).context("the manifest is not JSON")?;
        let media_type = json["mediaType"]
            .as_str()
            .or(content_type.map(|t| t.split(';').next().unwrap_or(t).trim()))
            .unwrap_or_default()
            .to_owned();
        let content = if let Some(children) = json["manifests"].as_array() {
            let manifests = children
                .iter()
                .map(|child| {
                    let digest = child["digest"].as_str().unwrap_or_default();
                    if !is_digest(digest) {
                        bail!("the manifest list names a platform manifest without a sha256 digest ({child})");
                    }
                    Ok(digest.to_owned())
                })
                .collect::<Result<Vec<_>>>()?;
            Content::Index { manifests }
        } else if json["config"].is_object() {
            if json["schemaVersion"].as_u64() != Some(2) {
                bail!("only schema 2 manifests are copied (Docker v2 schema 2 and OCI)");
            }
            let mut blobs = Vec::new();
            let layers = json["layers"].as_array().cloned().unwrap_or_default();
            for descriptor in std::iter::once(&json["config"]).chain(layers.iter()) {
                let digest = descriptor["digest"].as_str().unwrap_or_default();
                if !is_digest(digest) {
                    bail!("the manifest names a blob without a sha256 digest ({descriptor})");
                }
                if descriptor["urls"]
                    .as_array()
                    .is_some_and(|urls| !urls.is_empty())
                {
                    bail!("the manifest names a foreign layer ({digest}, served from its own URLs): not copied");
                }
                blobs.push(BlobRef {
                    digest: digest.to_owned(),
                    size: descriptor["size"].as_u64().unwrap_or(0),
                });
            }
            Content::Image { blobs }
        } else {
            bail!(
                "unknown manifest kind {:?} (neither an image manifest nor a list)",
                media_type
            );
        };
        if media_type.is_empty() {
            bail!("the manifest says no media type, and the registry sent none");
        }
        Ok(Self {
            digest: digest_of(&bytes),
            bytes,
            media_type,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const LAYER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"x","size":7,"digest":"{CONFIG}"}},"layers":[{{"mediaType":"y","size":42,"digest":"{LAYER}"}}]}}"#
        )
    }

    #[test]
    fn the_digest_is_sha256_of_the_exact_bytes() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_digest(&digest_of(b"x")));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(&digest_of(b"x").to_uppercase()));
    }

    #[test]
    fn image_manifests_reference_their_config_then_their_layers() {
        for media_type in [DOCKER_MANIFEST, OCI_MANIFEST] {
            let text = image(media_type);
            let manifest = Manifest::parse(text.clone().into(), None).unwrap();
            assert_eq!(manifest.media_type, media_type);
            assert_eq!(manifest.digest, digest_of(text.as_bytes()));
            assert_eq!(
                manifest.content,
                Content::Image {
                    blobs: vec![
                        BlobRef {
                            digest: CONFIG.into(),
                            size: 7
                        },
                        BlobRef {
                            digest: LAYER.into(),
                            size: 42
                        }
                    ]
                }
            );
        }
    }

    #[test]
    fn lists_and_indexes_reference_their_platform_manifests() {
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{CONFIG}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},{{"digest":"{LAYER}","size":1}}]}}"#
        );
        // No mediaType in the document (allowed by OCI): the Content-Type says it.
        let manifest = Manifest::parse(text.into(), Some(&format!("{OCI_INDEX}; x=y"))).unwrap();
        assert_eq!(manifest.media_type, OCI_INDEX);
        assert_eq!(
            manifest.content,
            Content::Index {
                manifests: vec![CONFIG.into(), LAYER.into()]
            }
        );
    }

    #[test]
    fn what_cannot_be_copied_faithfully_is_refused_with_the_reason() {
        let cases = [
            ("{", "not JSON"),
            (
                r#"{"schemaVersion":1,"fsLayers":[]}"#,
                "unknown manifest kind",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"m","config":{"digest":"md5:x"},"layers":[]}"#,
                "without a sha256 digest",
            ),
            (
                &format!(
                    r#"{{"schemaVersion":2,"mediaType":"m","config":{{"digest":"{CONFIG}"}},"layers":[{{"digest":"{LAYER}","urls":["https://x"]}}]}}"#
                ),
                "foreign layer",
            ),
            (
                &format!(r#"{{"schemaVersion":2,"config":{{"digest":"{CONFIG}"}},"layers":[]}}"#),
                "no media type",
            ),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text.to_owned().into(), None).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{text}: {err:#}");
        }
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(Manifest::parse(huge.into(), None).is_err());
    }
}
