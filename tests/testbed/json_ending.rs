//! A failed run's JSON document against the real test bed: how it ended (`outcome`,
//! `error` with its exit code and step) and what it did (`done`), as its history record
//! and its messages on stderr say.

use crate::images::fail_the_build_of;
use crate::support::{bootstrap_aws, push, Fixture, Testbed, PUSH_API};

#[track_caller]
fn document(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|err| panic!("{err}: not one JSON document:\n{stdout}"))
}

/// The `done` entry of `service`.
fn service<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["done"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap_or_else(|| panic!("{name} not in done.services: {json}"))
}

#[test]
fn a_failed_build_says_failed_with_its_error_and_step_and_what_was_pushed() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    fail_the_build_of(&fixture, "auth", "auth cannot build");
    let tag = fixture.commit_all("auth's build fails");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let mut args = push("api,auth").to_vec();
    args.extend(["--output", "json"]);

    let out = fixture.deploy().aws(&env, &bed).args(args).run();
    out.code(1).stderr_has("the image build of auth failed");
    let json = document(&out.stdout);
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["outcome"], "failed", "{json}");
    assert_eq!(json["error"]["exit_code"], 1);
    assert_eq!(json["error"]["step"], "build and push");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the image build of auth failed"),
        "{message}"
    );
    assert!(message.contains("Pushed: api"), "{message}");
    // What was done: api pushed, auth not, nothing rolled.
    assert_eq!(json["done"]["rolled"], false);
    assert_eq!(service(&json, "api")["image_status"], "pushed");
    assert_eq!(
        service(&json, "api")["image"],
        format!("{}/api:{tag}", bed.registry)
    );
    assert_eq!(service(&json, "auth")["image_status"], "failed");
    for name in ["api", "auth"] {
        assert_eq!(service(&json, name)["rolled"], false, "{name}");
        assert!(service(&json, name)["steady"].is_null(), "{name}");
    }
    assert!(json["done"]["restored"].is_null());
    assert!(bed.registry_has("api", &tag));
    assert!(!bed.registry_has("auth", &tag));
}

#[test]
fn a_missing_repository_says_failed_and_that_nothing_was_pushed() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    fixture.write(
        "deploy.toml",
        &format!(
            "{}\n[registry]\nrepository = \"missing/{{service}}\"\n",
            std::fs::read_to_string(fixture.path("deploy.toml")).unwrap()
        ),
    );
    fixture.commit_all("point at repositories that do not exist");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let mut args = PUSH_API.to_vec();
    args.extend(["--output", "json"]);

    let out = fixture.deploy().aws(&env, &bed).args(args).run();
    out.code(1)
        .stderr_has("ECR repository missing/api does not exist");
    let json = document(&out.stdout);
    assert_eq!(json["outcome"], "failed", "{json}");
    assert_eq!(json["error"]["exit_code"], 1);
    // Found when the images are obtained, before any build.
    assert_eq!(json["error"]["step"], "build and push");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ECR repository missing/api does not exist"));
    assert_eq!(service(&json, "api")["image_status"], "not_started");
    assert_eq!(json["done"]["rolled"], false);
}
