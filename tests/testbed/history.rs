//! The ledger (issue 17): a record per run in the environment's private bucket,
//! `deploy history`, `deploy undo`, and the automatic rollback on a failed verify, all
//! checked against what ECS runs afterwards.

use std::process::Command;

use crate::rollout::{assert_only_rolled, live};
use crate::support::{
    bootstrap_applied, AwsEnv, Fixture, Outcome, Testbed, DEPLOY_API, DEPLOY_SANDBOX,
    DEPLOY_SERVICES, SERVICES,
};

/// `deploy history` for the sandbox environment, with `extra` arguments.
fn history(fixture: &Fixture, env: &AwsEnv, bed: &Testbed, extra: &[&str]) -> Outcome {
    fixture
        .deploy()
        .aws(env, bed)
        .args([
            "history",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--profile",
            "testbed",
        ])
        .args(extra)
        .run()
}

/// `deploy history --output json`: the runs, newest first.
fn history_runs(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let mut args = vec!["--output", "json"];
    args.extend_from_slice(extra);
    let out = history(fixture, env, bed, &args);
    out.success();
    let view: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    view["runs"].as_array().unwrap().clone()
}

/// A record's services as (service, previous tag, new tag, rolled).
fn changes(run: &serde_json::Value) -> Vec<(String, String, String, bool)> {
    run["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["previous"]["tag"].as_str().unwrap_or("-").to_owned(),
                s["new"]["tag"].as_str().unwrap().to_owned(),
                s["rolled"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The tag of `service`'s container image in ECS.
fn live_tag(env: &AwsEnv, service: &str) -> String {
    live(env)[service].1.rsplit(':').next().unwrap().to_owned()
}

#[test]
fn history_records_full_changed_and_failed_runs_as_ecs_saw_them() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // Nothing yet: said so, not an error.
    history(&fixture, &env, &bed, &[])
        .success()
        .stdout_has("no recorded run of sandbox");

    // 1. A full deploy, SPAs included.
    let first = fixture.short_sha();
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SANDBOX)
        .run()
        .success();
    // 2. api changes: --changed rolls it alone.
    fixture.write("services/api/src/later.ts", "export const later = 2;\n");
    let second = fixture.commit_all("api: later");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--changed"])
        .args(DEPLOY_SERVICES)
        .run()
        .success();
    // 3. A failed apply of auth (nothing rolled).
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_TESTBED_FAIL_SERVICES", "auth")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "auth",
            "--skip-spas",
            "--profile",
            "testbed",
            "-y",
        ])
        .run()
        .code(1);

    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs.len(), 3, "{runs:#?}");
    let (failed, changed, full) = (&runs[0], &runs[1], &runs[2]);
    // Newest first.
    assert!(failed["started"].as_u64() >= changed["started"].as_u64());
    assert!(changed["started"].as_u64() >= full["started"].as_u64());

    assert_eq!(full["mode"], "full");
    assert_eq!(full["state"], "succeeded");
    assert_eq!(full["outcome"], "succeeded");
    assert_eq!(full["image_tag"], first.as_str());
    assert!(full["who"]["caller_arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:"));
    let expected: Vec<_> = SERVICES
        .iter()
        .map(|s| (s.to_string(), "bootstrap".to_owned(), first.clone(), true))
        .collect();
    assert_eq!(changes(full), expected);
    // The registry's digest of the new image, and the SPAs' SHAs.
    assert!(full["services"][0]["new"]["digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    let spas = full["spas"].as_array().unwrap();
    assert_eq!(spas.len(), 2, "both SPAs are recorded: {full}");
    for spa in spas {
        assert!(spa["previous_sha"].is_null(), "{spa}");
        assert!(
            spa["new_sha"].as_str().unwrap().starts_with(&first),
            "{spa}"
        );
    }
    let stages: Vec<&str> = full["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["build and push", "spas", "terraform apply", "verify"]
    );
    assert!(full["terraform"]["services"].as_array().unwrap().len() == 9);

    assert_eq!(changed["mode"], "changed");
    assert_eq!(changed["state"], "succeeded");
    assert_eq!(
        changes(changed),
        [("api".to_owned(), first.clone(), second.clone(), true)]
    );
    assert!(changed["services"][0]["previous"]["digest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));

    assert_eq!(failed["mode"], "services");
    assert_eq!(failed["state"], "failed");
    assert_eq!(
        changes(failed),
        [("auth".to_owned(), first.clone(), second.clone(), false)]
    );
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("terraform apply failed"));

    // The records match ECS.
    assert_eq!(live_tag(&env, "api"), second);
    assert_eq!(live_tag(&env, "auth"), first);
    assert_eq!(live_tag(&env, "billing"), first);

    // The table, and the lineage of one service.
    history(&fixture, &env, &bed, &[])
        .success()
        .stdout_has("SERVICES (OLD → NEW)")
        .stdout_has(&format!("api {first} → {second}"))
        .stdout_has(&format!("auth {first} → {second}"))
        .stdout_has("failed")
        .stdout_has(&format!("billing bootstrap → {first}"));
    let lineage = history_runs(&fixture, &env, &bed, &["--services", "api"]);
    let modes: Vec<&str> = lineage
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["changed", "full"]);
    // `--service`, the old name, is still read.
    history(&fixture, &env, &bed, &["--service", "api"])
        .success()
        .stdout_has(&format!("{first} → {second}"))
        .stdout_lacks("failed");
    assert_eq!(
        history_runs(&fixture, &env, &bed, &["--limit", "1"]).len(),
        1
    );
    history(&fixture, &env, &bed, &["--services", "nope"])
        .usage_error()
        .stderr_has("--services: unknown service nope; the services are: api, auth");
}

#[test]
fn undo_restores_exactly_what_the_last_successful_run_changed() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let undo = || {
        fixture.deploy().aws(&env, &bed).args([
            "undo",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--profile",
            "testbed",
            "-y",
        ])
    };
    undo()
        .run()
        .code(1)
        .stderr_has("nothing to undo in sandbox");

    let first = fixture.short_sha();
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SERVICES)
        .run()
        .success();
    // Undoing the full deploy would restore :bootstrap, which was never pushed.
    assert!(!bed.registry_has("api", "bootstrap"));
    undo()
        .run()
        .code(1)
        .stderr_has("9 of the images it would restore are not in the registry")
        .stderr_has(&format!("api: no {}/api:bootstrap", bed.registry))
        .stderr_has("Nothing was touched")
        .stdout_lacks("Summary:");
    assert_eq!(live_tag(&env, "api"), first);

    // api and auth change; --changed rolls them.
    fixture.write("services/api/src/later.ts", "export const later = 2;\n");
    fixture.write("services/auth/src/later.ts", "export const later = 2;\n");
    let second = fixture.commit_all("api, auth: later");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--changed"])
        .args(DEPLOY_SERVICES)
        .run()
        .success();
    let before = live(&env);

    // The dry run says what undo would do, touching nothing.
    let out = undo().args(["--dry-run", "--output", "json"]).run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["mode"], "undo");
    let deploying: Vec<(&str, &str)> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "DEPLOY")
        .map(|s| (s["name"].as_str().unwrap(), s["image"].as_str().unwrap()))
        .collect();
    assert_eq!(
        deploying,
        [
            ("api", format!("api:{first}").as_str()),
            ("auth", format!("auth:{first}").as_str())
        ]
    );
    assert_eq!(live(&env), before);
    // `--services`: only those of the undo set; SPAs left; one it does not restore is
    // named with what it does restore.
    let out = undo()
        .args(["--services", "auth", "--dry-run", "--output", "json"])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let deploying: Vec<&str> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "DEPLOY")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(deploying, ["auth"]);
    let api = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .unwrap();
    assert_eq!(api["action"], "SKIP");
    assert_eq!(api["reason"], "not selected with --services");
    undo()
        .args(["--services", "auth,billing", "--dry-run"])
        .run()
        .usage_error()
        .stderr_has("cannot restore billing (not changed by that run); it restores api, auth")
        .stderr_has("Nothing was touched");
    assert_eq!(live(&env), before);

    let out = undo().run();
    out.success()
        .stdout_has("Summary: undo of run")
        .stdout_has("already in registry")
        .stdout_lacks("built, pushed")
        .stdout_has(&format!("yes (:{first})"));
    // Exactly the changed services, each on its own previous tag, on new task
    // definitions; the others untouched.
    assert_only_rolled(
        &before,
        &live(&env),
        &["api", "auth"],
        &bed.registry,
        &first,
    );

    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs[0]["mode"], "undo");
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["undo_of"], runs[1]["run_id"]);
    assert_eq!(
        changes(&runs[0]),
        [
            ("api".to_owned(), second.clone(), first.clone(), true),
            ("auth".to_owned(), second.clone(), first.clone(), true),
        ]
    );
}

