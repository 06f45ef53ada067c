//! The registry-to-registry copy (`deploy::registry`) against the test bed's two real
//! registries: images and indexes copied with their digests, blobs the target has not
//! sent again, mounts on one registry, transient failures retried, a persistent one
//! stopping the copy and a re-run resuming, and a target that serves other bytes caught.

use deploy::registry::{copy_image, CopyReport, DigestMismatch, Place, RegistryClient};

use crate::support::registry::{
    has_blob, manifest_digest, push_image, put_manifest, DOCKER_MANIFEST, OCI_INDEX,
};
use crate::support::{runtime, unique_marker, FaultProxy, Testbed};

/// Copies `repository:tag` from `source` to `target` (hosts), same repository name.
fn copy(source: &str, target: &str, from: &str, to: &str, tag: &str) -> anyhow::Result<CopyReport> {
    runtime().block_on(async {
        let source = RegistryClient::new(source, None)?;
        let target = RegistryClient::new(target, None)?;
        copy_image(
            Place {
                registry: &source,
                repository: from,
            },
            Place {
                registry: &target,
                repository: to,
            },
            tag,
            &|_| {},
        )
        .await
    })
}

#[test]
fn an_image_is_copied_with_its_digest_and_a_second_copy_sends_nothing() {
    let bed = Testbed::get();
    let repository = format!("{}/api", unique_marker("copy"));
    // A config and three layers, one of 8 MiB: streamed, never held whole.
    let (digest, bytes) = push_image(&bed.registry, &repository, "abc1234", &[8 << 20, 4096, 10]);

    let report = copy(
        &bed.registry,
        &bed.registry2,
        &repository,
        &repository,
        "abc1234",
    )
    .unwrap();
    assert_eq!(report.digest, digest);
    assert_eq!(
        manifest_digest(&bed.registry2, &repository, "abc1234"),
        Some(digest.clone()),
        "the target serves the source's bytes"
    );
    assert_eq!(
        (
            report.blobs_sent,
            report.blobs_present,
            report.blobs_mounted
        ),
        (4, 0, 0)
    );
    assert_eq!(report.bytes_sent, bytes);
    assert_eq!(report.manifests, 1);

    let again = copy(
        &bed.registry,
        &bed.registry2,
        &repository,
        &repository,
        "abc1234",
    )
    .unwrap();
    assert_eq!(
        (again.blobs_sent, again.blobs_present, again.bytes_sent),
        (0, 4, 0)
    );
    assert_eq!(again.digest, digest);
}

#[test]
fn a_manifest_list_is_copied_with_its_platform_manifests() {
    let bed = Testbed::get();
    let repository = format!("{}/api", unique_marker("index"));
    let (amd64, _) = push_image(&bed.registry, &repository, "amd64", &[1000, 20]);
    let (arm64, _) = push_image(&bed.registry, &repository, "arm64", &[3000]);
    let size = |tag| {
        crate::support::registry::http(
            &bed.registry,
            "GET",
            &format!("/v2/{repository}/manifests/{tag}"),
            &[("Accept", DOCKER_MANIFEST)],
            b"",
        )
        .2
        .len()
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{amd64}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"{DOCKER_MANIFEST}","digest":"{arm64}","size":{},"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        size("amd64"),
        size("arm64")
    );
    let digest = put_manifest(
        &bed.registry,
        &repository,
        "def5678",
        OCI_INDEX,
        index.as_bytes(),
    );

    let report = copy(
        &bed.registry,
        &bed.registry2,
        &repository,
        &repository,
        "def5678",
    )
    .unwrap();
    assert_eq!(report.digest, digest);
    assert_eq!(
        report.manifests, 3,
        "the index and its two platform manifests"
    );
    assert_eq!(report.blobs_sent, 5, "two configs and three layers");
    assert_eq!(
        manifest_digest(&bed.registry2, &repository, "def5678"),
        Some(digest)
    );
    for platform in [amd64, arm64] {
        assert_eq!(
            manifest_digest(&bed.registry2, &repository, &platform),
            Some(platform.clone()),
            "platform manifest {platform} is in the target by digest"
        );
    }
}

