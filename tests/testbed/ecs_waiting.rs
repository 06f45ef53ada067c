//! How far deploy waits for ECS's service deployments (`--wait-until auto`, the
//! default; `--wait-timeout`; what is left when a wait is cut) and `deploy continue`,
//! which answers the pauses a run left waiting. ECS's service-deployment calls are
//! answered by the test bed's stand-in (testbed/ecs_deployments.py) in front of moto.

use serde_json::{json, Value};

use crate::ecs_native::{deploy, deploy_through, fixture, last_run, rollout};
use crate::support::{bootstrap_applied, AwsEnv, EcsDeployments, Fixture, Testbed};

#[test]
fn auto_follows_a_blue_green_to_its_traffic_shift_checks_health_then_follows_the_bake() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // auth bakes after a blue/green shift; api rolls.
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {
            "auth": {
                "strategy": "BLUE_GREEN",
                "deploymentConfiguration": {"bakeTimeInMinutes": 1},
                "stages": [
                    {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
                    {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                    {"at": 5, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]},
            "api": {
                "strategy": "ROLLING",
                "stages": [
                    {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                    {"at": 2, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    // No --wait-until: auto.
    let out = deploy(&fixture, &env, &bed, &stand_in, "auth,api");
    out.success()
        .stderr_has("auth: traffic shifted on :")
        .stderr_has("--wait-until auto): health checks now, during the bake, then the deployment is followed to its end (ECS goes on with BLUE_GREEN at BAKE_TIME")
        .stderr_has("health checks passed during the bake; following auth until complete (--wait-until auto)")
        .stderr_has(", BLUE_GREEN deployment SUCCESSFUL)")
        .stderr_has(", ROLLING deployment SUCCESSFUL)");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    for service in ["auth", "api"] {
        let rollout = rollout(&report, service);
        assert_eq!(rollout["steady"], true, "{rollout}");
        assert_eq!(rollout["deployment"]["status"], "SUCCESSFUL", "{rollout}");
    }
    // api (ROLLING) was followed once, until complete: never "traffic shifted".
    assert!(
        !out.stderr.contains("api: traffic shifted"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("following api") && !out.stderr.contains("following auth, api"),
        "{}",
        out.stderr
    );
}

/// auth rolls LINEAR in 25 % steps of 3 minutes' bake, then bakes 10 minutes: it stays
/// in its first traffic shift for an hour, longer than any test waits.
fn an_hour_long_linear_auth() -> Value {
    json!({"services": {"auth": {
        "strategy": "LINEAR",
        "deploymentConfiguration": {"bakeTimeInMinutes": 10,
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 3}},
        "stages": [
            {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
            {"at": 3600, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}})
}

#[test]
fn a_wait_cut_by_wait_timeout_says_what_is_left() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let stand_in = EcsDeployments::start(&bed, &an_hour_long_linear_auth());
    let started = std::time::Instant::now();
    let out = deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth",
        &["--wait-timeout", "4s"],
    )
    .run();
    out.code(1)
        .stderr_has("1 service(s) did not settle")
        .stderr_has("stopped waiting for the LINEAR deployment of auth after 4s (--wait-timeout); ECS goes on with it, at PRODUCTION_TRAFFIC_SHIFT, bake ")
        .stderr_has("left in it, then 4 more linear step(s), 3m bake each, then the 10m bake");
    assert!(started.elapsed() < std::time::Duration::from_secs(300));
}

#[test]
fn a_wait_cut_by_ctrl_c_says_what_each_deployment_had_left() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let stand_in = EcsDeployments::start(&bed, &an_hour_long_linear_auth());
    let mut run = deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth",
        &["--wait-until", "complete"],
    )
    .spawn();
    run.wait_for_line("the deployment followed", |line| {
        line.contains("auth: LINEAR IN_PROGRESS at PRODUCTION_TRAFFIC_SHIFT")
    });
    run.interrupt();
    run.finish()
        .code(130)
        .stderr_has("stopped waiting for ECS, which goes on with:\n  auth: its LINEAR deployment is at PRODUCTION_TRAFFIC_SHIFT, bake ")
        .stderr_has("then 4 more linear step(s), 3m bake each, then the 10m bake")
        .stderr_has("interrupted while waiting for ECS: terraform was applied and ECS goes on rolling");
}

/// auth deployed once at the fixture's commit (straight to moto, no stand-in), then a
/// new commit: the tag a reconcile goes back to, which the registry holds (an undo
/// rolls only pushed images, and the bootstrap's tag never is).
fn deployed_once_then_changed(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> String {
    let first = fixture.short_sha();
    fixture
        .deploy()
        .aws(env, bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "auth",
            "--profile",
            "testbed",
            "-y",
        ])
        .run()
        .success();
    fixture.write("services/auth/src/change.ts", "export const change = 1;\n");
    fixture.commit_all("change auth");
    first
}

/// `deploy continue --var-file tfvars/sandbox.tfvars --profile testbed <args>`.
fn answer(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    stand_in: &EcsDeployments,
    args: &[&str],
) -> crate::support::Outcome {
    fixture
        .deploy()
        .aws(env, bed)
        .env("AWS_ENDPOINT_URL_ECS", &stand_in.endpoint)
        .args([
            "continue",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--profile",
            "testbed",
        ])
        .args(args)
        .run()
}

#[test]
fn deploy_continue_answers_both_pauses_of_the_last_run_once_each_and_records_it() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let paused = |hook: &str| {
        json!({
            "strategy": "BLUE_GREEN",
            "deploymentConfiguration": {"bakeTimeInMinutes": 30},
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "POST_PRODUCTION_TRAFFIC_SHIFT",
                 "pause": {"hookId": hook, "expiresInSecs": 3600}},
                {"at": 3600, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]})
    };
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": paused("hook-auth"), "api": paused("hook-api")}}),
    );
    deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth,api",
        &["--wait-until", "paused"],
    )
    .run()
    .success()
    .stderr_has("auth: PAUSED on :")
    .stderr_has("waits at hook hook-auth")
    .stderr_has("api: PAUSED on :")
    .stderr_has("waits at hook hook-api");
    // No terminal and no -y: nothing is answered (exit 2); a service the run did not
    // roll is refused (exit 2).
    answer(&fixture, &env, &bed, &stand_in, &[])
        .code(2)
        .stderr_has("no terminal to confirm on and -y not given");
    answer(
        &fixture,
        &env,
        &bed,
        &stand_in,
        &["--services", "web", "-y"],
    )
    .code(2)
    .stderr_has("--services web: the last run (")
    .stderr_has("did not roll it (it rolled: api, auth)");
    assert!(stand_in.calls("ContinueServiceDeployment").is_empty());

    let out = answer(&fixture, &env, &bed, &stand_in, &["-y", "--output", "json"]);
    out.success()
        .stderr_has(
            "  api: BLUE_GREEN at POST_PRODUCTION_TRAFFIC_SHIFT, hook hook-api, expires in ",
        )
        .stderr_has(
            "  auth: BLUE_GREEN at POST_PRODUCTION_TRAFFIC_SHIFT, hook hook-auth, expires in ",
        );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["action"], "CONTINUE");
    let mut hooks: Vec<&str> = report["answered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hook_id"].as_str().unwrap())
        .collect();
    hooks.sort();
    assert_eq!(hooks, ["hook-api", "hook-auth"], "{report}");
    // Exactly two ContinueServiceDeployment calls, one per hook, CONTINUE.
    let calls = stand_in.calls("ContinueServiceDeployment");
    assert_eq!(calls.len(), 2, "{calls:?}");
    let mut called: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c["hookId"].as_str().unwrap(), c["action"].as_str().unwrap()))
        .collect();
    called.sort();
    assert_eq!(
        called,
        [("hook-api", "CONTINUE"), ("hook-auth", "CONTINUE")]
    );
    // Recorded in the run's history, per service.
    let run = last_run(&fixture, &env, &bed);
    for (service, hook) in [("auth", "hook-auth"), ("api", "hook-api")] {
        let change = run["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == service)
            .unwrap();
        let answers = change["pause_answers"].as_array().unwrap();
        assert_eq!(answers.len(), 1, "{run}");
        assert!(
            answers[0]
                .as_str()
                .unwrap()
                .starts_with(&format!("CONTINUE at hook {hook} by ")),
            "{run}"
        );
    }
    // Nothing waits any more: nothing to do, exit 0, no further call.
    answer(&fixture, &env, &bed, &stand_in, &["-y"])
        .success()
        .stdout_has("waits for an answer: nothing to do");
    assert_eq!(stand_in.calls("ContinueServiceDeployment").len(), 2);
}

