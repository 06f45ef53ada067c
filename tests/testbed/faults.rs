//! How runs fail: the Docker daemon unreachable, and a signal (Ctrl-C's SIGINT, CI's
//! SIGTERM, a lost terminal's SIGHUP) in the middle of a build or of terraform's apply.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    bootstrap_applied, bootstrap_aws, eventually, processes_with, FaultProxy, Fixture, Sig,
    Testbed, DEPLOY_API, DEPLOY_SERVICES,
};

#[test]
fn an_unreachable_docker_daemon_is_one_clear_line_and_nothing_is_touched() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--skip-tf", "--skip-spas", "--profile", "testbed", "-y"])
        .run();
    out.code(1)
        .stderr_has("cannot reach the Docker daemon at unix:///nonexistent/docker.sock")
        .stderr_has("start Docker");
    assert!(!out.stdout.contains("Summary"), "{}", out.stdout);
}

#[test]
fn ctrl_c_during_a_build_exits_130_releases_the_lock_and_rolls_nothing() {
    a_signal_during_a_build(Sig::Int);
}

#[test]
fn sigterm_during_a_build_exits_143_releases_the_lock_and_rolls_nothing() {
    a_signal_during_a_build(Sig::Term);
}

#[test]
fn sighup_during_a_build_exits_129_releases_the_lock_and_rolls_nothing() {
    a_signal_during_a_build(Sig::Hup);
}

fn a_signal_during_a_build(signal: Sig) {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let mut run = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).spawn();
    run.wait_for_the_slow_build(&marker);
    run.stop_before_the_roll(signal);
    // The daemon cancelled the build: its step is not left running.
    assert!(
        eventually(Duration::from_secs(15), || processes_with(&marker)
            .is_empty()),
        "the build step still runs after the interrupt: {:?}",
        processes_with(&marker)
    );

    // The lock is gone, the run's record closed, and ECS still runs the bootstrap image.
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
    fixture.assert_interrupted_cleanly(&env, &bed);
}

#[test]
fn sigint_during_terraform_apply_lets_terraform_stop_cleanly_and_exits_130() {
    a_signal_during_terraform_apply(Sig::Int);
}

/// CI cancelling the job: SIGTERM reaches deploy alone, which passes terraform one SIGINT
/// and waits for it, instead of dying and leaving it applying with the state lock held.
#[test]
fn sigterm_during_terraform_apply_lets_terraform_stop_cleanly_and_exits_143() {
    a_signal_during_terraform_apply(Sig::Term);
}

fn a_signal_during_terraform_apply(signal: Sig) {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        // Every task definition registration takes 5 s: plenty of time to interrupt.
        .env("DEPLOY_TESTBED_SLOW_SECONDS", "5")
        .args(DEPLOY_SERVICES)
        .spawn();
    run.wait_for_line("the apply", |line| {
        line.contains("terraform_data.task_definition") && line.contains("Creating")
    });
    run.send(signal);
    let ended = run.finish();
    ended
        .code(signal.exit_code())
        .printed(&format!(
            "{}; waiting for terraform to stop cleanly",
            signal.says()
        ))
        .printed(&format!("{} during terraform apply", signal.says()))
        .printed("deploy status");
    assert!(
        ended.rest().contains("Interrupt received") || ended.rest().contains("Stopping operation"),
        "terraform saw one SIGINT: {ended}"
    );

    // terraform's state is intact and unlocked, terraform gone, the lock released.
    fixture.assert_interrupted_cleanly(&env, &bed);
    let mut output = Command::new(&bed.terraform);
    output
        .args(["-chdir=infra/terraform/aws", "output", "-json"])
        .current_dir(fixture.root());
    env.configure(&mut output);
    assert!(output.output().unwrap().status.success());
}

#[test]
fn registry_errors_during_push_are_retried_and_a_persistent_one_fails_clearly() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let args = crate::support::PUSH_API;

    // Two 500s, then a dropped connection: retried with backoff, then pushed.
    let flaky = FaultProxy::http(
        &bed,
        &bed.registry,
        &["--fail-manifest-puts", "2", "--drop-manifest-puts", "1"],
    );
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_REGISTRY", &flaky.address)
        .args(args)
        .run()
        .success()
        .stderr_has("push failed")
        .stderr_has("retry")
        .stdout_has("built, pushed");
    drop(flaky);

    // A registry that keeps failing: a clear failure naming the image, nothing rolled.
    fixture.write("services/api/src/again.ts", "export {};\n");
    let tag = fixture.commit_all("another commit");
    let broken = FaultProxy::http(&bed, &bed.registry, &["--fail-manifest-puts", "1000"]);
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_REGISTRY", &broken.address)
        .args(args)
        .run()
        .code(1)
        .stderr_has(&format!(
            "cannot push {}/api:{tag} after 5 attempt(s)",
            broken.address
        ))
        .stderr_has("500")
        .stderr_has("Not pushed: api")
        .stderr_has("Re-run the same command");
}
