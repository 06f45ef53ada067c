//! The digest of what each service runs, in the registry its image names (and, with
//! `--compare`, in the other environment).

use serde::Serialize;

use crate::aws::ecs::LiveImage;

#[derive(Serialize)]
pub(super) struct ServiceDigest {
    pub(super) service: String,
    pub(super) digest: Option<String>,
    /// Why the digest could not be read (the registry did not answer, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    /// `--compare`: what the other environment runs, and whether it is the same bytes
    /// (`None`: cannot tell, one of the digests is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) other: Option<OtherImage>,
}

#[derive(Serialize)]
pub(super) struct OtherImage {
    pub(super) tag: Option<String>,
    pub(super) digest: Option<String>,
    pub(super) same: Option<bool>,
}

/// The digest each running image has in the registry its reference names, asked with
/// the ECR credentials of `aws`'s account, side by side under one deadline
/// ([`crate::aws::ecr::image_digests`]); a registry that cannot be asked leaves `None`
/// and the reason.
pub(super) async fn digests_of<'a>(
    images: impl Iterator<Item = (&'a str, &'a LiveImage)>,
    aws: &crate::aws::Aws,
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut found = Vec::new();
    // (index in `found`, the image reference) of the images running.
    let mut running: Vec<(usize, &str)> = Vec::new();
    for (service, live) in images {
        if let LiveImage::Running { image, .. } = live {
            running.push((found.len(), image.as_str()));
        }
        found.push((service.to_owned(), None, None));
    }
    let references: Vec<&str> = running.iter().map(|(_, image)| *image).collect();
    let answers = crate::aws::ecr::image_digests(aws, &references).await;
    for ((index, _), answer) in running.into_iter().zip(answers) {
        match answer {
            Ok(digest) => found[index].1 = Some(digest),
            Err(reason) => found[index].2 = Some(reason),
        }
    }
    found
}

/// `sha256:` and the first 12 hex digits.
pub(super) fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}