#[test]
fn a_service_that_settles_on_another_tag_is_rolled_back_with_the_others() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let before = live(&env);
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        // auth goes back to its previous revision, as the circuit breaker would.
        .env("DEPLOY_TESTBED_ROLLBACK_SERVICES", "auth")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "api,auth",
            "--rollback-on-failure",
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.code(1)
        .stderr_has(&format!("instead of :{tag}"))
        .stderr_has("1 service(s) did not settle")
        .stderr_has("Automatic rollback: restored api → :bootstrap, auth → :bootstrap; they settled on those tags")
        .stdout_has("Automatic rollback: restored")
        .stdout_has("yes (:bootstrap)");
    // Both run the tag they ran before: api on the task definition the restore
    // registered (auth's roll goes back to its previous revision again).
    let after = live(&env);
    for service in ["api", "auth"] {
        assert_eq!(
            after[service].1,
            format!("{}/{service}:bootstrap", bed.registry)
        );
    }
    assert_ne!(after["api"].0, before["api"].0);
    for service in SERVICES.iter().filter(|s| !["api", "auth"].contains(s)) {
        assert_eq!(after[*service], before[*service], "{service}");
    }
    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(runs[0]["outcome"], "failed, restored");
    assert_eq!(runs[0]["restore"]["settled"], true);
    fixture
        .unlock(&env, &bed)
        .success()
        .stdout_has("no deploy lock held for sandbox");
}

