//! The reviewed roll (issue 15), with real terraform: the roll is planned in preflight,
//! its review shown before the confirmation (and under -y), changes outside the
//! deployment stop the run before any build unless accepted, the saved plan is what is
//! applied (a stale one fails cleanly), and `deploy diff` gates on the same review.

use crate::support::{
    bootstrap_applied, set_live_image, Fixture, Testbed, DEPLOY_API, DEPLOY_SERVICES, SERVICES,
};

/// `deploy diff` of the sandbox environment: no terminal, no -y.
const DIFF_SANDBOX: [&str; 5] = [
    "diff",
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
];

/// Commits a new default for the alarm's threshold: a change to infrastructure outside
/// the deployment (`terraform_data.alarm`), as a colleague's merged change would be.
fn change_the_alarm(fixture: &Fixture) -> String {
    let path = "infra/terraform/aws/variables.tf";
    let text = std::fs::read_to_string(fixture.path(path)).unwrap();
    let default = "  default     = 80\n";
    assert!(text.contains(default), "the fixture's alarm default moved");
    fixture.write(path, &text.replace(default, "  default     = 95\n"));
    fixture.commit_all("alarm threshold 95")
}

/// The review block of `text`: from its heading to the end.
fn review_in(text: &str) -> &str {
    let at = text
        .find("terraform plan, reviewed:")
        .unwrap_or_else(|| panic!("no review in:\n{text}"));
    &text[at..]
}

/// Whether the review names `service` with its image going from the bootstrap tag to
/// `tag`.
fn shows_image_change(review: &str, service: &str, tag: &str) -> bool {
    review.lines().any(|line| {
        line.trim_start().starts_with(&format!("{service} "))
            && line.ends_with(&format!("image bootstrap → {tag}"))
    })
}

#[test]
fn a_deploy_shows_the_image_change_then_applies_exactly_the_saved_plan() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let out = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).run();
    out.success()
        .stderr_has("no other infrastructure changes")
        .stderr_has("Apply complete");
    let review = review_in(&out.stderr);
    assert!(shows_image_change(review, "api", &tag), "{review}");
    // Reviewed (under -y too) before anything was built.
    assert!(
        out.stderr.find("terraform plan, reviewed:") < out.stderr.find("api: building"),
        "{out}"
    );
    // The apply is the saved plan alone: its variables and targets are in the file.
    let apply = out
        .stderr
        .lines()
        .find(|line| line.contains("(the plan reviewed above)"))
        .unwrap_or_else(|| panic!("no apply line: {out}"));
    assert!(
        apply.contains(" apply -input=false ")
            && !apply.contains("-var")
            && !apply.contains("-target"),
        "{apply}"
    );
    let planfile = apply
        .split_whitespace()
        .find(|word| word.ends_with("roll.tfplan"))
        .unwrap_or_else(|| panic!("no plan file in {apply}"));
    assert!(
        !std::path::Path::new(planfile).exists(),
        "the saved plan (it holds the tfvars values) is removed at the end: {planfile}"
    );
    assert!(!planfile.starts_with(fixture.root().to_str().unwrap()));
    assert!(fixture
        .live_images(&env, &bed)
        .contains(&format!("/api:{tag}")));
}

#[test]
fn a_change_outside_the_deployment_stops_the_deploy_before_any_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let tag = change_the_alarm(&fixture);

    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SERVICES)
        .run()
        .code(1)
        .stderr_has("1 change(s) to infrastructure outside the deployment")
        .stderr_has("~   update   terraform_data.alarm")
        .stderr_has("run again with --allow-infra-changes")
        .stderr_has("Nothing was built, pushed or applied")
        .stderr_lacks("building");
    for service in SERVICES {
        assert!(!bed.registry_has(service, &tag), "{service} was pushed");
    }
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}

#[test]
fn allow_infra_changes_applies_the_change_with_the_roll_and_the_summary_lists_it() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let tag = change_the_alarm(&fixture);

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SERVICES)
        .args(["--allow-infra-changes"])
        .run();
    out.success()
        .stdout_has("outside the deployment, accepted with --allow-infra-changes (applied):")
        .stdout_has("~   update   terraform_data.alarm");
    let review = review_in(&out.stderr);
    for service in SERVICES {
        assert!(
            shows_image_change(review, service, &tag),
            "{service}: {review}"
        );
    }
    let alarm = fixture.terraform(
        &env,
        &bed,
        &["state", "show", "-no-color", "terraform_data.alarm"],
    );
    let alarm = String::from_utf8_lossy(&alarm.stdout);
    assert!(alarm.contains("threshold = 95"), "{alarm}");
}

