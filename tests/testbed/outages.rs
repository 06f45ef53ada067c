//! A server going away in the middle of a run, credentials the endpoint rejects, and
//! a signal (Ctrl-C's SIGINT, CI's SIGTERM) while a push or an upload is in flight. Each run must end with one clear
//! message, the right exit code and a summary, roll nothing, and leave a re-run able
//! to finish the job.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    bootstrap_applied, bootstrap_aws, eventually, processes_with, unique_marker, FaultProxy,
    Fixture, Sig, Testbed, DEPLOY_API,
};

/// PUTs of SPA files (path-style S3: `/<env>-<account>-<spa>/<key>`).
const SPA_FILE_PUTS: &str = r"^PUT /[^/?]+-(admin-ui|simulator)/";

/// api and both SPAs (SPAs are not limited by --services).
const DEPLOY_API_AND_SPAS: [&str; 7] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--services",
    "api",
    "--profile",
    "testbed",
    "-y",
];

/// The service's row in the summary table (not the plan's, printed first).
fn summary_row<'a>(stdout: &'a str, service: &str) -> &'a str {
    let (_, summary) = stdout
        .split_once("Summary")
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    summary
        .lines()
        .find(|line| line.starts_with(&format!("{service} ")))
        .unwrap_or_else(|| panic!("no {service} in the summary: {summary}"))
}

/// The Docker daemon the tests use, reached through a proxy on a socket of its own
/// (in a temporary directory, kept with it). Dropping the proxy is the daemon going away.
fn docker_through_a_proxy(bed: &Testbed) -> (FaultProxy, PathBuf, tempfile::TempDir) {
    let daemon = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("docker.sock");
    (FaultProxy::unix(bed, &socket, &daemon), socket, sockets)
}

/// The test bed's registry behind a proxy that holds every layer upload for 30 s: a
/// push through it is surely in flight when a test acts.
fn slow_registry(bed: &Testbed) -> FaultProxy {
    FaultProxy::http(
        bed,
        &bed.registry,
        &["--delay-ms", "30000", "--delay-match", "/blobs/uploads/"],
    )
}

/// moto behind a proxy that holds every SPA file upload for `ms` milliseconds.
fn slow_spa_uploads(bed: &Testbed, ms: u32) -> FaultProxy {
    FaultProxy::http(
        bed,
        bed.endpoint.trim_start_matches("http://"),
        &[
            "--delay-ms",
            &ms.to_string(),
            "--delay-match",
            SPA_FILE_PUTS,
        ],
    )
}

#[test]
fn aws_going_away_mid_upload_fails_clearly_and_a_rerun_resumes() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let args = DEPLOY_API_AND_SPAS;

    // AWS reached through a proxy that holds each SPA file for 3 s, then goes away.
    let aws = slow_spa_uploads(&bed, 3000);
    let endpoint = format!("http://{}", aws.address);
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .args(args)
        .spawn();
    run.wait_for_line("the upload", |line| line.contains("uploading to s3://"));
    std::thread::sleep(Duration::from_secs(1));
    drop(aws);
    let ended = run.finish();
    ended
        .code(1)
        .printed(&format!("cannot reach AWS at {endpoint}"))
        .printed("failed part-way")
        .printed("nothing was applied")
        .printed("Pushed: api")
        // The lock could not be released either, and the message says how to break it.
        .printed("deploy unlock --var-file tfvars/sandbox.tfvars")
        // The summary: api pushed, not rolled.
        .printed("Summary");
    let row = summary_row(&ended.stdout, "api");
    assert!(
        row.contains("built, pushed") && row.contains(" no "),
        "{row}"
    );
    assert!(fixture.live_images(&env, &bed).contains("/api:bootstrap"));

    // AWS is back: break the lock as told, re-run. Nothing is rebuilt; the rest is done.
    fixture
        .unlock(&env, &bed)
        .success()
        .stdout_has("broke the deploy lock");
    let rerun = fixture.deploy().aws(&env, &bed).args(args).run();
    rerun
        .success()
        .stdout_has("already in registry")
        .stdout_has(&format!("yes (:{tag})"));
    assert!(fixture
        .live_images(&env, &bed)
        .contains(&format!("/api:{tag}")));
}

/// A moto server of its own that checks credentials, as AWS does: keys it does not
/// know (an expired session's, say) are rejected with `InvalidClientTokenId`.
struct StrictMoto {
    child: std::process::Child,
    url: String,
}

impl StrictMoto {
    fn start(bed: &Testbed) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = bed.python.parent().unwrap().join("moto_server");
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto never listened"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StrictMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn credentials_the_endpoint_rejects_stop_the_run_before_anything_is_touched() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let strict = StrictMoto::start(&bed);
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("AWS_ENDPOINT_URL", &strict.url)
        .args(crate::support::PUSH_API)
        .run();
    out.code(1)
        // moto's STS error body is not the shape the SDK reads; AWS's would name
        // InvalidClientTokenId or ExpiredToken here. The status is enough.
        .stderr_has("HTTP 403")
        .stderr_has("credentials rejected")
        .stderr_has("aws sso login --profile testbed")
        .stderr_has("nothing was touched");
    assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
    assert!(!bed.registry_has("api", &tag), "nothing was pushed");
}

