//! One deploy at a time per environment: a second run fails at once naming the
//! holder; `deploy unlock` breaks a stale lock; a finished run leaves no lock behind;
//! `--lock-wait` waits for the holder, gives up naming it, and leaves on Ctrl-C (or on
//! CI's SIGTERM).

use std::time::{Duration, Instant};

use crate::support::{
    bootstrap_applied, runtime, AwsEnv, Fixture, Sig, Testbed, DEPLOY_API, DEPLOY_SERVICES,
    UNLOCK_SANDBOX,
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
    // Its holder ran here and is gone: the message says the lock is stale; as JSON, a
    // run that failed before the lock, having done nothing.
    let refused = fixture
        .deploy()
        .aws(&env, &bed)
        .args(args)
        .args(["--output", "json"])
        .run();
    let json: serde_json::Value = serde_json::from_str(&refused.stdout).unwrap();
    assert_eq!(json["outcome"], "failed", "{json}");
    assert_eq!(json["error"]["step"], "lock");
    assert_eq!(json["error"]["exit_code"], 1);
    assert_eq!(json["done"]["rolled"], false);
    refused
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

/// The lock object of the sandbox environment: its JSON body, if it exists.
fn lock_body(env: &AwsEnv) -> Option<serde_json::Value> {
    let bucket = env.summary["deploy_lock_bucket"]
        .as_str()
        .unwrap()
        .to_owned();
    runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let object = s3
            .get_object()
            .bucket(&bucket)
            .key("deploy-lock/sandbox.json")
            .send()
            .await
            .ok()?;
        let bytes = object.body.collect().await.unwrap().into_bytes();
        Some(serde_json::from_slice(&bytes).unwrap())
    })
}

/// Writes a lock held by a run on another machine (its process cannot be checked
/// from here, so it is never called stale), or deletes it (`None`).
fn set_lock(env: &AwsEnv, holder: Option<serde_json::Value>) {
    let bucket = env.summary["deploy_lock_bucket"]
        .as_str()
        .unwrap()
        .to_owned();
    runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        match holder {
            Some(holder) => {
                s3.put_object()
                    .bucket(&bucket)
                    .key("deploy-lock/sandbox.json")
                    .body(holder.to_string().into_bytes().into())
                    .send()
                    .await
                    .unwrap();
            }
            None => {
                s3.delete_object()
                    .bucket(&bucket)
                    .key("deploy-lock/sandbox.json")
                    .send()
                    .await
                    .unwrap();
            }
        }
    });
}

/// The holder names this machine as the kernel does (uname), not as `/etc/hostname`
/// says (there is none on macOS), with the run's own pid and user; read from the real
/// lock object while a run holds it.
#[test]
fn the_lock_names_the_kernels_host_name_the_user_and_the_pid() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let host = format!("uts-{}", &crate::support::unique_marker("h")[2..]);
    let etc = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert_ne!(etc.trim(), host);
    let mut run = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .with_hostname(&host)
        .spawn();
    run.wait_for_the_slow_build(&marker);
    let holder = lock_body(&env).expect("the run holds the lock");
    assert_eq!(holder["host"], host.as_str(), "{holder:#}");
    assert_eq!(holder["pid"], run.child.id(), "{holder:#}");
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let user = String::from_utf8(id.stdout).unwrap();
    assert_eq!(holder["user"], user.trim(), "{holder:#}");
    run.stop_before_the_roll(Sig::Term);
    fixture.assert_interrupted_cleanly(&env, &bed);
}

fn other_machine_holder() -> serde_json::Value {
    serde_json::json!({
        "user": "ci",
        "host": "runner-7",
        "pid": 4242,
        "since": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "git_sha": "0123456789abcdef0123456789abcdef01234567",
        "command": "deploy --var-file tfvars/sandbox.tfvars -y",
        "token": "planted-by-the-test",
        "pid_space": "another-machine/pid:[1]",
    })
}

/// `--lock-wait` queues behind a real run: it waits showing the holder, takes the
/// lock once that run released it, plans its roll again (the holder's apply changed
/// terraform's state, which makes the plan saved before stale) and deploys.
#[test]
fn lock_wait_takes_the_lock_once_the_holder_ends() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    // The holder builds for a while, so that the waiting run's preflight (its own
    // terraform plan) is done long before the holder's apply.
    let dockerfile =
        std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("{dockerfile}\nRUN sleep 45\n"),
    );
    fixture.commit_all("a build that takes a while");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let first = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).spawn();
    let started = Instant::now();
    while !lock_exists(&env) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut second = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .args(["--lock-wait", "5m"])
        .spawn();
    second.wait_for_line("the wait for the lock", |line| {
        line.contains("waiting for the deploy lock of sandbox (up to ")
    });
    assert!(
        second.seen.contains(&format!("(pid {})", first.child.id())),
        "the waiting run names the holder: {}",
        second.seen
    );
    first.finish().success();
    let second = second.finish();
    second
        .success()
        .stderr_has("-lock-timeout=300s")
        .printed("took the deploy lock of sandbox")
        .printed("planning the roll again");
    assert!(
        lock_body(&env).is_none(),
        "a finished run releases the lock"
    );
}

