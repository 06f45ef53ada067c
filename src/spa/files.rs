//! The SPA's build output on disk: every file as its bucket key, with its size, its
//! SHA-256 and its class (entry point, immutable asset, other).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::manifest::LocalFile;
use super::manifest::LEGACY_MANIFEST_KEY;
use super::rules::{self, FileClass};
use super::SpaTarget;
use crate::model::config::SpaUploadConfig;

/// Lists, hashes and classifies every file under the SPA's output directory.
pub(super) async fn scan_output(
    spa: &SpaTarget,
    settings: &SpaUploadConfig,
) -> Result<Vec<LocalFile>> {
    let root = spa.output.clone();
    let paths = tokio::task::spawn_blocking(move || list_files(&root))
        .await
        .context("the file listing task failed")??;
    let hashers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut files: Vec<LocalFile> = stream::iter(paths)
        .map(|(key, path)| async move {
            let (size, digest) = tokio::task::spawn_blocking({
                let path = path.clone();
                move || hash_file(&path)
            })
            .await
            .context("the hashing task failed")??;
            let class = rules::classify(&key, settings);
            Ok::<_, anyhow::Error>(LocalFile {
                content_type: rules::content_type(&key),
                cache_control: rules::cache_control(class, settings).to_owned(),
                entry_point: class == FileClass::EntryPoint,
                key,
                path,
                size,
                sha256: hex(&digest),
                sha256_base64: base64::engine::general_purpose::STANDARD.encode(digest),
            })
        })
        .buffer_unordered(hashers.min(settings.concurrency))
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(file) = files.iter().find(|file| file.key == LEGACY_MANIFEST_KEY) {
        bail!(
            "the build output of SPA {} contains {}, the key older deploys kept their manifest under (deploy deletes it from the bucket): rename it",
            spa.name,
            file.path.display()
        );
    }
    if !files.iter().any(|file| file.entry_point) {
        bail!(
            "the build output of SPA {} ({}) has no entry point (spa_upload.entry_points = {:?}): nothing was uploaded",
            spa.name,
            spa.output.display(),
            settings.entry_points
        );
    }
    Ok(files)
}

/// Every file below `root` as (bucket key, path), following symbolic links.
fn list_files(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            let metadata = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if metadata.is_dir() {
                dirs.push(path);
            } else if metadata.is_file() {
                let relative = path.strip_prefix(root).expect("below the root");
                let parts: Option<Vec<&str>> = relative
                    .components()
                    .map(|component| component.as_os_str().to_str())
                    .collect();
                let key = parts
                    .with_context(|| format!("{} is not a UTF-8 file name", path.display()))?
                    .join("/");
                files.push((key, path));
            }
        }
    }
    Ok(files)
}

/// Size and SHA-256 of a file, read in chunks.
fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((size, hasher.finalize().into()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        let (size, digest) = hash_file(&path).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            hex(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn output_files_are_listed_as_slash_separated_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assets/deep")).unwrap();
        for file in ["index.html", "assets/a.js", "assets/deep/b.css"] {
            std::fs::write(dir.path().join(file), file).unwrap();
        }
        let mut keys: Vec<String> = list_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["assets/a.js", "assets/deep/b.css", "index.html"]);
    }
}
