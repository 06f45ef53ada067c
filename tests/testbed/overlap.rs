//! The run's own overlap, with the real components: SPA builds run beside the image
//! builds and pushes, while the uploads still wait for every image (docs/internals.md).
//! Ordering comes from events the build tool and the image build record themselves (the
//! kernel's uptime, which the build's containers share), never from timing thresholds.

use crate::support::{bootstrap_applied, unique_marker, Fixture};

/// api and both SPAs, with terraform: a roll follows when everything is in place.
const DEPLOY_API_AND_SPAS: [&str; 7] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--services",
    "api",
    "--profile",
    "testbed",
    "-y",
];

/// Sets admin-ui's build command in the fixture's deploy.toml.
fn admin_ui_builds_with(fixture: &Fixture, build: &str) {
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    let changed = config.replacen(
        "build = \"node build.mjs\"",
        &format!("build = {build:?}"),
        1,
    );
    assert_ne!(
        changed, config,
        "the fixture's admin-ui build command was found"
    );
    fixture.write("deploy.toml", &changed);
}

/// The time recorded after `label ` in `text` (a build log, an events file): seconds
/// since the machine booted, /proc/uptime, one clock for the host and the build's
/// containers (they share the kernel's).
fn recorded_at(text: &str, label: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (_, after) = line.split_once(&format!("{label} "))?;
        after.split_whitespace().next()?.parse().ok()
    })
}

#[test]
fn overlap_an_spa_build_starts_before_the_last_image_push_ends() {
    let bed = crate::support::Testbed::get();
    let fixture = crate::support::Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // The image build records when its last stage ran (a marker keeps the step out of
    // any build cache); the step runs before the image is pushed.
    let marker = unique_marker("overlap");
    let dockerfile =
        std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!(
            "{dockerfile}\nRUN echo \"image-step-at $(cut -d' ' -f1 /proc/uptime) {marker}\"\n"
        ),
    );
    // The SPA build tool records when it started, then builds as usual.
    let records = tempfile::tempdir().unwrap();
    let events = records.path().join("spa-events.log");
    admin_ui_builds_with(
        &fixture,
        &format!(
            "echo spa-build-at $(cut -d' ' -f1 /proc/uptime) >> {} && node build.mjs",
            events.display()
        ),
    );
    fixture.commit_all("record when the image and the SPA build");

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API_AND_SPAS)
        .run();
    out.success();
    let log = fixture.path(&format!(".git/deploy/logs/{}/api.log", fixture.short_sha()));
    let log = std::fs::read_to_string(&log)
        .unwrap_or_else(|err| panic!("the build log {}: {err}", log.display()));
    let image_step = recorded_at(&log, "image-step-at")
        .unwrap_or_else(|| panic!("the image build ran its recording step: {log}"));
    let spa_started = recorded_at(&std::fs::read_to_string(&events).unwrap(), "spa-build-at")
        .expect("the SPA build tool recorded its start");
    assert!(
        spa_started < image_step,
        "the SPA build started ({spa_started}) before api's image was even built \
         ({image_step}), so before its push ended: {}",
        out.stderr
    );
    // The upload waited for the image: admin-ui went up after api was pushed.
    let pushed = out.stderr.find("api: pushed").expect("api was pushed");
    let uploaded = out
        .stderr
        .find("admin-ui: uploading to s3://")
        .expect("admin-ui was uploaded");
    assert!(
        pushed < uploaded,
        "uploads wait for every image: {}",
        out.stderr
    );
}

#[test]
fn overlap_a_failed_spa_build_beside_the_images_uploads_nothing_and_rolls_nothing() {
    let bed = crate::support::Testbed::get();
    let fixture = crate::support::Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    admin_ui_builds_with(&fixture, "echo the bundler broke >&2; exit 3");
    fixture.commit_all("a broken SPA build");

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API_AND_SPAS)
        .run();
    out.code(1)
        .stderr_has("the build of SPA admin-ui failed")
        .stderr_has("the bundler broke")
        .stderr_has("no SPA was uploaded. Pushed: api.")
        .stderr_lacks("uploading to s3://");
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
    crate::support::runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        for (spa, bucket, _) in crate::spas::spa_buckets(&env) {
            let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
            assert_eq!(
                listed.key_count(),
                Some(0),
                "nothing of SPA {spa} in {bucket}"
            );
        }
    });
}
