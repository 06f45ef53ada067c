//! The registry build cache against the real daemon and registry: the inline cache and
//! the dependency stage's cache image pushed beside the commit tag (Docker v2 manifests,
//! as ECR takes them), the report of where the stage came from, `cache = "off"`, and a
//! second daemon (behind TLS, an empty machine) building from what the first exported,
//! with the same files as a cold build of the same commit.

use std::process::Command;

use serde_json::Value;

use crate::remote::TlsDaemon;
use crate::support::registry::{http, DOCKER_MANIFEST};
use crate::support::{bootstrap_aws, Fixture, Testbed, PUSH_API};

/// A fixture whose lockfile no other run has seen: its dependency stage is in no cache.
fn fixture_with_a_new_lockfile() -> Fixture {
    let fixture = Fixture::unique();
    let nonce = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let lock = std::fs::read_to_string(fixture.path("pnpm-lock.yaml")).unwrap();
    fixture.write("pnpm-lock.yaml", &format!("{lock}# cache test {nonce}\n"));
    fixture
}

/// The summary's `images[]` entry of `service`.
fn image_entry(stdout: &str, service: &str) -> Value {
    let report: Value =
        serde_json::from_str(stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    report["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["service"] == service))
        .cloned()
        .unwrap_or_else(|| panic!("no image of {service} in {report:#}"))
}

/// The manifest of `repository:reference` in `host`: its content type and JSON.
fn manifest(host: &str, repository: &str, reference: &str) -> (String, Value) {
    let accept = format!("{DOCKER_MANIFEST}, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json");
    let (status, headers, body) = http(
        host,
        "GET",
        &format!("/v2/{repository}/manifests/{reference}"),
        &[("Accept", &accept)],
        b"",
    );
    assert_eq!(status, 200, "{repository}:{reference} in {host}");
    let content_type = headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    (content_type, serde_json::from_slice(&body).unwrap())
}

/// The image config of `repository:reference` in `host`.
fn config(host: &str, repository: &str, reference: &str) -> Value {
    let (_, manifest) = manifest(host, repository, reference);
    let digest = manifest["config"]["digest"].as_str().unwrap();
    let (status, _, body) = http(
        host,
        "GET",
        &format!("/v2/{repository}/blobs/{digest}"),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn images_push_their_inline_cache_and_the_dependency_stage_as_a_cache_image() {
    let bed = Testbed::get();
    let fixture = fixture_with_a_new_lockfile();
    let first_tag = fixture.commit_all("a new lockfile");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");

    let first = fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .args(["--output", "json"])
        .run();
    first.success();
    let api = image_entry(&first.stdout, "api");
    let stage = &api["dependency_stage"];
    assert_eq!(stage["stage"], "deps", "{api:#}");
    assert_eq!(stage["source"], "built", "a new lockfile: {api:#}");
    assert_eq!(stage["cache_pushed"], true, "{api:#}");
    let cache_image = format!("{}/api:cache-deps", bed.registry);
    assert_eq!(stage["cache_image"], cache_image.as_str());

    // Both are Docker v2 schema 2 manifests (what ECR stores), and both configs carry
    // BuildKit's inline cache.
    for reference in [first_tag.as_str(), "cache-deps"] {
        let (content_type, body) = manifest(&bed.registry, "api", reference);
        assert_eq!(content_type, DOCKER_MANIFEST, "api:{reference}");
        assert_eq!(body["mediaType"], DOCKER_MANIFEST, "api:{reference}");
        for layer in body["layers"].as_array().unwrap() {
            assert_eq!(
                layer["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "api:{reference}"
            );
        }
        let config = config(&bed.registry, "api", reference);
        assert!(
            config.get("moby.buildkit.cache.v0").is_some(),
            "api:{reference} has no inline cache in its config"
        );
    }
    // The cache image is the deps stage: no service files.
    let (_, deps) = manifest(&bed.registry, "api", "cache-deps");
    let (_, image) = manifest(&bed.registry, "api", &first_tag);
    assert!(deps["layers"].as_array().unwrap().len() < image["layers"].as_array().unwrap().len());

    // The next commit changes a service file: the stage comes from the daemon's cache,
    // and the build imports the previous commit's image and the cache image.
    fixture.write("services/api/src/cache.txt", "second\n");
    let second_tag = fixture.commit_all("a service change");
    let second = fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .args(["--output", "json"])
        .run();
    second.success();
    let api = image_entry(&second.stdout, "api");
    let stage = &api["dependency_stage"];
    assert_eq!(stage["source"], "local_cache", "{api:#}");
    let imported: Vec<&str> = stage["imported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The previous commit's image first (nothing runs live: --skip-tf), the cache
    // image last.
    assert_eq!(
        imported.first().copied(),
        Some(format!("{}/api:{first_tag}", bed.registry).as_str()),
        "{api:#}"
    );
    assert_eq!(
        imported.last().copied(),
        Some(cache_image.as_str()),
        "{api:#}"
    );
    assert!(bed.registry_has("api", &second_tag));

    // The text summary says it too.
    fixture.write("services/api/src/cache.txt", "third\n");
    fixture.commit_all("another service change");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .run()
        .success()
        .stdout_has("built, pushed (deps: local cache)");
}

#[test]
fn with_the_cache_off_nothing_is_imported_and_no_cache_image_is_pushed() {
    let bed = Testbed::get();
    let fixture = fixture_with_a_new_lockfile();
    let toml = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{toml}\n[docker]\ncache = \"off\"\n"),
    );
    let tag = fixture.commit_all("cache off");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // Its own repository name, so that no other test's cache image is there.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .args(["--output", "json"])
        .run();
    out.success();
    let api = image_entry(&out.stdout, "api");
    assert!(api.get("dependency_stage").is_none(), "{api:#}");
    assert!(bed.registry_has("api", &tag));
    let config = config(&bed.registry, "api", &tag);
    assert!(
        config.get("moby.buildkit.cache.v0").is_none(),
        "cache = \"off\" still exported the inline cache"
    );
}

#[test]
fn a_cache_stage_the_dockerfile_lacks_is_a_config_error_before_any_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let toml = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{toml}\n[docker]\ncache_stage = \"install\"\n"),
    );
    let tag = fixture.commit_all("a stage that is not there");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let out = fixture.deploy().aws(&env, &bed).args(PUSH_API).run();
    out.stderr_has("docker.cache_stage is `install`")
        .stderr_has("deps, service");
    assert_ne!(out.code, 0, "{out}");
    assert!(!bed.registry_has("api", &tag), "api:{tag} was pushed");
}

/// The sorted file list of `image` on `daemon`.
fn files(daemon: &TlsDaemon, image: &str) -> Vec<String> {
    let listing = daemon.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "find",
        "/",
        "-xdev",
    ]);
    let mut files: Vec<String> = listing.lines().map(str::to_owned).collect();
    files.sort();
    files
}

