//! The build context served over BuildKit's session file sync, measured on the wire: a
//! byte-counting proxy sits on the Docker socket, so what the daemon pulled is counted
//! outside deploy, whatever deploy logs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{bootstrap_aws, push, AwsEnv, Deploy, FaultProxy, Fixture, Testbed, PUSH_API};

const MIB: u64 = 1024 * 1024;

/// `size` bytes that no compression or earlier run shares (xorshift from a seed).
fn random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    out
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// The daemon reached through a byte-counting proxy on a socket of its own.
struct Counted {
    dir: tempfile::TempDir,
    _proxy: FaultProxy,
}

impl Counted {
    fn start(bed: &Testbed) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (socket, count) = (dir.path().join("docker.sock"), dir.path().join("sent"));
        let _proxy = FaultProxy::unix_counting(bed, &socket, &docker_socket(), &count);
        Self { dir, _proxy }
    }

    /// `deploy --skip-tf --skip-spas --services <services> -y` through the proxy, to run.
    fn push(&self, fixture: &Fixture, env: &AwsEnv, bed: &Testbed, services: &str) -> Deploy {
        let socket = self.dir.path().join("docker.sock");
        fixture
            .deploy()
            .aws(env, bed)
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .args(push(services))
    }

    /// Bytes sent to the daemon through the proxy so far.
    fn sent(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("sent"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// Runs a command in an image with the docker CLI and returns its stdout.
fn run_in(image: &str, script: &str) -> String {
    let output = Command::new("docker")
        .args(["run", "--rm", image, "sh", "-c", script])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker run {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_daemon_pulls_only_what_the_dockerfile_copies_once_and_from_the_commit() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // 8 MiB the Dockerfile never copies, 2 MiB under packages/ that every image copies.
    std::fs::create_dir_all(fixture.path("bigdata")).unwrap();
    std::fs::write(
        fixture.path("bigdata/never-copied.bin"),
        random_bytes(8 * MIB as usize, seed()),
    )
    .unwrap();
    let copied = fixture.path("packages/common/copied.bin");
    std::fs::write(&copied, random_bytes(2 * MIB as usize, seed())).unwrap();
    // An executable script, a symlink, and a file about to change at the same size.
    fixture.write("services/api/bin/run.sh", "#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        fixture.path("services/api/bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("src", fixture.path("services/api/current")).unwrap();
    fixture.write("services/api/src/version.txt", "v1\n");
    let tag = fixture.commit_all("a big tree, most of it never copied");
    let committed = sha256_of(&copied);

    let daemon = Counted::start(&bed);
    let deploy = |services: &str| daemon.push(&fixture, &env, &bed, services).run();

    deploy("api,auth").success();
    let first = daemon.sent();
    // The copied 2 MiB went through the proxy (so it counts the context), once for both
    // images; the 8 MiB never did.
    assert!(
        (2 * MIB..3 * MIB).contains(&first),
        "two images of a tree with 2 MiB copied and 8 MiB not: {first} bytes sent to the daemon"
    );
    let api = format!("{}/api:{tag}", bed.registry);
    let auth = format!("{}/auth:{tag}", bed.registry);
    for image in [&api, &auth] {
        assert_eq!(
            run_in(
                image,
                "sha256sum /app/packages/common/copied.bin | cut -d' ' -f1"
            )
            .trim(),
            committed,
            "{image}"
        );
    }
    assert_eq!(
        run_in(
            &api,
            "test -x /app/services/api/bin/run.sh && readlink /app/services/api/current"
        )
        .trim(),
        "src",
        "the exec bit and the symlink survive"
    );

    // A commit that changes nothing the images copy: both rebuild, next to nothing moves.
    fixture.write("docs/notes.txt", "not copied\n");
    fixture.commit_all("a change no image copies");
    deploy("api,auth").success();
    let second = daemon.sent() - first;
    eprintln!(
        "sent to the daemon: {first} bytes for the first deploy, {second} for the unchanged one"
    );
    assert!(
        second < MIB,
        "an unchanged context re-sent {second} bytes to the daemon"
    );

    // A same-size edit is served fresh, and a dirty work-tree file never ships.
    fixture.write("services/api/src/version.txt", "v2\n");
    let edited = fixture.commit_all("same size, new content");
    std::fs::write(&copied, random_bytes(2 * MIB as usize, seed())).unwrap();
    deploy("api").success();
    let api = format!("{}/api:{edited}", bed.registry);
    assert_eq!(
        run_in(&api, "cat /app/services/api/src/version.txt").trim(),
        "v2"
    );
    assert_eq!(
        run_in(
            &api,
            "sha256sum /app/packages/common/copied.bin | cut -d' ' -f1"
        )
        .trim(),
        committed,
        "the uncommitted edit of copied.bin reached the image"
    );
}

/// Five images copy the same 2 MiB. The first builds alone; at `docker.concurrency` 4 the
/// other four would build side by side, and Docker 20.10 gives each running build a
/// context copy of its own (four more transfers). Since the first pulled more than
/// `docker.shared_context_mib` (1 here, 16 by default), the others build one at a time,
/// each reusing the copy: the 2 MiB crosses the socket once for all five.
#[test]
fn a_large_shared_context_is_sent_once_for_all_images_by_building_one_at_a_time() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    std::fs::write(
        fixture.path("packages/common/copied.bin"),
        random_bytes(2 * MIB as usize, seed()),
    )
    .unwrap();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[docker]\nshared_context_mib = 1\n"),
    );
    fixture.commit_all("2 MiB every image copies");

    let daemon = Counted::start(&bed);
    let deploy = || {
        daemon
            .push(&fixture, &env, &bed, "api,auth,billing,files,reports")
            .run()
    };
    deploy()
        .success()
        .stderr_has("the others build one at a time");
    let first = daemon.sent();
    assert!(
        (2 * MIB..3 * MIB).contains(&first),
        "five images copying the same 2 MiB sent {first} bytes to the daemon"
    );

    // Nothing copied changed: the first build sends next to nothing, yet its context
    // still holds 2 MiB, so the others still take turns and send next to nothing too.
    fixture.write("docs/notes.txt", "not copied\n");
    fixture.commit_all("a change no image copies");
    deploy()
        .success()
        .stderr_has("the others build one at a time");
    let again = daemon.sent() - first;
    assert!(
        again < MIB,
        "five images whose copied files did not change sent {again} bytes"
    );
}

/// The classic builder (`DOCKER_BUILDKIT=0`) reads a tar: it holds only what the
/// Dockerfile copies, or everything, said once, for a `COPY . .`.
#[test]
fn the_classic_builder_builds_from_a_tar_of_what_the_dockerfile_copies() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // The fixture's own Dockerfile needs BuildKit (RUN --mount): one that does not.
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!(
            "ARG BASE_IMAGE={}\nFROM ${{BASE_IMAGE}}\nARG SERVICE\nWORKDIR /app\nCOPY pnpm-lock.yaml package.json ./\nCOPY packages/ ./packages/\nCOPY services/${{SERVICE}}/ ./services/${{SERVICE}}/\nRUN echo \"$SERVICE\" > /app/SERVICE\n",
            bed.base_image
        ),
    );
    std::fs::create_dir_all(fixture.path("bigdata")).unwrap();
    std::fs::write(
        fixture.path("bigdata/never-copied.bin"),
        random_bytes(8 * MIB as usize, seed()),
    )
    .unwrap();
    let tag = fixture.commit_all("a classic Dockerfile, 8 MiB never copied");

    let daemon = Counted::start(&bed);
    let deploy = || {
        daemon
            .push(&fixture, &env, &bed, "api,auth")
            .env("DOCKER_BUILDKIT", "0")
            .run()
    };
    deploy()
        .success()
        .stderr_lacks("gets the whole build context");
    let first = daemon.sent();
    assert!(
        first < MIB,
        "two classic builds that copy a few kB sent {first} bytes to the daemon"
    );
    let api = format!("{}/api:{tag}", bed.registry);
    assert_eq!(run_in(&api, "cat /app/SERVICE").trim(), "api");
    assert_eq!(
        run_in(
            &api,
            "ls /app/services; test ! -e /app/bigdata && echo no-bigdata"
        ),
        "api\nno-bigdata\n"
    );

    // `COPY . .` reads everything: the whole filtered tree goes, and deploy says so once.
    let dockerfile = std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile"))
        .unwrap()
        .replace("COPY packages/ ./packages/", "COPY . /ctx/");
    fixture.write("infra/docker/service.Dockerfile", &dockerfile);
    let tag = fixture.commit_all("COPY . in a classic build");
    let whole = deploy();
    whole.success();
    let said = whole
        .rest()
        .matches("the classic builder gets the whole build context")
        .count();
    assert_eq!(said, 1, "said once: {}", whole.rest());
    assert!(
        daemon.sent() - first > 2 * 8 * MIB,
        "the whole tree goes to each of the two classic builds"
    );
    let api = format!("{}/api:{tag}", bed.registry);
    assert_eq!(
        run_in(&api, "wc -c < /ctx/bigdata/never-copied.bin").trim(),
        (8 * MIB).to_string()
    );
}

/// A `tcp://` `DOCKER_HOST` (the daemon behind a loopback TCP port): bollard's requests
/// and deploy's own BuildKit session both go there.
#[test]
fn a_tcp_docker_host_gets_the_served_context() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let tag = fixture.short_sha();
    let daemon = FaultProxy::tcp_to_unix(&bed, &docker_socket());
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", format!("tcp://{}", daemon.address))
        .env_remove("DOCKER_TLS_VERIFY")
        .args(PUSH_API)
        .run()
        .success();
    let api = format!("{}/api:{tag}", bed.registry);
    assert_eq!(run_in(&api, "cat /app/SERVICE").trim(), "api");
}
