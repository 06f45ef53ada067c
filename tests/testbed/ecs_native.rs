//! ECS's own service deployments (canary, blue/green, linear, rolling), answered by the
//! test bed's stand-in (testbed/ecs_deployments.py) in front of moto, which has none:
//! each rolled service is followed through the deployment its roll caused.

use serde_json::{json, Value};

use crate::support::{bootstrap_applied, AwsEnv, EcsDeployments, Fixture, Testbed, SERVICES};

/// The fixture with a 1-second ECS poll, so that a scenario's stages are seen.
pub(crate) fn fixture() -> Fixture {
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[ecs]\npoll_interval_secs = 1\n"),
    );
    fixture.commit_all("poll ECS every second");
    fixture
}

/// `deploy --services <services> -y --output json` with ECS's calls going through the
/// stand-in.
pub(crate) fn deploy(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    stand_in: &EcsDeployments,
    services: &str,
) -> crate::support::Outcome {
    deploy_through(fixture, env, bed, stand_in, services, &["--output", "json"]).run()
}

/// `deploy --services <services> -y <extra>` of the sandbox without its SPAs, with ECS's
/// calls going through the stand-in: to run or to spawn.
pub(crate) fn deploy_through(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    stand_in: &EcsDeployments,
    services: &str,
    extra: &[&str],
) -> crate::support::Deploy {
    fixture
        .deploy()
        .aws(env, bed)
        .env("AWS_ENDPOINT_URL_ECS", &stand_in.endpoint)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            services,
            "--profile",
            "testbed",
            "-y",
        ])
        .args(extra)
}