#[test]
fn a_second_daemon_builds_from_the_registry_cache_the_files_of_a_cold_build() {
    let bed = Testbed::get();
    let fixture = fixture_with_a_new_lockfile();
    let first_tag = fixture.commit_all("a new lockfile");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // The machine's daemon builds and exports.
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .run()
        .success();
    assert!(bed.registry_has("api", "cache-deps"));

    fixture.write("services/api/src/remote.txt", "the next commit\n");
    let tag = fixture.commit_all("a service change");
    let tls = |daemon: &TlsDaemon, deploy: crate::support::Deploy| {
        deploy
            .env("DOCKER_HOST", daemon.host())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &daemon.certs)
    };

    // An empty machine behind TLS: the deps stage comes from the registry.
    let warm_daemon = TlsDaemon::start(&bed);
    let first_image = format!("{}/api:{first_tag}", bed.registry);
    let warm = tls(&warm_daemon, fixture.deploy().aws(&env, &bed))
        .args(PUSH_API)
        .args(["--output", "json"])
        .run();
    warm.success();
    let api = image_entry(&warm.stdout, "api");
    let stage = &api["dependency_stage"];
    assert_eq!(stage["source"], "registry_cache", "{api:#}");
    assert!(stage["pulled_bytes"].as_u64().unwrap() > 0, "{api:#}");
    let warm_image = format!("{}/api:{tag}", bed.registry);
    let marker = |daemon: &TlsDaemon, image: &str| {
        daemon.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "cat",
            "/deps-marker",
        ])
    };
    // The stage's layer is the machine's: its marker line, not a new one.
    let machine_marker = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &first_image,
            "cat",
            "/deps-marker",
        ])
        .output()
        .unwrap();
    assert!(machine_marker.status.success());
    assert_eq!(
        marker(&warm_daemon, &warm_image),
        String::from_utf8_lossy(&machine_marker.stdout)
    );
    let warm_files = files(&warm_daemon, &warm_image);
    drop(warm_daemon);

    // Another empty machine builds the same commit cold, into the second registry.
    let cold_daemon = TlsDaemon::start(&bed);
    let toml = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    // deploy.toml is read from the work tree; the images from the commit (the same).
    fixture.write(
        "deploy.toml",
        &format!("{toml}\n[docker]\ncache = \"off\"\n"),
    );
    let cold = tls(&cold_daemon, fixture.deploy().aws(&env, &bed))
        .env("DEPLOY_REGISTRY", &bed.registry2)
        .args(PUSH_API)
        .args(["--output", "json"])
        .run();
    cold.success();
    assert!(image_entry(&cold.stdout, "api")
        .get("dependency_stage")
        .is_none());
    let cold_image = format!("{}/api:{tag}", bed.registry2);
    let cold_files = files(&cold_daemon, &cold_image);
    assert_eq!(
        warm_files, cold_files,
        "the cached build differs from the cold one"
    );
    assert!(warm_files
        .iter()
        .any(|f| f == "/app/services/api/src/remote.txt"));
}