#[test]
fn on_one_registry_blobs_are_mounted_not_sent() {
    let bed = Testbed::get();
    let marker = unique_marker("mount");
    let (from, to) = (
        format!("{marker}/sandbox/api"),
        format!("{marker}/prod/api"),
    );
    let (digest, _) = push_image(&bed.registry, &from, "abc1234", &[5000, 6000]);
    let report = copy(&bed.registry, &bed.registry, &from, &to, "abc1234").unwrap();
    assert_eq!(
        (report.blobs_sent, report.blobs_mounted, report.bytes_sent),
        (0, 3, 0)
    );
    assert_eq!(manifest_digest(&bed.registry, &to, "abc1234"), Some(digest));
}

#[test]
fn transient_failures_are_retried_and_a_persistent_one_stops_the_copy_which_a_rerun_resumes() {
    let bed = Testbed::get();
    let repository = format!("{}/api", unique_marker("flaky"));
    let (digest, _) = push_image(&bed.registry, &repository, "abc1234", &[70_000, 500]);

    // Two blob uploads answered 500, then the registry recovers: retried, copied.
    let flaky = FaultProxy::http(
        &bed,
        &bed.registry2,
        &[
            "--fail-match",
            "^PATCH .*/blobs/uploads/",
            "--fail-count",
            "2",
        ],
    );
    let report = copy(
        &bed.registry,
        &flaky.address,
        &repository,
        &repository,
        "abc1234",
    )
    .unwrap();
    assert_eq!(report.blobs_sent, 3);
    assert_eq!(
        manifest_digest(&bed.registry2, &repository, "abc1234"),
        Some(digest.clone())
    );

    // Every manifest PUT fails: the blobs are in, the copy stops after its attempts.
    let other = format!("{}/api", unique_marker("stuck"));
    let (digest, _) = push_image(&bed.registry, &other, "abc1234", &[80_000, 700]);
    let down = FaultProxy::http(&bed, &bed.registry2, &["--fail-manifest-puts", "100"]);
    let err = copy(&bed.registry, &down.address, &other, &other, "abc1234").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("failed 5 time(s)"), "{message}");
    assert!(message.contains("HTTP 500"), "{message}");
    assert_eq!(manifest_digest(&bed.registry2, &other, "abc1234"), None);
    assert!(has_blob(
        &bed.registry2,
        &other,
        &digest_of_first_layer(&bed.registry, &other)
    ));

    // The re-run sends no blob again: the target has them all.
    let resumed = copy(&bed.registry, &bed.registry2, &other, &other, "abc1234").unwrap();
    assert_eq!(
        (
            resumed.blobs_sent,
            resumed.blobs_present,
            resumed.bytes_sent
        ),
        (0, 3, 0)
    );
    assert_eq!(
        manifest_digest(&bed.registry2, &other, "abc1234"),
        Some(digest)
    );
}

#[test]
fn a_target_serving_other_bytes_after_the_copy_is_a_digest_mismatch() {
    let bed = Testbed::get();
    let repository = format!("{}/api", unique_marker("mismatch"));
    let (digest, _) = push_image(&bed.registry, &repository, "abc1234", &[100]);
    let lying = FaultProxy::http(&bed, &bed.registry2, &["--mangle-manifest-gets"]);
    let err = copy(
        &bed.registry,
        &lying.address,
        &repository,
        &repository,
        "abc1234",
    )
    .unwrap_err();
    let mismatch = err
        .downcast_ref::<DigestMismatch>()
        .unwrap_or_else(|| panic!("a DigestMismatch: {err:#}"));
    assert_eq!(mismatch.expected, digest);
    assert_ne!(mismatch.found, digest);
}

fn digest_of_first_layer(host: &str, repository: &str) -> String {
    let (_, _, body) = crate::support::registry::http(
        host,
        "GET",
        &format!("/v2/{repository}/manifests/abc1234"),
        &[("Accept", DOCKER_MANIFEST)],
        b"",
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["layers"][0]["digest"].as_str().unwrap().to_owned()
}