#[test]
fn deploy_continue_rollback_answers_one_service_follows_ecs_back_and_reconciles_terraform() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let first = deployed_once_then_changed(&fixture, &env, &bed);
    let before = crate::rollout::live(&env);
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 10,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 10}},
            "sourceTaskDefinition": before["auth"].0,
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP",
                 "pause": {"hookId": "hook-auth", "expiresInSecs": 600}},
                {"at": 3600, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    // auto stops at a pause: nobody answers it while deploy waits.
    let out = deploy(&fixture, &env, &bed, &stand_in, "auth");
    out.success()
        .stderr_has("auth: PAUSED on :")
        .stderr_has("--wait-until auto): CANARY SCALE_UP waits at hook hook-auth: answer with `deploy continue`");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rollout(&report, "auth")["followed"],
        "service deployment, until paused (--wait-until auto)"
    );
    let paused_run = last_run(&fixture, &env, &bed)["run_id"].clone();
    let out = answer(
        &fixture,
        &env,
        &bed,
        &stand_in,
        &["--services", "auth", "--rollback", "-y", "--output", "json"],
    );
    out.success()
        .stderr_has("  auth: CANARY at SCALE_UP, hook hook-auth, expires in ")
        .stderr_has("auth: rolled back by ECS")
        .stderr_has("ECS rolled back auth: re-applying the tags they ran before run ")
        .stderr_has(&format!("Reconciled: terraform re-applied auth → :{first}"));
    let calls = stand_in.calls("ContinueServiceDeployment");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["action"], "ROLLBACK");
    assert_eq!(calls[0]["hookId"], "hook-auth");
    // One JSON document: the answers, the deployment followed back, the undo run.
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "succeeded", "{report}");
    assert_eq!(report["action"], "ROLLBACK");
    assert_eq!(
        report["followed"][0]["native_rollback"]["status"], "ROLLBACK_SUCCESSFUL",
        "{report}"
    );
    assert_eq!(report["reconcile"]["outcome"], "succeeded", "{report}");
    assert_eq!(report["reconcile"]["plan"]["mode"], "undo", "{report}");
    // ECS put auth back; terraform re-applied its old tag, and nothing else moved.
    let after = crate::rollout::live(&env);
    assert_eq!(after["auth"].1, format!("{}/auth:{first}", bed.registry));
    for service in crate::support::SERVICES.iter().filter(|s| **s != "auth") {
        assert_eq!(
            after[*service], before[*service],
            "{service} must be untouched"
        );
    }
    let (code, plan) = crate::ecs_native::plan_exit_code(&bed, &fixture, &env, "auth", &first);
    assert_eq!(code, 0, "{plan}");
    // The reconcile is a run of its own, an undo of the paused run; the paused run's
    // record says what ECS did and what was reconciled.
    let undo = last_run(&fixture, &env, &bed);
    assert_eq!(undo["mode"], "undo", "{undo}");
    assert_eq!(undo["undo_of"], paused_run, "{undo}");
    let runs = crate::ecs_native::runs(&fixture, &env, &bed);
    let paused = runs
        .iter()
        .find(|r| r["run_id"] == paused_run)
        .expect("the paused run's record");
    let auth = &paused["services"][0];
    assert_eq!(auth["service"], "auth", "{paused}");
    assert!(
        auth["ecs_ended"]
            .as_str()
            .is_some_and(|e| e.starts_with("rolled back by ECS")),
        "{paused}"
    );
    assert_eq!(auth["reconciled"], first.as_str(), "{paused}");
    assert!(
        auth["pause_answers"][0]
            .as_str()
            .is_some_and(|a| a.starts_with("ROLLBACK at hook hook-auth by ")),
        "{paused}"
    );
}

