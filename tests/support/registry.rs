//! A test's own hands on a test-bed registry, through its HTTP API with plain blocking
//! sockets (not deploy's client, which is what the tests check): images of random
//! bytes pushed by blob and manifest, and manifests read back.

use std::io::{Read, Write};

use sha2::{Digest as _, Sha256};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One HTTP/1.1 exchange (`Connection: close`): the status, the headers (lower-case
/// names) and the body.
pub fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Uploads `bytes` as a blob of `repository` (monolithic: POST, then PUT with the body).
pub fn push_blob(host: &str, repository: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let (status, headers, _) = http(
        host,
        "POST",
        &format!("/v2/{repository}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(status, 202, "POST upload in {host}/{repository}");
    let location = header(&headers, "location").unwrap();
    let path = location
        .split_once("://")
        .map_or(location, |(_, rest)| &rest[rest.find('/').unwrap()..]);
    let separator = if path.contains('?') { '&' } else { '?' };
    let (status, _, body) = http(
        host,
        "PUT",
        &format!("{path}{separator}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        bytes,
    );
    assert_eq!(status, 201, "PUT blob: {}", String::from_utf8_lossy(&body));
    digest
}

/// Writes a manifest under `reference`; returns its digest.
pub fn put_manifest(
    host: &str,
    repository: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let (status, _, body) = http(
        host,
        "PUT",
        &format!("/v2/{repository}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    assert_eq!(
        status,
        201,
        "PUT manifest: {}",
        String::from_utf8_lossy(&body)
    );
    sha256(bytes)
}

/// Random bytes (a fresh nonce each call, then a cheap fill): layers no other test has.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let seed = format!(
        "{}-{:?}-{len}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(seed.as_bytes()).to_vec();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    out.truncate(len);
    out
}

/// An image of a config and `layers` random layers of the given sizes, pushed as
/// `repository:tag`. Returns the manifest's digest and its blobs' total size.
pub fn push_image(host: &str, repository: &str, tag: &str, layers: &[usize]) -> (String, u64) {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers"}},"nonce":"{}"}}"#,
        sha256(&random_bytes(16))
    );
    let mut total = config.len() as u64;
    let config_digest = push_blob(host, repository, config.as_bytes());
    let mut descriptors = Vec::new();
    for size in layers {
        let bytes = random_bytes(*size);
        total += bytes.len() as u64;
        let digest = push_blob(host, repository, &bytes);
        descriptors.push(format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{size},"digest":"{digest}"}}"#
        ));
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
        config.len(),
        descriptors.join(",")
    );
    let digest = put_manifest(host, repository, tag, DOCKER_MANIFEST, manifest.as_bytes());
    (digest, total)
}

/// The digest of `repository:reference` as the registry serves it (sha256 of the bytes),
/// `None` when it has none.
pub fn manifest_digest(host: &str, repository: &str, reference: &str) -> Option<String> {
    let (status, _, body) = http(
        host,
        "GET",
        &format!("/v2/{repository}/manifests/{reference}"),
        &[(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    (status == 200).then(|| sha256(&body))
}

/// Whether `repository` in `host` has the blob `digest`.
pub fn has_blob(host: &str, repository: &str, digest: &str) -> bool {
    http(
        host,
        "HEAD",
        &format!("/v2/{repository}/blobs/{digest}"),
        &[],
        b"",
    )
    .0 == 200
}
