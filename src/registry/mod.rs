//! The registry HTTP API v2, spoken directly (no Docker daemon, no local disk): reading
//! manifests and digests, and copying an image from one registry to another
//! (`deploy promote`). [`digests`] is the one digest lookup of the readers that can live
//! without an answer (by image reference: [`digests::of_images`]); [`failure`] says
//! which failures are worth another try.

pub mod client;
pub mod copy;
pub mod digests;
pub mod failure;
pub mod manifest;
pub mod tags;

pub use client::{Credentials, RegistryClient};
pub use copy::{copy_image, digest_of, fetch_manifest, CopyReport, DigestMismatch, Place};

/// An image reference split: `host[:port]/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub host: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Splits `image` as ECS task definitions name it; `None` when it names no registry
/// host (Docker Hub's short names).
pub fn split_reference(image: &str) -> Option<ImageReference> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest.to_owned())),
        None => (image, None),
    };
    let (host, path) = name.split_once('/')?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return None;
    }
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag.to_owned())),
        _ => (path, None),
    };
    Some(ImageReference {
        host: host.to_owned(),
        repository: repository.to_owned(),
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_host_repository_tag_and_digest() {
        let ecr = split_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:3f2c1ab")
            .unwrap();
        assert_eq!(ecr.host, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(ecr.repository, "team/api");
        assert_eq!(ecr.tag.as_deref(), Some("3f2c1ab"));
        assert_eq!(ecr.digest, None);
        let pinned = split_reference("127.0.0.1:5000/api@sha256:abc").unwrap();
        assert_eq!(
            (
                pinned.host.as_str(),
                pinned.repository.as_str(),
                pinned.tag,
                pinned.digest
            ),
            ("127.0.0.1:5000", "api", None, Some("sha256:abc".to_owned()))
        );
        assert_eq!(split_reference("library/nginx:1.27"), None);
        assert_eq!(split_reference("nginx"), None);
    }
}