/// `--lock-wait` gives up when its time is out, naming the holder (exit 1, as a held
/// lock without it); Ctrl-C while waiting exits 130 and takes nothing: the holder's
/// lock is untouched.
#[test]
fn lock_wait_times_out_naming_the_holder_and_ctrl_c_leaves_the_lock_alone() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let holder = other_machine_holder();
    set_lock(&env, Some(holder.clone()));

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .args(["--lock-wait", "3s"])
        .run();
    out.code(1)
        .stderr_has("waiting for the deploy lock of sandbox (up to ")
        .stderr_has("gave up waiting for the deploy lock of sandbox after 3s (--lock-wait)")
        .stderr_has("another deploy to sandbox is running: ci@runner-7 (pid 4242)")
        .stderr_has("deploy unlock --var-file tfvars/sandbox.tfvars")
        .stdout_lacks("Summary");
    assert!(
        !bed.registry_has("api", &fixture.short_sha()),
        "nothing was built"
    );
    assert_eq!(lock_body(&env), Some(holder.clone()));
    a_signal_while_waiting_for_the_lock(&bed, &fixture, &env, Sig::Int);
}

/// CI cancelling a job that waits for the lock: as Ctrl-C, exit 143.
#[test]
fn sigterm_while_waiting_for_the_lock_exits_143_and_leaves_the_lock_alone() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    set_lock(&env, Some(other_machine_holder()));
    a_signal_while_waiting_for_the_lock(&bed, &fixture, &env, Sig::Term);
}

/// `signal` while waiting for another machine's lock (held in `env`): the run ends
/// promptly with the signal's code, holding nothing, the holder's lock untouched.
fn a_signal_while_waiting_for_the_lock(
    bed: &Testbed,
    fixture: &Fixture,
    env: &AwsEnv,
    signal: Sig,
) {
    let holder = lock_body(env).expect("another machine holds the lock");
    let mut waiting = fixture
        .deploy()
        .aws(env, bed)
        .args(DEPLOY_API)
        .args(["--lock-wait", "10m"])
        .spawn();
    waiting.wait_for_line("the wait for the lock", |line| {
        line.contains("waiting for the deploy lock of sandbox (up to ")
            && line.contains("held by ci@runner-7 (pid 4242)")
    });
    let interrupted = Instant::now();
    waiting.send(signal);
    let ended = waiting.finish();
    ended
        .code(signal.exit_code())
        .printed(&format!(
            "{} while waiting for the deploy lock",
            signal.says()
        ))
        .printed("this run holds no lock");
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "stopped promptly: {ended}"
    );
    assert_eq!(
        lock_body(env),
        Some(holder),
        "the holder's lock is untouched"
    );
    set_lock(env, None);
    fixture.assert_nothing_rolled_and_no_lock_left(env, bed);
}

/// Without `-y`, the operator typed `y` for the review made before the wait. When the
/// run ahead changed the environment meanwhile (here: rolled api), the plan made after
/// the wait is not the one confirmed: it is shown, and the run stops before building.
#[test]
fn a_confirmed_plan_that_changed_while_waiting_for_the_lock_stops_the_run() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let dockerfile =
        std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("{dockerfile}\nRUN sleep 45\n"),
    );
    fixture.commit_all("a build that takes a while");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let first = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).spawn();
    let started = Instant::now();
    while !lock_exists(&env) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The operator, at a terminal, confirms the review and then waits for the lock.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/pty_run.py");
    let mut command = std::process::Command::new(&bed.python);
    command
        .arg(&script)
        .args([
            "--timeout",
            "300",
            "--expect",
            "Type y to build and push",
            "--send",
            "y\r",
        ])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_deploy"))
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "api",
            "--skip-spas",
            "--profile",
            "testbed",
            "--lock-wait",
            "5m",
        ])
        .current_dir(fixture.root())
        .env("DEPLOY_REGISTRY", &bed.registry)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    env.configure(&mut command);
    let operator = std::thread::spawn(move || command.output().unwrap());
    first.finish().success();
    let output = operator.join().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{screen}");
    for said in [
        "waiting for the deploy lock of sandbox (up to ",
        "planning the roll again",
        "the roll's terraform plan changed while this run waited for the deploy lock",
        "nothing was built, pushed or applied",
    ] {
        assert!(screen.contains(said), "{said:?} in:\n{screen}");
    }
    assert!(
        lock_body(&env).is_none(),
        "the stopped run released the lock"
    );
}

/// A second run plans its roll (preflight) before it takes the deploy lock, so it can
/// meet terraform's state lock while the run ahead applies. When another deploy
/// holds the deploy lock, that is the run applying: the second run fails naming it,
/// as the deploy lock would. With no deploy holding the lock, terraform's own message
/// stands (a colleague's terraform run).
#[test]
fn a_plan_refused_by_the_state_lock_names_the_deploy_that_holds_the_lock() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // Terraform's local backend locks the state file with fcntl: hold that lock, as a
    // running `terraform apply` does.
    let state = fixture.path("infra/terraform/aws/terraform.tfstate.d/sandbox/terraform.tfstate");
    assert!(state.exists(), "{}", state.display());
    let mut holder = std::process::Command::new(&bed.python)
        .args([
            "-c",
            "import fcntl, sys, time\nf = open(sys.argv[1], 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(300)\n",
        ])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");

    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .run()
        .code(1)
        .stderr_has("another terraform run holds the state lock")
        .stderr_lacks("another deploy to sandbox is running");

    set_lock(&env, Some(other_machine_holder()));
    let out = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).run();
    out.code(1)
        .stderr_has("deploy unlock --var-file tfvars/sandbox.tfvars");
    // terraform's own error lines are shown above; deploy's message is the holder.
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(
        error.starts_with("error: another deploy to sandbox is running: ci@runner-7 (pid 4242)")
            && !error.contains("state lock"),
        "{out}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    set_lock(&env, None);
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}