#[test]
fn under_auto_a_health_check_failing_during_a_canary_bake_asks_ecs_to_roll_back() {
    let bed = Testbed::get();
    // The load balancer's stand-in serves nothing: auth's health check answers 404.
    let server = crate::rollout::HttpServer::serving(&bed, &[]);
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!(
            "{config}\n[ecs]\npoll_interval_secs = 1\n[health]\nbase_url = \"http://127.0.0.1:{}\"\ntimeout_secs = 2\n[health.prefixes]\nauth = \"/v1/auth\"\n",
            server.port
        ),
    );
    fixture.commit_all("health checks, ECS polled every second");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let before = crate::rollout::live(&env);
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 30,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0}},
            "sourceTaskDefinition": before["auth"].0,
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 1800, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    // No --wait-until (auto), no --rollback-on-failure.
    let mut run = deploy_through(&fixture, &env, &bed, &stand_in, "auth", &[]).spawn();
    // The old release (back once ECS rolled back) answers its health check.
    run.wait_for_line("the StopServiceDeployment", |line| {
        line.contains("asking ECS to roll it back")
    });
    server.serve("v1/auth/health");
    let out = run.finish();
    out.code(1)
        .stderr_has("auth: traffic shifted on :")
        .stderr_has("1 health check(s) failed")
        .stderr_has("Reconciled: terraform re-applied auth → :bootstrap");
    let stops = stand_in.calls("StopServiceDeployment");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["stopType"], "ROLLBACK");
}

