//! The registry HTTP API v2, spoken directly (no Docker daemon, no local disk): reading
//! manifests and digests, and copying an image from one registry to another
//! (`deploy promote`).

pub mod client;
pub mod copy;
pub mod manifest;

pub use client::{Credentials, RegistryClient};
pub use copy::{copy_image, digest_of, fetch_manifest, CopyReport, DigestMismatch, Place};
