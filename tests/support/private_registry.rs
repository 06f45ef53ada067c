//! The test bed's registry that requires a login (htpasswd), which holds a copy of the
//! base image, and the ways a user gives deploy its login: a Docker config file, or a
//! credential helper program.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use super::{unique_marker, Fixture};

/// The registry that requires a login, as `testbed/testbed.sh up` exported it.
pub struct PrivateRegistry {
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The base image's copy there (`<host>/deploy-testbed/base:latest`).
    pub base_image: String,
    pub user: String,
    pub password: String,
}

impl PrivateRegistry {
    /// Panics, naming the fix, when the test bed did not export it.
    #[track_caller]
    pub fn get() -> Self {
        let var = |name: &str| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
                panic!("the test bed did not export {name}: run `testbed/testbed.sh up` and `. .testbed/env`")
            })
        };
        let password = std::fs::read_to_string(var("DEPLOY_TESTBED_PRIVATE_PASSWORD_FILE"))
            .expect("the private registry's password file")
            .trim()
            .to_owned();
        Self {
            host: var("DEPLOY_TESTBED_PRIVATE_REGISTRY"),
            base_image: var("DEPLOY_TESTBED_PRIVATE_BASE_IMAGE"),
            user: var("DEPLOY_TESTBED_PRIVATE_USER"),
            password,
        }
    }

    /// A `DOCKER_CONFIG` directory whose `config.json` is `json`.
    pub fn docker_config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    /// A `DOCKER_CONFIG` holding this registry's login as `docker login` writes it.
    pub fn logged_in_config(&self) -> tempfile::TempDir {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        Self::docker_config(&format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            self.host
        ))
    }

    /// A directory for PATH holding `docker-credential-<name>`, a helper that answers
    /// this registry's login and "credentials not found" for any other host, and logs
    /// each host it is asked about to `<dir>/asked`.
    pub fn credential_helper(&self, name: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            r#"#!/bin/sh
# docker-credential-{name}: the protocol of docker's credential helpers.
[ "$1" = get ] || {{ echo "unsupported: $1"; exit 1; }}
read -r host
echo "$host" >> '{asked}'
if [ "$host" = '{host}' ]; then
    printf '{{"ServerURL":"%s","Username":"%s","Secret":"%s"}}\n' '{host}' '{user}' '{password}'
else
    echo "credentials not found in native keychain"
    exit 1
fi
"#,
            asked = dir.path().join("asked").display(),
            host = self.host,
            user = self.user,
            password = self.password,
        );
        let path = dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
        dir
    }

    /// A tag of the base image in this registry that no other test uses, pushed with a
    /// login and not kept locally: the classic builder tags what it pulls, and a local
    /// tag would let later builds skip the registry (and its login).
    pub fn unique_base_image(&self) -> String {
        let image = format!(
            "{}/deploy-testbed/base:{}",
            self.host,
            unique_marker("classic")
        );
        let config = self.logged_in_config();
        let docker = |args: &[&str]| {
            let output = Command::new("docker")
                .args(args)
                .env("DOCKER_CONFIG", config.path())
                .output()
                .expect("docker runs");
            assert!(
                output.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let base = std::env::var("DEPLOY_TESTBED_BASE_IMAGE").unwrap();
        docker(&["tag", &base, &image]);
        docker(&["push", &image]);
        docker(&["rmi", &image]);
        image
    }
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> PathBuf {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap().into()
}

/// Makes the fixture's service images start `FROM image` (the Dockerfile's default base)
/// and commits it.
pub fn build_from(fixture: &Fixture, image: &str) {
    let path = "infra/docker/service.Dockerfile";
    let dockerfile = std::fs::read_to_string(fixture.path(path)).unwrap();
    let from = "ARG BASE_IMAGE=deploy-testbed/busybox:latest";
    assert!(
        dockerfile.contains(from),
        "the fixture's Dockerfile changed"
    );
    fixture.write(
        path,
        &dockerfile.replace(from, &format!("ARG BASE_IMAGE={image}")),
    );
    fixture.commit_all("a base image in a registry that requires a login");
}
