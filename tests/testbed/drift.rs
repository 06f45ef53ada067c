//! Drift: a service changed outside deploy (a direct UpdateService in moto) is marked by
//! `status` (exit 4 with `--check`), refused by `--changed`, and taken as it runs
//! (`--adopt-drift`) or put back on the image deploy recorded (`--restore-drift`: not
//! rebuilt when unchanged since, built when it changed). And `[alarms]`:
//! a watched alarm ECS reports in ALARM during the wait makes deploy ask ECS to roll
//! back.

use serde_json::{json, Value};

use crate::support::{
    bootstrap_applied, registry, set_live_image, AwsEnv, EcsDeployments, Fixture, Outcome, Testbed,
    DEPLOY_SERVICES,
};

const SANDBOX: [&str; 4] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
];

fn status(
    fixture: &Fixture,
    env: &AwsEnv,
    bed: &Testbed,
    ecs: Option<&str>,
    extra: &[&str],
) -> Outcome {
    let mut run = fixture.deploy().aws(env, bed);
    if let Some(endpoint) = ecs {
        run = run.env("AWS_ENDPOINT_URL_ECS", endpoint);
    }
    run.args(["status"]).args(SANDBOX).args(extra).run()
}

fn changed(fixture: &Fixture, env: &AwsEnv, bed: &Testbed, extra: &[&str]) -> Outcome {
    fixture
        .deploy()
        .aws(env, bed)
        .args(SANDBOX)
        .args(["--changed", "--skip-spas"])
        .args(extra)
        .run()
}

fn drift_of<'a>(status: &'a Value, service: &str) -> &'a Value {
    status["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["service"] == service)
        .unwrap_or_else(|| panic!("no drift entry for {service}: {status}"))
}

