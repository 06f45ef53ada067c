//! Docker contexts: with no `DOCKER_HOST`, deploy builds on the daemon of the docker CLI's
//! current context (`currentContext` in config.json, or `DOCKER_CONTEXT`), read from the
//! context store the real `docker context create` writes; here a context on the second
//! dockerd behind TLS (remote.rs), its TLS material in the store.

use std::path::Path;
use std::process::Command;

use crate::remote::{cat_remote_txt, TlsDaemon};
use crate::support::{bootstrap_aws, Fixture, Testbed, PUSH_API};

/// `docker context create <name>` on `daemon` (its certificates copied into the store),
/// in the docker CLI configuration directory `config`.
fn create_context(config: &Path, name: &str, daemon: &TlsDaemon) {
    let certs = &daemon.certs;
    let endpoint = format!(
        "host={},ca={},cert={},key={}",
        daemon.host(),
        certs.join("ca.pem").display(),
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    );
    let output = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["context", "create", name, "--docker", &endpoint])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker context create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn use_context(config: &Path, name: &str) {
    let output = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["context", "use", name])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker context use: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_current_docker_context_is_the_daemon_deploy_builds_on() {
    let bed = Testbed::get();
    let daemon = TlsDaemon::start(&bed);
    let config = tempfile::tempdir().unwrap();
    create_context(config.path(), "remote", &daemon);
    use_context(config.path(), "remote");
    let fixture = Fixture::unique();
    fixture.write("services/api/src/remote.txt", "committed\n");
    let tag = fixture.commit_all("a file the remote build copies");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");

    fixture
        .deploy()
        .aws(&env, &bed)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_BUILDKIT", "1")
        .args(PUSH_API)
        .run()
        .success();

    // Built on the context's daemon (it holds the image, the machine's does not).
    let image = format!("{}/api:{tag}", bed.registry);
    assert_eq!(daemon.docker(&cat_remote_txt(&image)), "committed\n");
    let on_the_machine = Command::new("docker")
        .env_remove("DOCKER_CONFIG")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(
        !on_the_machine.status.success(),
        "the machine's own daemon has {image}: the build did not run on the context's daemon"
    );

    // DOCKER_CONTEXT beats currentContext: a name the store lacks is one clear error.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONTEXT", "nowhere")
        .env("DOCKER_CONFIG", config.path())
        .args(PUSH_API)
        .run();
    out.code(1)
        .stderr_has("Docker context `nowhere` (DOCKER_CONTEXT): no such context in the docker CLI's context store")
        .stderr_has("docker context ls");
    assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
}