/// The newest run recorded in the sandbox's history.
pub(crate) fn last_run(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> Value {
    runs(fixture, env, bed)[0].clone()
}

/// `deploy history --output json`'s runs, newest first.
pub(crate) fn runs(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> Vec<Value> {
    let out = fixture
        .deploy()
        .aws(env, bed)
        .args([
            "history",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--profile",
            "testbed",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let view: Value = serde_json::from_str(&out.stdout).unwrap();
    view["runs"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn rollout<'a>(report: &'a Value, service: &str) -> &'a Value {
    report["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == service)
        .unwrap_or_else(|| panic!("no rollout of {service}: {report}"))
}

#[test]
fn the_stand_in_refuses_a_scenario_the_real_api_would_never_answer() {
    let bed = Testbed::get();
    // ROLLED_BACK is not a ServiceDeploymentStatus in botocore's model of ECS.
    let refused = EcsDeployments::try_start(
        &bed,
        &json!({"services": {"auth": {"stages": [
            {"at": 0, "status": "ROLLED_BACK", "lifecycleStage": "BAKE_TIME"}]}}}),
    )
    .err()
    .expect("the stand-in refuses the scenario");
    assert!(
        refused.contains("'ROLLED_BACK' is not one of ServiceDeploymentStatus"),
        "{refused}"
    );
}

#[test]
fn a_canary_is_followed_through_its_service_deployment_and_a_service_without_one_as_before() {
    let bed = Testbed::get();
    let fixture = fixture();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // auth deploys as a canary; api has no service deployment (an older account's).
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 1,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}},
            "alarms": ["auth-5xx"],
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 4, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    let out = deploy(&fixture, &env, &bed, &stand_in, "auth,api");
    out.success()
        .stderr_has("auth: CANARY IN_PROGRESS at BAKE_TIME · bake ")
        .stderr_has("1 alarm(s) quiet")
        .stderr_has("api: no ECS service deployment to follow (ListServiceDeployments lists none created since the roll began): waiting on DescribeServices.deployments");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let auth = rollout(&report, "auth");
    assert_eq!(auth["steady"], true, "{auth}");
    assert_eq!(auth["running_tag"], tag.as_str());
    assert_eq!(auth["followed"], "service deployment");
    assert_eq!(auth["deployment"]["strategy"], "CANARY");
    assert_eq!(auth["deployment"]["status"], "SUCCESSFUL");
    assert_eq!(auth["deployment"]["alarms"], json!(["auth-5xx"]));
    let api = rollout(&report, "api");
    assert_eq!(api["steady"], true, "{api}");
    assert!(
        api["followed"]
            .as_str()
            .unwrap()
            .starts_with("DescribeServices"),
        "{api}"
    );
    // Only deployments created since the roll began were asked for, per service.
    let listed = stand_in.calls("ListServiceDeployments");
    let mut services: Vec<&str> = listed
        .iter()
        .map(|c| c["service"].as_str().unwrap())
        .collect();
    services.sort();
    services.dedup();
    assert_eq!(services, ["api", "auth"], "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|c| c["createdAt"]["after"].as_f64().is_some()),
        "{listed:?}"
    );
    assert!(stand_in.calls("DescribeServiceDeployments").len() >= 2);
    // The history record says which deployment rolled auth.
    let run = last_run(&fixture, &env, &bed);
    let auth = run["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "auth")
        .unwrap();
    assert!(
        auth["ecs_deployment"]
            .as_str()
            .is_some_and(|d| d.starts_with("CANARY SUCCESSFUL at CLEAN_UP (arn:aws:ecs:")),
        "{run}"
    );
}

/// `terraform plan -detailed-exitcode` of the targeted roll that puts `service` on
/// `tag`: 0 when terraform's state already says so.
pub(crate) fn plan_exit_code(
    bed: &Testbed,
    fixture: &Fixture,
    env: &AwsEnv,
    service: &str,
    tag: &str,
) -> (i32, String) {
    let mut command = std::process::Command::new(&bed.terraform);
    command
        .args([
            "-chdir=infra/terraform/aws",
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-var-file=tfvars/sandbox.tfvars",
            "-no-color",
            &format!("-var=image_tags={{\"{service}\"=\"{tag}\"}}"),
            &format!("-var=image_tag={tag}"),
            &format!("-target=terraform_data.task_definition[\"{service}\"]"),
            &format!("-target=terraform_data.service[\"{service}\"]"),
        ])
        .current_dir(fixture.root());
    env.configure(&mut command);
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_canary_that_ecs_rolls_back_on_an_alarm_fails_the_run_and_terraform_is_reconciled() {
    let bed = Testbed::get();
    let fixture = fixture();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let before = crate::rollout::live(&env);
    // auth's canary bakes, its alarm fires, ECS rolls it back to what ran before.
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 10,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 10}},
            "alarms": ["auth-5xx"],
            "sourceTaskDefinition": before["auth"].0,
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 3, "status": "ROLLBACK_IN_PROGRESS", "lifecycleStage": "BAKE_TIME",
                 "rollback": "CloudWatch alarm auth-5xx is in ALARM", "triggeredAlarms": ["auth-5xx"]},
                {"at": 4, "status": "ROLLBACK_SUCCESSFUL", "lifecycleStage": "BAKE_TIME",
                 "rollback": "CloudWatch alarm auth-5xx is in ALARM", "triggeredAlarms": ["auth-5xx"]}]}}}),
    );
    let out = deploy(&fixture, &env, &bed, &stand_in, "auth,api");
    out.code(1)
        .stderr_has("ECS rolled back the CANARY deployment of auth during BAKE_TIME: CloudWatch alarm auth-5xx is in ALARM; alarms in ALARM: auth-5xx")
        .stderr_has("1 service(s) did not settle")
        .stderr_has("ECS rolled back auth → :bootstrap: re-applying those tags with terraform")
        .stderr_has("Reconciled: terraform re-applied auth → :bootstrap (what ECS rolled back to)");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rollout(&report, "api")["steady"], true);
    assert_eq!(
        rollout(&report, "auth")["native_rollback"]["triggered_alarms"],
        json!(["auth-5xx"])
    );
    assert_eq!(report["reconcile"]["tags"], json!([["auth", "bootstrap"]]));
    // What runs: auth on its old tag (a new revision terraform registered), api on the new.
    let after = crate::rollout::live(&env);
    assert_eq!(after["auth"].1, format!("{}/auth:bootstrap", bed.registry));
    assert_eq!(after["api"].1, format!("{}/api:{tag}", bed.registry));
    for service in crate::support::SERVICES {
        if !["auth", "api"].contains(&service) {
            assert_eq!(
                after[service], before[service],
                "{service} must be untouched"
            );
        }
    }
    // terraform's state says what runs: a plan of auth on its old tag changes nothing.
    let (code, plan) = plan_exit_code(&bed, &fixture, &env, "auth", "bootstrap");
    assert_eq!(code, 0, "{plan}");
    // The history record says what ECS did and what was reconciled.
    let run = last_run(&fixture, &env, &bed);
    assert_eq!(run["state"], "failed", "{run}");
    let auth = run["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "auth")
        .unwrap();
    assert_eq!(
        auth["ecs_ended"], "rolled back by ECS (alarm auth-5xx)",
        "{run}"
    );
    assert_eq!(auth["reconciled"], "bootstrap", "{run}");
    let api = run["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "api")
        .unwrap();
    assert!(api.get("reconciled").is_none(), "{run}");
}

#[test]
fn wait_until_paused_ends_when_both_services_wait_at_their_hook_and_lists_them() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // Both blue/green deployments pause after the production traffic shift, for an hour.
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
    let out = deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth,api",
        &["--wait-until", "paused", "--output", "json"],
    )
    .run();
    out.success()
        .stderr_has("auth: PAUSED on :")
        .stderr_has("BLUE_GREEN POST_PRODUCTION_TRAFFIC_SHIFT waits at hook hook-auth")
        .stderr_has("api: PAUSED on :")
        .stderr_has("waits at hook hook-api");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    for (service, hook) in [("auth", "hook-auth"), ("api", "hook-api")] {
        let rollout = rollout(&report, service);
        assert_eq!(
            rollout["deployment"]["pauses"][0]["hook_id"], hook,
            "{rollout}"
        );
        assert_eq!(
            rollout["followed"],
            "service deployment, until paused (--wait-until)"
        );
    }
}