#[test]
fn a_direct_update_service_is_drift_until_adopted_or_restored() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SERVICES)
        .run()
        .success();
    let deployed = fixture.short_sha();
    // Deployed and recorded: no drift, `--check` passes.
    let out = status(&fixture, &env, &bed, None, &["--check", "--output", "json"]);
    out.success();
    let view: Value = serde_json::from_str(&out.stdout).unwrap();
    let auth = drift_of(&view, "auth");
    assert_eq!(auth["drifted"], false, "{auth}");
    assert_eq!(auth["recorded"]["tag"], deployed.as_str(), "{auth}");
    assert_eq!(auth["terraform_tag"], deployed.as_str(), "{auth}");
    let recorded_digest = auth["recorded"]["digest"].clone();
    assert!(recorded_digest.is_string(), "{auth}");
    let first_run = auth["recorded"]["run_id"].clone();

    // A later commit, and auth put on its tag behind deploy's and terraform's back.
    fixture.write("docs/drift.md", "notes\n");
    fixture.commit_all("docs");
    let head = fixture.short_sha();
    set_live_image(&env, "auth", Some(&format!("{}/auth:{head}", bed.registry)));
    // ECS says which service deployment did it (the stand-in answers for auth).
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {"strategy": "ROLLING", "stages": [
            {"at": 0, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    let out = status(
        &fixture,
        &env,
        &bed,
        Some(&stand_in.endpoint),
        &["--check", "--output", "json"],
    );
    out.code(4)
        .stderr_has("drift: auth changed outside deploy")
        .stderr_has("--adopt-drift")
        .stderr_has("--restore-drift");
    let view: Value = serde_json::from_str(&out.stdout).unwrap();
    let auth = drift_of(&view, "auth");
    assert_eq!(auth["drifted"], true, "{auth}");
    assert_eq!(auth["running"]["tag"], head.as_str(), "{auth}");
    let differences = auth["differences"].to_string();
    assert!(
        differences.contains(&format!("runs :{head}"))
            && differences.contains(&format!("put :{deployed}"))
            && differences.contains(&format!("terraform's image_tags say :{deployed}")),
        "{auth}"
    );
    assert!(
        auth["changed_by"].as_str().is_some_and(|by| by
            .starts_with("ECS service deployment arn:aws:ecs:")
            && by.contains("/auth/")),
        "{auth}"
    );
    assert_eq!(drift_of(&view, "api")["drifted"], false);
    // The table says so too.
    status(&fixture, &env, &bed, Some(&stand_in.endpoint), &[])
        .success()
        .stdout_has(&format!("DRIFT auth: runs :{head}"))
        .stdout_has("changed by ECS service deployment arn:aws:ecs:");

    // --changed refuses it, naming what runs and what was recorded, and the two flags.
    changed(&fixture, &env, &bed, &["-y"])
        .code(4)
        .stderr_has("auth changed outside deploy")
        .stderr_has(&format!("auth: runs :{head}"))
        .stderr_has(&format!("put :{deployed}"))
        .stderr_has("--adopt-drift")
        .stderr_has("--restore-drift")
        .stderr_has("nothing was built or applied");

    // --adopt-drift: decided from what runs (HEAD's tag), so nothing changed.
    changed(&fixture, &env, &bed, &["--adopt-drift", "-y"])
        .success()
        .stderr_has("auth: changed outside deploy")
        .stdout_has("Nothing changed since the live images");

    // --restore-drift: auth did not change since deploy's roll, so its recorded image
    // is put back as it is (found in the registry, not built).
    let out = changed(
        &fixture,
        &env,
        &bed,
        &["--restore-drift", "--dry-run", "--output", "json"],
    );
    out.success();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let deploying: Vec<&Value> = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "DEPLOY")
        .collect();
    assert_eq!(deploying.len(), 1, "{plan}");
    let auth = deploying[0];
    assert_eq!(auth["name"], "auth", "{plan}");
    assert_eq!(auth["restore"], deployed.as_str(), "{auth}");
    assert_eq!(auth["image"], format!("auth:{deployed}"), "{auth}");
    assert!(
        auth["reason"].as_str().unwrap().contains(&format!(
            "drifted (runs :{head}): restoring recorded :{deployed}"
        )),
        "{auth}"
    );
    assert!(
        plan["terraform"]["command"]
            .as_str()
            .unwrap()
            .contains(&format!(r#"image_tags={{"auth"="{deployed}"}}"#)),
        "{plan}"
    );
    // Terraform's state already says :{deployed}: the task definition is renewed so
    // that the apply rolls it even though terraform does not see what runs.
    assert!(
        plan["terraform"]["command"]
            .as_str()
            .unwrap()
            .contains(r#"-replace=terraform_data.task_definition["auth"]"#),
        "{plan}"
    );
    let out = changed(
        &fixture,
        &env,
        &bed,
        &["--restore-drift", "-y", "--output", "json"],
    );
    out.success()
        .stderr_has(&format!("rolling its recorded :{deployed} again"));
    // Nothing was built or pushed for it: found in the registry, and HEAD's tag of auth
    // is still not there.
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{report}");
    assert_eq!(images[0]["service"], "auth", "{report}");
    assert_eq!(images[0]["status"], "already_in_registry", "{report}");
    assert!(!bed.registry_has("auth", &head));
    // ECS runs the recorded tag with the recorded digest, terraform's image_tags say it,
    // and the history records this run's roll of it: no drift, `--check` passes.
    let out = status(&fixture, &env, &bed, None, &["--check", "--output", "json"]);
    out.success();
    let view: Value = serde_json::from_str(&out.stdout).unwrap();
    let auth = drift_of(&view, "auth");
    assert_eq!(auth["drifted"], false, "{auth}");
    assert_eq!(auth["running"]["tag"], deployed.as_str(), "{auth}");
    assert_eq!(auth["recorded"]["tag"], deployed.as_str(), "{auth}");
    assert_ne!(auth["recorded"]["run_id"], first_run, "{auth}");
    assert_eq!(auth["recorded"]["digest"], recorded_digest, "{auth}");
    assert_eq!(auth["running"]["digest"], recorded_digest, "{auth}");
    assert_eq!(auth["terraform_tag"], deployed.as_str(), "{auth}");

    // Drifted again, and the recorded image deleted from the registry since: refused
    // before anything is touched, naming it.
    set_live_image(&env, "auth", Some(&format!("{}/auth:{head}", bed.registry)));
    let digest = registry::manifest_digest(&bed.registry, "auth", &deployed).unwrap();
    let (deleted, _, _) = registry::http(
        &bed.registry,
        "DELETE",
        &format!("/v2/auth/manifests/{digest}"),
        &[],
        b"",
    );
    assert_eq!(deleted, 202);
    changed(&fixture, &env, &bed, &["--restore-drift", "-y"])
        .code(1)
        .stderr_has("cannot put back the image deploy recorded (--restore-drift)")
        .stderr_has(&format!("auth: no {}/auth:{deployed}", bed.registry))
        .stderr_has("Nothing was touched");
    assert!(!bed.registry_has("auth", &head));

    // auth changed since the recorded roll: built and rolled, the new image superseding
    // both.
    fixture.write("services/auth/src/drift.txt", "changed\n");
    fixture.commit_all("auth changes");
    let changed_head = fixture.short_sha();
    let out = changed(
        &fixture,
        &env,
        &bed,
        &["--restore-drift", "--dry-run", "--output", "json"],
    );
    out.success();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    let auth = plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "auth")
        .unwrap();
    assert_eq!(auth["action"], "DEPLOY", "{auth}");
    assert!(auth.get("restore").is_none(), "{auth}");
    assert_eq!(auth["image"], format!("auth:{changed_head}"), "{auth}");
    let reason = auth["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("drifted (runs :{head}, recorded :{deployed})"))
            && reason.contains("the new image supersedes both"),
        "{auth}"
    );
}

#[test]
fn a_watched_alarm_in_alarm_during_the_bake_makes_deploy_ask_ecs_to_roll_back() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[ecs]\npoll_interval_secs = 1\n\n[alarms]\nauth = [\"auth-latency\", \"auth-cpu\"]\n"),
    );
    fixture.commit_all("watch auth's latency alarm");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    // terraform attaches auth-latency to the deployment without rollback: ECS reports it
    // in ALARM during the bake and goes on; auth-cpu is not attached at all.
    let stand_in = EcsDeployments::start(
        &bed,
        &json!({"services": {"auth": {
            "strategy": "CANARY",
            "deploymentConfiguration": {"bakeTimeInMinutes": 1,
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}},
            "alarms": ["auth-latency"],
            "stages": [
                {"at": 0, "status": "IN_PROGRESS", "lifecycleStage": "SCALE_UP"},
                {"at": 1, "status": "IN_PROGRESS", "lifecycleStage": "BAKE_TIME",
                 "triggeredAlarms": ["auth-latency"]},
                {"at": 60, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP"}]}}}),
    );
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("AWS_ENDPOINT_URL_ECS", &stand_in.endpoint)
        .args(SANDBOX)
        .args(["--skip-spas", "--services", "auth", "-y"])
        .run();
    out.code(1)
        .stderr_has("alarm auth-latency in ALARM ([alarms] of deploy.toml)")
        .stderr_has("cannot watch alarm(s) auth-cpu");
    let stops = stand_in.calls("StopServiceDeployment");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["stopType"], "ROLLBACK", "{stops:?}");
}