#[test]
fn the_docker_daemon_going_away_mid_build_fails_clearly_and_rolls_nothing() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let (daemon, socket, _sockets) = docker_through_a_proxy(&bed);

    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .args(DEPLOY_API)
        .spawn();
    run.wait_for_the_slow_build(&marker);
    drop(daemon);
    let ended = run.finish();
    ended
        .code(1)
        .printed("lost the Docker daemon")
        .printed("Nothing was applied")
        .printed("Not pushed: api");
    // The daemon saw its client go and cancelled the build.
    assert!(
        eventually(Duration::from_secs(15), || processes_with(&marker)
            .is_empty()),
        "the build step still runs: {:?}",
        processes_with(&marker)
    );
    assert!(fixture.live_images(&env, &bed).contains("/api:bootstrap"));
    assert!(!bed.registry_has("api", &fixture.short_sha()));
}

#[test]
fn ctrl_c_during_a_push_exits_130_and_the_tag_never_reaches_the_registry() {
    a_signal_during_a_push(Sig::Int);
}

#[test]
fn sigterm_during_a_push_exits_143_and_the_tag_never_reaches_the_registry() {
    a_signal_during_a_push(Sig::Term);
}

fn a_signal_during_a_push(signal: Sig) {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let registry = slow_registry(&bed);
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_REGISTRY", &registry.address)
        .args(DEPLOY_API)
        .spawn();
    run.wait_for_line("the push", |line| {
        line.starts_with("api: ") && line.contains("pushing")
    });
    std::thread::sleep(Duration::from_secs(2));
    let ended = run.stop_before_the_roll(signal);
    ended.printed("Summary");
    let row = summary_row(&ended.stdout, "api");
    assert!(row.contains("not done") && row.contains(" no "), "{row}");
    drop(registry);
    assert!(!bed.registry_has("api", &tag), "no half-pushed tag");
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
    fixture.assert_interrupted_cleanly(&env, &bed);
}

#[test]
fn ctrl_c_during_an_spa_upload_exits_130_invalidates_nothing_and_rolls_nothing() {
    a_signal_during_an_spa_upload(Sig::Int);
}

#[test]
fn sigterm_during_an_spa_upload_exits_143_invalidates_nothing_and_rolls_nothing() {
    a_signal_during_an_spa_upload(Sig::Term);
}

fn a_signal_during_an_spa_upload(signal: Sig) {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let aws = slow_spa_uploads(&bed, 30000);
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("AWS_ENDPOINT_URL", format!("http://{}", aws.address))
        .args(DEPLOY_API_AND_SPAS)
        .spawn();
    run.wait_for_line("the upload", |line| line.contains("uploading to s3://"));
    std::thread::sleep(Duration::from_secs(2));
    let ended = run.stop_before_the_roll(signal);
    ended.printed("Summary");
    drop(aws);

    // No invalidation was made, no entry point replaced, nothing rolled, lock released.
    let distributions: Vec<String> = env.summary["spa_distribution_ids"]
        .as_object()
        .unwrap()
        .values()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let buckets: Vec<String> = env.summary["spa_buckets"]
        .as_object()
        .unwrap()
        .values()
        .map(|bucket| bucket.as_str().unwrap().to_owned())
        .collect();
    crate::support::runtime().block_on(async {
        let sdk = env.sdk().await;
        let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
        for id in &distributions {
            let list = cloudfront
                .list_invalidations()
                .distribution_id(id)
                .send()
                .await
                .unwrap();
            let count = list.invalidation_list().map(|l| l.quantity()).unwrap_or(0);
            assert_eq!(count, 0, "no invalidation of {id}");
        }
        let s3 = deploy::aws::s3(&sdk);
        for bucket in &buckets {
            assert!(
                s3.head_object()
                    .bucket(bucket)
                    .key("index.html")
                    .send()
                    .await
                    .is_err(),
                "no entry point in {bucket}"
            );
        }
    });
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
    fixture.assert_interrupted_cleanly(&env, &bed);
}

#[test]
fn ctrl_c_during_an_spa_build_stops_the_build_tool_and_what_it_started() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // A build tool that starts a child of its own and waits for it, as pnpm starts vite.
    let marker = unique_marker("tool-child");
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &config.replacen(
            "build = \"node build.mjs\"",
            &format!("build = \"sh -c 'sleep 300; echo {marker}' & wait\""),
            1,
        ),
    );
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API_AND_SPAS)
        .spawn();
    run.wait_for_line("the SPA build", |line| {
        line.starts_with("admin-ui: building")
    });
    let tool_child = format!("sleep 300; echo {marker}");
    assert!(
        eventually(Duration::from_secs(30), || !processes_with(&tool_child)
            .is_empty()),
        "the build tool's child never started"
    );
    let ended = run.interrupt_before_the_roll();
    assert!(
        eventually(Duration::from_secs(10), || processes_with(&tool_child)
            .is_empty()),
        "the build tool's child still runs after the interrupt: {ended}"
    );
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}

#[test]
fn the_docker_daemon_going_away_mid_push_fails_clearly_without_retrying() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let registry = slow_registry(&bed);
    let (daemon, socket, _sockets) = docker_through_a_proxy(&bed);
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DEPLOY_REGISTRY", &registry.address)
        .args(DEPLOY_API)
        .spawn();
    run.wait_for_line("the push", |line| {
        line.starts_with("api: ") && line.contains("pushing")
    });
    std::thread::sleep(Duration::from_secs(1));
    let gone = Instant::now();
    drop(daemon);
    let ended = run.finish();
    ended
        .code(1)
        .printed(&format!(
            "lost the Docker daemon at unix://{} while pushing",
            socket.display()
        ))
        .printed("Nothing was applied")
        .printed("Not pushed: api");
    assert!(
        gone.elapsed() < Duration::from_secs(10),
        "no retries against a daemon that is gone: {ended}"
    );
    drop(registry);
    assert!(!bed.registry_has("api", &tag));
    assert!(fixture.live_images(&env, &bed).contains("/api:bootstrap"));
}