#[test]
fn without_wait_timeout_the_wait_is_the_deployments_own_bakes_plus_the_margin() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    // A 3-second margin; the blue/green deployment has no bake of its own.
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[ecs]\npoll_interval_secs = 1\nwait_timeout_secs = 3\n"),
    );
    fixture.commit_all("poll ECS every second, a 3-second margin");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "BLUE_GREEN",
            "deploymentConfiguration": {"bakeTimeInMinutes": 0},
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                {"at": 3600, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    deploy(&fixture, &env, &bed, &stand_in, "auth")
        .code(1)
        .stderr_has("stopped waiting for the BLUE_GREEN deployment of auth after 3s (its bakes and steps plus ecs.wait_timeout_secs); ECS goes on with it, at SCALE_UP");
}

#[test]
fn an_ecs_rollback_after_continue_fails_continue_and_is_reconciled() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let first = deployed_once_then_changed(&fixture, &env, &bed);
    let before = crate::rollout::live(&env);
    // Answered CONTINUE, the canary goes on to its bake, where its alarm fires.
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 10,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 10}},
            "alarms": ["auth-5xx"],
            "sourceTaskDefinition": before["auth"].0,
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP",
                 "pause": {"hookId": "hook-auth", "expiresInSecs": 600}},
                {"at": 600, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 602, "status": "ROLLBACK_SUCCESSFUL", "lifecycleStage": "BAKE_TIME",
                 "rollback": "CloudWatch alarm auth-5xx is in ALARM", "triggeredAlarms": ["auth-5xx"]}]}}}),
    );
    deploy(&fixture, &env, &bed, &stand_in, "auth")
        .success()
        .stderr_has("auth: PAUSED on :");
    answer(&fixture, &env, &bed, &stand_in, &["-y"])
        .code(1)
        .stdout_has("answered 1 pause(s) of run ")
        .stdout_has("  auth: rolled back by ECS (alarm auth-5xx) (ROLLBACK_SUCCESSFUL)")
        .stderr_has("after the answers, 1 deployment(s) did not end as asked:\n  auth: ECS rolled back the CANARY deployment of auth during BAKE_TIME")
        .stderr_has(&format!("Reconciled: terraform re-applied auth → :{first} (what ECS rolled back to), so its state and the next apply agree with what runs. The roll failed"));
    assert_eq!(
        stand_in.calls("ContinueServiceDeployment")[0]["action"],
        "CONTINUE"
    );
    let (code, plan) = crate::ecs_native::plan_exit_code(&bed, &fixture, &env, "auth", &first);
    assert_eq!(code, 0, "{plan}");
    let paused = &crate::ecs_native::runs(&fixture, &env, &bed)[1];
    assert_eq!(
        paused["services"][0]["ecs_ended"], "rolled back by ECS (alarm auth-5xx)",
        "{paused}"
    );
    assert_eq!(
        paused["services"][0]["reconciled"],
        first.as_str(),
        "{paused}"
    );
}