#[test]
fn wait_until_traffic_shifted_ends_while_the_bake_goes_on() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // A 30-minute bake once traffic is shifted: `complete` would wait it out.
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "LINEAR",
            "deploymentConfiguration": {"bakeTimeInMinutes": 30,
                "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 1}},
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
                {"at": 2, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 1800, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    let started = std::time::Instant::now();
    let out = deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth",
        &["--wait-until", "traffic-shifted"],
    )
    .run();
    out.success()
        .stderr_has("auth: LINEAR IN_PROGRESS at PRODUCTION_TRAFFIC_SHIFT · bake ")
        .stderr_has("auth: traffic shifted on :")
        .stderr_has("ECS goes on with LINEAR at BAKE_TIME, bake 30m00s left");
    assert!(started.elapsed() < std::time::Duration::from_secs(300));
}

#[test]
fn a_health_check_failing_during_a_blue_green_bake_asks_ecs_to_roll_back_not_terraform() {
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
            "strategy": "BLUE_GREEN",
            "deploymentConfiguration": {"bakeTimeInMinutes": 30},
            "sourceTaskDefinition": before["auth"].0,
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME"},
                {"at": 1800, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    let mut run = deploy_through(
        &fixture,
        &env,
        &bed,
        &stand_in,
        "auth",
        &[
            "--wait-until",
            "traffic-shifted",
            "--rollback-on-failure",
            "--output",
            "json",
        ],
    )
    .spawn();
    // The old release (back once ECS rolled back) answers its health check.
    run.wait_for_line("the StopServiceDeployment", |line| {
        line.contains("asking ECS to roll it back")
    });
    server.serve("v1/auth/health");
    let out = run.finish();
    out.code(1)
        .stderr_has("1 health check(s) failed")
        .stderr_has("auth failed its health check while ECS still runs its deployment: asking ECS to roll it back (StopServiceDeployment ROLLBACK) instead of a terraform restore")
        .stderr_has("Reconciled: terraform re-applied auth → :bootstrap");
    // One StopServiceDeployment, a ROLLBACK, of auth's deployment; no terraform restore.
    let stops = stand_in.calls("StopServiceDeployment");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["stopType"], "ROLLBACK");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(report["restore"].is_null(), "{}", report["restore"]);
    assert_eq!(report["reconcile"]["tags"], json!([["auth", "bootstrap"]]));
    assert_eq!(
        crate::rollout::live(&env)["auth"].1,
        format!("{}/auth:bootstrap", bed.registry)
    );
    let run = last_run(&fixture, &env, &bed);
    let auth = run["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "auth")
        .unwrap();
    assert_eq!(
        auth["ecs_ended"], "rolled back by ECS at deploy's request (health check failed)",
        "{run}"
    );
}

/// Every rolled service is followed from the start, the 9 of the fixture side by side:
/// none waits for another's rollout to end before its own is first looked at.
#[test]
fn all_nine_services_are_followed_side_by_side() {
    let bed = Testbed::get();
    let fixture = fixture();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let rolling = json!({
        "strategy": "ROLLING",
        "stages": [
            {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
            {"at": 3, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]});
    let services: serde_json::Map<String, Value> = SERVICES
        .iter()
        .map(|s| (s.to_string(), rolling.clone()))
        .collect();
    let stand_in = EcsDeployments::start(&bed, &json!({ "services": services }));
    let out = deploy(&fixture, &env, &bed, &stand_in, &SERVICES.join(","));
    out.success();
    // Up to the last service's first ListServiceDeployments, no deployment was
    // described twice: no follow had ended (a 3-second rollout, polled every second)
    // and handed its place to another.
    let calls = stand_in.all_calls();
    let last_listed = SERVICES
        .iter()
        .map(|service| {
            calls
                .iter()
                .position(|c| {
                    c["operation"] == "ListServiceDeployments"
                        && c["request"]["service"] == *service
                })
                .unwrap_or_else(|| panic!("{service} never listed: {calls:?}"))
        })
        .max()
        .unwrap();
    let mut described = Vec::new();
    for call in &calls[..last_listed] {
        if call["operation"] != "DescribeServiceDeployments" {
            continue;
        }
        for arn in call["request"]["serviceDeploymentArns"].as_array().unwrap() {
            assert!(
                !described.contains(arn),
                "{arn} described twice before every service was listed once: {calls:#?}"
            );
            described.push(arn.clone());
        }
    }
}
