//! `deploy prune`: old commit-tagged images of our repositories go, live and HEAD tags
//! and the newest N stay; volumes and other images (another project's `api` included)
//! are never touched.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    bootstrap_applied, eventually, processes_with, set_live_image, AwsEnv, Fixture, Outcome,
    Testbed, PUSH_API,
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

/// Local images and a volume this test made, removed however it ends.
struct Made {
    images: Vec<String>,
    volume: String,
}

impl Drop for Made {
    fn drop(&mut self) {
        for reference in &self.images {
            let _ = Command::new("docker").args(["rmi", reference]).output();
        }
        let _ = Command::new("docker")
            .args(["volume", "rm", &self.volume])
            .output();
    }
}

/// A real prune. The daemon is shared with other checkouts' test beds, whose deploys
/// build on it: prune refuses while one builds (by design, see `daemon_lock`), so
/// this tries again until none does.
fn prune_when_no_deploy_builds(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> Outcome {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let out = fixture
            .deploy()
            .aws(env, bed)
            .alone_on_docker()
            .args(["prune", "--keep", "1", "--profile", "testbed"])
            .run();
        let refused = out.code == 1
            && out
                .stderr
                .contains("a deploy is building on the Docker daemon");
        if !refused || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A commit of a second git repository: another project's image tag.
fn commit_of_another_repository() -> String {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=other",
                "-c",
                "user.email=other@example.com",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "--quiet"]);
    git(&[
        "commit",
        "--quiet",
        "--allow-empty",
        "-m",
        "another project",
    ]);
    git(&["rev-parse", "--short", "HEAD"])
}

/// A shared build host: beside this project's images, a second project's under the same
/// repository name (another registry host, tags that are no commit of this repository,
/// a second repository's commits). prune removes only this project's old images, and
/// names the others as skipped, with the reason.
#[test]
fn prune_keeps_live_head_and_newest_and_never_touches_volumes_or_other_projects_images() {
    let bed = Testbed::get();
    let id = std::process::id();
    let fixture = Fixture::new();
    // Repositories of this test alone, so parallel tests' images are never in scope.
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[registry]\nrepository = \"prune{id}-{{service}}\"\n"),
    );
    let live = fixture.commit_all("own repositories");
    let older = fixture.commit_all("an older commit");
    let newer = fixture.commit_all("a newer commit");
    let head = fixture.commit_all("head");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    // Four images of `api`, oldest first: HEAD's, the live one, then two newer.
    let repo = format!("{}/prune{id}-api", bed.registry);
    let build = tempfile::tempdir().unwrap();
    for (n, tag) in [&head, &live, &older, &newer].into_iter().enumerate() {
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
    // ECS runs `live` for api.
    set_live_image(&env, "api", Some(&format!("{repo}:{live}")));
    // Things prune must never touch: a volume, an unrelated image, and a second
    // project's `api` images, older than ours (they would go first by age).
    let volume = format!("deploy-prune-test-{id}");
    let foreign = format!("foreign{id}/thing:5555555");
    let other_projects = [
        format!("registry.other-team.example:5000/prune{id}-api:{older}"),
        format!("{}/prune{id}-api:{older}", bed.registry2),
        format!("{repo}:v1.2.3"),
        format!("{repo}:deadbee"),
        format!("{repo}:{}", commit_of_another_repository()),
    ];
    let survivors: Vec<String> = [
        format!("{repo}:{head}"),
        format!("{repo}:{live}"),
        format!("{repo}:{newer}"),
        foreign.clone(),
    ]
    .into_iter()
    .chain(other_projects.iter().cloned())
    .collect();
    let _made = Made {
        images: survivors
            .iter()
            .cloned()
            .chain([format!("{repo}:{older}")])
            .collect(),
        volume: volume.clone(),
    };
    docker(&["volume", "create", &volume]);
    for reference in other_projects.iter().chain([&foreign]) {
        docker(&["tag", &bed.base_image, reference]);
    }

    let dry = fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "prune",
            "--keep",
            "1",
            "--dry-run",
            "-v",
            "--profile",
            "testbed",
        ])
        .run();
    dry.success()
        .stdout_has(&format!("would remove {repo}:{older}"))
        .stdout_has(&format!(
            "skipped registry.other-team.example:5000/prune{id}-api:{older} (under another registry host: not this project's)"
        ))
        .stdout_has(&format!(
            "skipped {repo}:deadbee (tag is not a commit of this repository: not this project's)"
        ));
    assert!(
        image_exists(&format!("{repo}:{older}")),
        "a dry run removes nothing"
    );

    let out = prune_when_no_deploy_builds(&fixture, &env, &bed);
    out.success()
        .stdout_has(&format!("removed {repo}:{older}"))
        .stdout_has("skipped 5 image tag(s) named like ours that are not this project's (2 under another registry host, 1 tag is not a commit id, 2 tag is not a commit of this repository); -v lists them")
        .stdout_has("1 image tag(s) removed")
        .stdout_has("volumes untouched");
    assert!(!image_exists(&format!("{repo}:{older}")));
    for kept in &survivors {
        assert!(image_exists(kept), "{kept} must survive:\n{}", out.stdout);
    }
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]),
        volume
    );
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
