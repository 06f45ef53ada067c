//! `deploy rollback <SHA>`: services go back to an earlier commit's images, which must
//! still be in the registry. Nothing is built; terraform rolls; ECS is checked as for a
//! deploy.

use crate::support::{bootstrap_applied, Fixture, Testbed, DEPLOY_SANDBOX};

#[test]
fn rollback_dry_run_plans_the_earlier_tag_and_leaves_spas() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let earlier = fixture.short_sha();
    fixture.write("services/api/src/extra.ts", "export {};\n");
    fixture.commit_all("api: later");
    let head = fixture.short_sha();
    let out = fixture
        .deploy()
        .args([
            "rollback",
            &earlier,
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--dry-run",
        ])
        .run();
    out.success()
        .stdout_has(&format!("Plan: rollback to {earlier} ("))
        .stdout_has(&format!("HEAD is {head}"))
        .stdout_has(&format!("api:{earlier}"))
        .stdout_has(&format!("rolled back to {earlier}: its image, not rebuilt"))
        .stdout_has("a rollback leaves SPAs as they are")
        .stdout_has(&format!(
            "terraform: terraform -chdir=infra/terraform/aws apply -input=false -var-file=tfvars/sandbox.tfvars -var image_tag={earlier}"
        ))
        .stdout_lacks(&format!("api:{head}"));

    // --services narrows it to a targeted roll; JSON says what it is.
    let out = fixture
        .deploy()
        .args([
            "rollback",
            "HEAD~1",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "api",
            "--dry-run",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON plan");
    assert_eq!(plan["mode"], "rollback");
    assert_eq!(plan["image_tag"], earlier.as_str());
    assert_eq!(plan["head"]["short_sha"], head.as_str());
    assert!(plan["rollback_to"]["sha"]
        .as_str()
        .unwrap()
        .starts_with(&earlier));
    assert_eq!(plan["terraform"]["apply"]["roll"]["kind"], "only");
    assert_eq!(plan["terraform"]["apply"]["roll"]["services"][0], "api");
}

#[test]
fn rollback_to_a_revision_git_does_not_know_is_a_usage_error() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    fixture
        .deploy()
        .args([
            "rollback",
            "deadbee",
            "--var-file",
            "tfvars/sandbox.tfvars",
            "-y",
        ])
        .run()
        .usage_error()
        .stderr_has("\"deadbee\" is not a commit in")
        .stderr_has("give a SHA from `git log`");
}

#[test]
fn rollback_rolls_the_earlier_images_without_building_and_refuses_missing_ones() {
    let Some(bed) =
        Testbed::get("rollback_rolls_the_earlier_images_without_building_and_refuses_missing_ones")
    else {
        return;
    };
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let roll = |args: &[&str]| {
        fixture
            .deploy()
            .aws(&env, &bed)
            .args(args.iter().copied())
            .args(DEPLOY_SANDBOX)
            .run()
    };

    // api and auth go live at the first commit, then api alone at the second.
    let first = fixture.short_sha();
    roll(&["--skip-spas", "--services", "api,auth"])
        .success()
        .stdout_has(&format!("yes (:{first})"));
    fixture.write("services/api/src/extra.ts", "export const later = 1;\n");
    fixture.commit_all("api: a bad change");
    let second = fixture.short_sha();
    roll(&["--skip-spas", "--services", "api"])
        .success()
        .stdout_has(&format!("yes (:{second})"));
    let live = fixture.live_images(&env, &bed);
    assert!(live.contains(&format!("/api:{second}")), "{live}");

    // Back to the first commit: nothing built or pushed, ECS settles on it.
    let out = roll(&["rollback", &first, "--services", "api"]);
    out.success()
        .stdout_has(&format!("Summary: rollback to {first}"))
        .stdout_has("already in registry")
        .stdout_has(&format!("yes (:{first})"))
        .stdout_lacks("built, pushed")
        // Nothing was built: no "0.0s" as if it took no time; the apply is timed.
        .stdout_lacks(" 0.0s")
        .stdout_has("terraform apply (every service above at once): ")
        .stderr_has(&format!("rollback   to {first}; HEAD is {second}"));
    let live = fixture.live_images(&env, &bed);
    assert!(live.contains(&format!("/api:{first}")), "{live}");
    assert!(live.contains(&format!("/auth:{first}")), "{live}");

    // Every service at the second commit: only api's image exists. Refused before
    // anything is touched, naming the missing ones; api stays where it is.
    let out = roll(&["rollback", &second]);
    out.code(1)
        .stderr_has(&format!(
            "cannot roll back to {second}: 8 of its images are not in the registry"
        ))
        .stderr_has(&format!("auth: no {}/auth:{second}", bed.registry))
        .stderr_has("roll back only the services that have one (--services api)")
        .stderr_has("Nothing was touched")
        .stdout_lacks("Summary:");
    roll(&["rollback", &first, "--services", "api,billing"])
        .code(1)
        .stderr_has(&format!(
            "cannot roll back to {first}: 1 of its images is not in the registry"
        ));
    let live = fixture.live_images(&env, &bed);
    assert!(live.contains(&format!("/api:{first}")), "{live}");
    fixture
        .unlock(&env, &bed)
        .success()
        .stdout_has("no deploy lock held for sandbox");
}
