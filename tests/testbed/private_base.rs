//! A base image in a registry that requires a login (the test bed's htpasswd registry):
//! deploy pulls it with the docker CLI's logins, from a config file or a credential
//! helper, through BuildKit's session and through the classic builder; without a login,
//! one error names the registry and `docker login`.

use crate::support::private_registry::{build_from, path_with, PrivateRegistry};
use crate::support::{bootstrap_aws, Fixture, Testbed, PUSH_API};

#[test]
fn a_private_base_image_builds_with_the_login_in_the_docker_config_file() {
    let bed = Testbed::get();
    let private = PrivateRegistry::get();
    let fixture = Fixture::unique();
    build_from(&fixture, &private.base_image);
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let config = private.logged_in_config();

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_CONFIG", config.path())
        .args(PUSH_API)
        .run();
    out.success()
        .stdout_has(&format!("{}/api:{}", bed.registry, fixture.short_sha()));
}

#[test]
fn a_private_base_image_builds_with_the_login_of_a_credential_helper() {
    let bed = Testbed::get();
    let private = PrivateRegistry::get();
    let fixture = Fixture::unique();
    build_from(&fixture, &private.base_image);
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let helper = private.credential_helper("deploy-testbed");
    // The helper for this registry only; no login in the file itself.
    let config = PrivateRegistry::docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "deploy-testbed"}}}}"#,
        private.host
    ));

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_CONFIG", config.path())
        .env("PATH", path_with(helper.path()))
        .args(PUSH_API)
        .run();
    out.success()
        .stdout_has(&format!("{}/api:{}", bed.registry, fixture.short_sha()));
    let asked = std::fs::read_to_string(helper.path().join("asked")).unwrap_or_default();
    assert!(
        asked.lines().any(|host| host == private.host),
        "the helper was asked for {}: {asked:?}",
        private.host
    );
}

#[test]
fn a_private_base_image_without_a_login_is_one_error_naming_the_registry_and_docker_login() {
    let bed = Testbed::get();
    let private = PrivateRegistry::get();
    let fixture = Fixture::unique();
    build_from(&fixture, &private.base_image);
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let config = PrivateRegistry::docker_config("{}");

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_CONFIG", config.path())
        .args(PUSH_API)
        .run();
    out.code(1)
        .stderr_has(&format!(
            "the image build of api failed: the registry {} requires a login to pull the base image, and deploy found none for it",
            private.host
        ))
        .stderr_has(&format!("run `docker login {}`", private.host))
        .stderr_has(&config.path().join("config.json").display().to_string());
}

/// The classic builder takes the logins as `X-Registry-Config`, as from `docker build`.
#[test]
fn the_classic_builder_pulls_a_private_base_image_with_the_login_and_says_which_registry_without() {
    let bed = Testbed::get();
    let private = PrivateRegistry::get();
    let fixture = Fixture::unique();
    // Each run pulls a tag of its own: the classic builder keeps what it pulled, tagged.
    let (with_login, without) = (private.unique_base_image(), private.unique_base_image());
    // The classic builder has no `RUN --mount`: a Dockerfile it can build.
    let classic = |image: &str| {
        fixture.write(
            "infra/docker/service.Dockerfile",
            &format!("ARG BASE_IMAGE={image}\nFROM ${{BASE_IMAGE}}\nARG SERVICE\nRUN echo \"$SERVICE\" > /SERVICE\n"),
        );
        fixture.commit_all("a classic Dockerfile on a private base image")
    };
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let config = private.logged_in_config();
    let empty = PrivateRegistry::docker_config("{}");

    classic(&with_login);
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", config.path())
        .args(PUSH_API)
        .run();
    let _ = std::process::Command::new("docker")
        .args(["rmi", &with_login])
        .output();
    out.success()
        .stdout_has(&format!("{}/api:{}", bed.registry, fixture.short_sha()));

    classic(&without);
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", empty.path())
        .args(PUSH_API)
        .run();
    out.code(1)
        .stderr_has(&format!(
            "the registry {} requires a login to pull the base image",
            private.host
        ))
        .stderr_has(&format!("run `docker login {}`", private.host));
}
