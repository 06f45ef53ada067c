//! ECS's own service deployments (canary, blue/green, linear, rolling), answered by the
//! test bed's stand-in (testbed/ecs_deployments.py) in front of moto, which has none:
//! each rolled service is followed through the deployment its roll caused.

use serde_json::{json, Value};

use crate::support::{bootstrap_applied, AwsEnv, EcsDeployments, Fixture, Testbed};

/// The fixture with a 1-second ECS poll, so that a scenario's stages are seen.
fn fixture() -> Fixture {
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
fn deploy(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    stand_in: &EcsDeployments,
    services: &str,
) -> crate::support::Outcome {
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
            "--output",
            "json",
        ])
        .run()
}

/// The newest run recorded in the sandbox's history.
fn last_run(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> Value {
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
    view["runs"][0].clone()
}

fn rollout<'a>(report: &'a Value, service: &str) -> &'a Value {
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