/// A stand-in for the load balancer: `GET /api/health` answers 200 only while ECS runs
/// api's `:healthy_tag` (the old release is healthy, the new one is not).
struct TagAwareHealth {
    child: std::process::Child,
    port: u16,
    _script: tempfile::NamedTempFile,
}

impl TagAwareHealth {
    fn start(bed: &Testbed, env: &AwsEnv, healthy_tag: &str) -> Self {
        let script = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            script.path(),
            r#"
import http.server, sys, boto3
cluster, healthy = sys.argv[2], sys.argv[3]
ecs = boto3.session.Session().client("ecs", region_name="us-east-1")
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        service = ecs.describe_services(cluster=cluster, services=["api"])["services"][0]
        td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
        image = [c["image"] for c in td["taskDefinition"]["containerDefinitions"] if c["name"] == "api"][0]
        ok = self.path == "/api/health" and image.endswith(":" + healthy)
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"ok\n" if ok else b"unhealthy\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"#,
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&bed.python);
        command
            .arg(script.path())
            .arg(port.to_string())
            .arg(env.summary["ecs_cluster"].as_str().unwrap())
            .arg(healthy_tag)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        env.configure(&mut command);
        let child = command.spawn().unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self {
            child,
            port,
            _script: script,
        }
    }
}

impl Drop for TagAwareHealth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failed_health_check_rolls_back_when_deploy_toml_asks_for_it() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let server = TagAwareHealth::start(&bed, &env, "bootstrap");
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!(
            "{config}\n[verify]\nrollback_on_failure = true\n[health]\nbase_url = \"http://127.0.0.1:{}\"\ntimeout_secs = 2\n[health.prefixes]\napi = \"/api\"\n",
            server.port
        ),
    );
    let tag = fixture.commit_all("health checks, automatic rollback");
    let before = live(&env);
    let out = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).run();
    out.code(1)
        .stderr_has(&format!(
            "GET http://127.0.0.1:{}/api/health answered 503",
            server.port
        ))
        .stderr_has(&format!("The services run :{tag} in ECS"))
        .stderr_has("Automatic rollback: restored api → :bootstrap; they settled on those tags and answered their health checks");
    let after = live(&env);
    assert_eq!(after["api"].1, format!("{}/api:bootstrap", bed.registry));
    assert_ne!(after["api"].0, before["api"].0);
    assert_eq!(after["auth"], before["auth"]);
    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs[0]["outcome"], "failed, restored");
    assert_eq!(
        runs[0]["restore"]["tags"],
        serde_json::json!([["api", "bootstrap"]])
    );
}

#[test]
fn a_failed_restore_stops_and_says_so() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[ecs]\nwait_timeout_secs = 3\npoll_interval_secs = 1\n"),
    );
    fixture.commit_all("short ECS wait");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // files never settles, neither on the new tag nor on the old one.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_TESTBED_STUCK_SERVICES", "files")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "files",
            "--rollback-on-failure",
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.code(1)
        .stderr_has("did not settle within 3s")
        .stderr_has("Automatic rollback FAILED (not retried): restoring files → :bootstrap was applied but did not settle")
        .stdout_has("Automatic rollback: FAILED");
    // Once: the roll, then one restore, never a loop.
    assert_eq!(
        out.stderr.matches("ecs_roll: service files in").count(),
        2,
        "{out}"
    );
    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs[0]["outcome"], "failed, restore failed");
}

#[test]
fn a_run_killed_mid_way_shows_as_interrupted_once_its_lock_is_gone() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let mut run = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).spawn();
    run.wait_for_the_slow_build(&marker);
    run.kill();
    let runs = history_runs(&fixture, &env, &bed, &[]);
    assert_eq!(runs[0]["state"], "running");
    assert_eq!(runs[0]["outcome"], "running", "the lock is still held");
    fixture.unlock(&env, &bed).success();
    history(&fixture, &env, &bed, &[])
        .success()
        .stdout_has("interrupted?");
}
