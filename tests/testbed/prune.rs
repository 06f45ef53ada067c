//! `deploy prune`: old SHA-tagged images of our repositories go, live and HEAD tags and
//! the newest N stay; volumes and other images are never touched.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    bootstrap_applied, eventually, processes_with, set_live_image, Fixture, Testbed, PUSH_API,
};

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn prune_keeps_live_head_and_newest_and_never_touches_volumes_or_other_images() {
    let bed = Testbed::get();
    let id = std::process::id();
    let fixture = Fixture::new();
    // Repositories of this test alone, so parallel tests' images are never in scope.
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[registry]\nrepository = \"prune{id}-{{service}}\"\n"),
    );
    let head = fixture.commit_all("own repositories");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    // Four images of `api`, oldest first: HEAD's, the live one, then two newer.
    let repo = format!("{}/prune{id}-api", bed.registry);
    let build = tempfile::tempdir().unwrap();
    for (n, tag) in [&head, "1111111", "2222222", "3333333"]
        .into_iter()
        .enumerate()
    {
        std::fs::write(
            build.path().join("Dockerfile"),
            format!("FROM {}\nRUN echo {n}-{id} > /n\n", bed.base_image),
        )
        .unwrap();
        docker(&[
            "build",
            "-q",
            "-t",
            &format!("{repo}:{tag}"),
            build.path().to_str().unwrap(),
        ]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // ECS runs 1111111 for api.
    set_live_image(&env, "api", Some(&format!("{repo}:1111111")));
    // Things prune must never touch.
    let volume = format!("deploy-prune-test-{id}");
    docker(&["volume", "create", &volume]);
    let foreign = format!("foreign{id}/thing:5555555");
    docker(&["tag", &bed.base_image, &foreign]);

    let dry = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["prune", "--keep", "1", "--dry-run", "--profile", "testbed"])
        .run();
    dry.success()
        .stdout_has(&format!("would remove {repo}:2222222"));
    assert!(
        image_exists(&format!("{repo}:2222222")),
        "a dry run removes nothing"
    );

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .alone_on_docker()
        .args(["prune", "--keep", "1", "--profile", "testbed"])
        .run();
    out.success()
        .stdout_has(&format!("removed {repo}:2222222"))
        .stdout_has("volumes untouched");
    assert!(!image_exists(&format!("{repo}:2222222")));
    for kept in [
        format!("{repo}:{head}"),
        format!("{repo}:1111111"),
        format!("{repo}:3333333"),
        foreign.clone(),
    ] {
        assert!(image_exists(&kept), "{kept} must survive:\n{}", out.stdout);
    }
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        volume
    );

    docker(&["volume", "rm", &volume]);
    for reference in [
        format!("{repo}:{head}"),
        format!("{repo}:1111111"),
        format!("{repo}:3333333"),
        foreign,
    ] {
        let _ = Command::new("docker").args(["rmi", &reference]).output();
    }
}

#[test]
fn prune_refuses_while_a_deploy_builds_on_the_same_daemon() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let mut build = fixture.deploy().aws(&env, &bed).args(PUSH_API).spawn();
    build.wait_for_line("the build", |line| line.contains("api: building"));

    // Shared on the daemon, not alone as the other prune run: this prune must refuse
    // by itself. (Were it to prune, Docker 20.10 could crash under the build.)
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["prune", "--skip-live-check", "--profile", "testbed"])
        .run()
        .code(1)
        .stderr_has("a deploy is building on the Docker daemon at")
        .stderr_has("Nothing was removed; run `deploy prune` again when the deploy has finished");
    assert!(
        eventually(Duration::from_secs(60), || !processes_with(&marker)
            .is_empty()),
        "the build goes on"
    );
    build.interrupt_before_the_roll();
}

#[test]
fn a_deploy_waits_for_a_running_prune_on_its_daemon() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // What a running `deploy prune` holds: the daemon's lock file, alone.
    let daemon_id = docker(&["info", "--format", "{{.ID}}"]);
    let prune = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(deploy::docker::daemon_lock::path_for(&daemon_id))
        .unwrap();
    prune.lock().unwrap();

    let mut run = fixture.deploy().aws(&env, &bed).args(PUSH_API).spawn();
    run.wait_for_line("the wait", |line| {
        line.contains("waiting for `deploy prune` to finish on the Docker daemon")
    });
    assert!(!bed.registry_has("api", &tag));
    drop(prune);
    run.finish().code(0).printed("api: building");
    assert!(bed.registry_has("api", &tag));
}
