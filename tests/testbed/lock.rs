//! One deploy at a time per environment: a second run fails at once naming the
//! holder; `deploy unlock` breaks a stale lock; a finished run leaves no lock behind.

use std::time::{Duration, Instant};

use crate::support::{
    bootstrap_applied, AwsEnv, Fixture, Testbed, DEPLOY_SERVICES, UNLOCK_SANDBOX,
};

fn lock_exists(env: &AwsEnv) -> bool {
    let bucket = env.summary["deploy_lock_bucket"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s3 = deploy::aws::s3(&env.sdk().await);
            s3.head_object()
                .bucket(&bucket)
                .key("deploy-lock/sandbox.json")
                .send()
                .await
                .is_ok()
        })
}

/// The user this test runs as, by `id -un` (root on our machines and in CI containers).
fn whoami() -> String {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_second_run_fails_naming_the_holder_and_unlock_breaks_a_stale_lock() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let args = DEPLOY_SERVICES;

    // A first run, in the background.
    let first = fixture.deploy().aws(&env, &bed).args(args).spawn();
    let started = Instant::now();
    while !lock_exists(&env) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A second run while the first holds the lock: fails at once, building nothing.
    let second = fixture.deploy().aws(&env, &bed).args(args).run();
    second
        .code(1)
        .stderr_has("another deploy to sandbox is running")
        .stderr_has("(pid ")
        .stderr_has("deploy unlock --var-file tfvars/sandbox.tfvars");
    assert!(!second.stderr.contains("stale"), "{}", second.stderr);
    assert!(
        !second.stdout.contains("Summary"),
        "nothing was built: {}",
        second.stdout
    );

    first.finish().code(0);
    assert!(!lock_exists(&env), "a finished run releases the lock");

    // A stale lock (its run is gone) blocks, until `deploy unlock` breaks it. That run has
    // no $USER, as root in a container or CI: the holder is still named, from passwd.
    let stale = fixture
        .deploy()
        .aws(&env, &bed)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(args)
        .spawn();
    let started = Instant::now();
    while !lock_exists(&env) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = stale.child.id();
    stale.kill(); // SIGKILL: no chance to release
    assert!(lock_exists(&env));
    // Its holder ran here and is gone: the message says the lock is stale.
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(args)
        .run()
        .code(1)
        .stderr_has("the deploy lock of sandbox is stale")
        .stderr_has(&format!("it was taken by {}@", whoami()))
        .stderr_has(&format!("(pid {pid})"))
        .stderr_has("that process is no longer running on this machine")
        .stderr_has("deploy unlock --var-file tfvars/sandbox.tfvars");
    fixture.unlock(&env, &bed).success().stdout_has(&format!(
        "broke the deploy lock of sandbox, held by {}@",
        whoami()
    ));
    // For scripts: the same as JSON (nothing left to break now).
    let json = fixture
        .deploy()
        .aws(&env, &bed)
        .args(UNLOCK_SANDBOX)
        .args(["--output", "json"])
        .run();
    json.success();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["environment"], "sandbox");
    assert_eq!(report["broken"], false);
    assert!(report["holder"].is_null());
    fixture.deploy().aws(&env, &bed).args(args).run().success();
}