#[test]
fn services_and_changed_plans_show_only_the_services_they_roll() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let live = fixture.short_sha();

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DIFF_SANDBOX)
        .args(["--services", "api,auth"])
        .run();
    out.success();
    let review = review_in(&out.stdout);
    assert!(shows_image_change(review, "api", &live), "{review}");
    assert!(shows_image_change(review, "auth", &live), "{review}");
    assert!(
        review.contains("no other infrastructure changes"),
        "{review}"
    );
    for service in SERVICES.iter().filter(|s| !["api", "auth"].contains(s)) {
        assert!(!review.contains(service), "{service}: {review}");
    }

    // Every service live at `live`; then only billing changes.
    for service in SERVICES {
        set_live_image(
            &env,
            service,
            Some(&format!("{}/{service}:{live}", bed.registry)),
        );
    }
    fixture.write("services/billing/src/review.ts", "// a change\n");
    let head = fixture.commit_all("billing changes");
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DIFF_SANDBOX)
        .args(["--changed"])
        .run();
    out.success();
    let review = review_in(&out.stdout);
    assert!(shows_image_change(review, "billing", &head), "{review}");
    for service in SERVICES.iter().filter(|s| **s != "billing") {
        assert!(!review.contains(service), "{service}: {review}");
    }
}

#[test]
fn a_plan_gone_stale_before_the_apply_fails_cleanly_and_applies_nothing() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let marker = fixture.slow_build();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let mut run = fixture.deploy().aws(&env, &bed).args(DEPLOY_API).spawn();
    run.wait_for_the_slow_build(&marker);
    // A second terraform run changes the state while deploy builds.
    let other = fixture.terraform(
        &env,
        &bed,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var-file=tfvars/sandbox.tfvars",
            "-var",
            "image_tag=bootstrap",
            "-var",
            "alarm_threshold=85",
            "-target=terraform_data.alarm",
        ],
    );
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    let ended = run.finish();
    ended
        .code(1)
        .printed("Saved plan is stale")
        .printed("terraform applied nothing")
        .printed("plan and review anew")
        .printed("Pushed: api");
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}

#[test]
fn deploy_diff_exits_0_for_the_deployments_own_changes_3_for_others_1_for_failure_2_for_usage() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DIFF_SANDBOX)
        .args(["--output", "json"])
        .run();
    out.success();
    let diff: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let services = diff["review"]["services"].as_array().unwrap();
    assert_eq!(services.len(), SERVICES.len(), "{diff:#}");
    for service in services {
        assert_eq!(service["image"]["from"], "bootstrap", "{service:#}");
        assert_eq!(service["image"]["to"], tag.as_str(), "{service:#}");
    }
    assert_eq!(diff["needs_acceptance"], serde_json::json!([]));
    assert_eq!(
        (diff["outcome"].as_str(), diff["error"].is_null()),
        (Some("succeeded"), true)
    );

    let other = change_the_alarm(&fixture);
    let out = fixture.deploy().aws(&env, &bed).args(DIFF_SANDBOX).run();
    // Needs review: its own code, apart from a failure's 1, for a CI gate.
    out.code(3)
        .stdout_has("~   update   terraform_data.alarm")
        .stderr_has("a deploy of it stops before any build unless given --allow-infra-changes");
    assert!(
        shows_image_change(review_in(&out.stdout), "api", &other),
        "{out}"
    );
    // As JSON: the review, and how the command ended.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(DIFF_SANDBOX)
        .args(["--output", "json"])
        .run();
    out.code(3);
    let diff: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(diff["outcome"], "needs_review", "{diff:#}");
    assert_eq!(diff["error"]["exit_code"], 3);
    assert_ne!(diff["needs_acceptance"], serde_json::json!([]));
    // Read-only: nothing was built, pushed or applied.
    assert!(!bed.registry_has("api", &other));
    assert!(fixture.live_images(&env, &bed).contains("/api:bootstrap"));

    // A failure (here terraform cannot read the code) is 1, never "needs review".
    let path = "infra/terraform/aws/variables.tf";
    let text = std::fs::read_to_string(fixture.path(path)).unwrap();
    fixture.write(path, &format!("{text}\nvariable \"broken\" {{\n"));
    fixture.commit_all("broken terraform code");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DIFF_SANDBOX)
        .run()
        .code(1)
        .stderr_lacks("--allow-infra-changes");
    fixture.write(path, &text);
    fixture.commit_all("terraform code repaired");

    for args in [
        &["diff"][..],
        &[
            "diff",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            "--services",
            "api",
        ][..],
        &[
            "diff",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "nope",
        ][..],
    ] {
        fixture
            .deploy()
            .aws(&env, &bed)
            .args(args)
            .run()
            .usage_error();
    }
}
