//! `deploy rollback <SHA>`: services go back to an earlier commit's images, which must
//! still be in the registry. Nothing is built; terraform rolls; ECS is checked as for a
//! deploy.

use crate::support::{bootstrap_applied, Fixture, Testbed, DEPLOY_SANDBOX};

#[test]
fn rollback_rolls_the_earlier_images_without_building_and_refuses_missing_ones() {
    let bed = Testbed::get();
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
    // (--skip-spas: no SPA was ever uploaded here, so none has a release to go back to.)
    let out = roll(&["rollback", &second, "--skip-spas"]);
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
