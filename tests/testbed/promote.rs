//! `deploy promote` end to end: sandbox and prod in two moto accounts with two real
//! registries; the images sandbox runs copied by digest into prod's registry and rolled
//! there by terraform, with nothing built.

use crate::rollout::live;
use crate::support::registry::manifest_digest;
use crate::support::{
    bootstrap_in_registry, AwsEnv, Deploy, FaultProxy, Fixture, Testbed, SERVICES,
};

/// sandbox in the first registry, prod in the second, each in an account of its own
/// with a profile named after it; prod is the selected workspace (promote rolls it).
fn two_environments(bed: &Testbed, fixture: &Fixture) -> (AwsEnv, AwsEnv) {
    let sandbox = bootstrap_in_registry(
        bed,
        fixture,
        "sandbox",
        &["--initial-apply", "--profile", "sandbox"],
        &bed.registry,
    );
    let prod = bootstrap_in_registry(
        bed,
        fixture,
        "prod",
        &["--initial-apply", "--profile", "prod"],
        &bed.registry2,
    );
    assert_ne!(sandbox.summary["account_id"], prod.summary["account_id"]);
    (sandbox, prod)
}

/// A deploy to sandbox (its services only), unattended.
fn deploy_sandbox(fixture: &Fixture, bed: &Testbed, sandbox: &AwsEnv, extra: &[&str]) {
    let selected = fixture.terraform(sandbox, bed, &["workspace", "select", "sandbox"]);
    assert!(selected.status.success());
    fixture
        .deploy()
        .aws(sandbox, bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--profile",
            "sandbox",
            "-y",
        ])
        .args(extra)
        .run()
        .success();
    let selected = fixture.terraform(sandbox, bed, &["workspace", "select", "prod"]);
    assert!(selected.status.success());
}

/// `deploy promote --from sandbox --to prod`, prod's registry the second one.
fn promote(fixture: &Fixture, bed: &Testbed, sandbox: &AwsEnv, prod_registry: &str) -> Deploy {
    fixture
        .deploy()
        .aws(sandbox, bed)
        .env("DEPLOY_REGISTRY_PROD", prod_registry)
        .args([
            "promote",
            "--from",
            "tfvars/sandbox.tfvars",
            "--to",
            "tfvars/prod.tfvars",
            "--profile",
            "prod",
            "--profile-from",
            "sandbox",
        ])
}

/// `deploy status` of prod `--compare` sandbox, as JSON: per service its `digests` entry.
fn compare_status(
    fixture: &Fixture,
    bed: &Testbed,
    sandbox: &AwsEnv,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let out = fixture
        .deploy()
        .aws(sandbox, bed)
        .args([
            "status",
            "--var-file",
            "tfvars/prod.tfvars",
            "--profile",
            "prod",
            "--compare",
            "tfvars/sandbox.tfvars",
            "--compare-profile",
            "sandbox",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["compared_with"], "sandbox", "{json}");
    json["digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["service"].as_str().unwrap().to_owned(), entry.clone()))
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the Docker engine did between `since` and now that names `needle`.
fn docker_events_naming(since: u64, needle: &str) -> Vec<String> {
    let output = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(now() + 1).to_string(),
            "--format",
            "{{json .}}",
        ])
        .output()
        .expect("docker events runs");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn promote_copies_what_sandbox_runs_into_prod_by_digest_and_rolls_it_without_a_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let (sandbox, prod) = two_environments(&bed, &fixture);
    let tag = fixture.short_sha();
    deploy_sandbox(&fixture, &bed, &sandbox, &[]);
    let before = live(&prod);

    // Promote everything: no build, both accounts shown, prod's registry has the
    // same digests, prod's ECS runs them.
    let started = now();
    let out = promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["-y", "--output", "json"])
        .run();
    out.success()
        .stderr_has(&format!(
            "copying FROM AWS account {}",
            sandbox.summary["account_id"].as_str().unwrap()
        ))
        .stderr_has(&format!(
            "AWS account {}",
            prod.summary["account_id"].as_str().unwrap()
        ));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["copies"].as_array().unwrap().len(), 9, "{report}");
    for service in SERVICES {
        let source = manifest_digest(&bed.registry, service, &tag).expect("in sandbox's registry");
        assert_eq!(
            manifest_digest(&bed.registry2, service, &tag),
            Some(source),
            "{service}: prod's registry has sandbox's bytes"
        );
    }
    let after = live(&prod);
    crate::rollout::assert_only_rolled(&before, &after, &SERVICES, &bed.registry2, &tag);
    assert!(
        docker_events_naming(started, &tag).is_empty(),
        "the promotion used the Docker engine: {:?}",
        docker_events_naming(started, &tag)
    );
    // SPAs are not copied, and the plan says so.
    out.stdout_has("not promoted: an SPA build embeds its environment's settings");

    // `status` shows the digests, and `--compare` that both run the same bytes.
    let same = compare_status(&fixture, &bed, &sandbox);
    for service in SERVICES {
        let entry = &same[service];
        assert_eq!(
            entry["digest"].as_str(),
            manifest_digest(&bed.registry2, service, &tag).as_deref(),
            "{entry}"
        );
        assert_eq!(entry["other"]["same"], true, "{entry}");
    }

    // Again: every service already runs that digest in prod.
    promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["-y"])
        .run()
        .success()
        .stdout_has("prod runs this digest already");

    // One service changes in sandbox: only it is promoted, the others are skipped.
    fixture.write("services/api/src/changed.ts", "export const changed = 1;\n");
    fixture.commit_all("api changed");
    let new_tag = fixture.short_sha();
    deploy_sandbox(&fixture, &bed, &sandbox, &["--services", "api"]);
    let differs = compare_status(&fixture, &bed, &sandbox);
    assert_eq!(differs["api"]["other"]["same"], false, "{}", differs["api"]);
    assert_eq!(differs["api"]["other"]["tag"], new_tag.as_str());
    assert_eq!(differs["auth"]["other"]["same"], true);
    let before = live(&prod);
    let out = promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["-y", "--output", "json"])
        .run();
    out.success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let copies = report["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{report}");
    assert_eq!(copies[0]["service"], "api");
    // Only api's new layers went over: its base layers were in prod's registry already.
    assert!(
        copies[0]["blobs_present"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let after = live(&prod);
    crate::rollout::assert_only_rolled(&before, &after, &["api"], &bed.registry2, &new_tag);
    assert_eq!(
        manifest_digest(&bed.registry2, "api", &new_tag),
        manifest_digest(&bed.registry, "api", &new_tag)
    );

    // A sandbox service on `latest` is refused with that reason; nothing is touched.
    crate::support::set_live_image(
        &sandbox,
        "auth",
        Some(&format!("{}/auth:latest", bed.registry)),
    );
    let before = live(&prod);
    promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["-y", "--services", "auth,api"])
        .run()
        .code(1)
        .stderr_has("auth: sandbox runs :latest, not a commit's image")
        .stderr_has("promote only the others (--services api)")
        .stderr_has("Nothing was copied or rolled");
    assert_eq!(live(&prod), before);
}

#[test]
fn a_failing_target_registry_stops_the_promotion_before_the_roll_and_a_rerun_resumes() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let (sandbox, prod) = two_environments(&bed, &fixture);
    let tag = fixture.short_sha();
    deploy_sandbox(&fixture, &bed, &sandbox, &["--services", "api,auth"]);
    let before = live(&prod);
    let args = ["--services", "api,auth", "-y", "--output", "json"];

    // prod's registry fails every manifest write: the blobs go over, the copies fail
    // after their retries, and nothing is rolled.
    let down = FaultProxy::http(&bed, &bed.registry2, &["--fail-manifest-puts", "1000"]);
    promote(&fixture, &bed, &sandbox, &down.address)
        .args(args)
        .run()
        .code(1)
        .stderr_has("image(s) could not be copied")
        .stderr_has("failed 5 time(s)")
        .stderr_has("Nothing was rolled");
    assert_eq!(live(&prod), before);
    assert_eq!(manifest_digest(&bed.registry2, "api", &tag), None);
    drop(down);

    // A registry that serves other bytes than were written: the digest check stops
    // the run before the roll.
    let lying = FaultProxy::http(&bed, &bed.registry2, &["--mangle-manifest-gets"]);
    promote(&fixture, &bed, &sandbox, &lying.address)
        .args(args)
        .run()
        .code(1)
        .stderr_has("not the source's")
        .stderr_has("Nothing was rolled");
    assert_eq!(live(&prod), before);
    drop(lying);

    // The re-run resumes: no blob is sent again, and the roll happens.
    let out = promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(args)
        .run();
    out.success();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let copies = report["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 2, "api and auth are copied: {report}");
    for copy in copies {
        assert_eq!(copy["blobs_sent"], 0, "{report}");
        assert_eq!(copy["bytes_sent"], 0, "{report}");
    }
    let after = live(&prod);
    crate::rollout::assert_only_rolled(&before, &after, &["api", "auth"], &bed.registry2, &tag);
}

#[test]
fn a_source_not_on_a_commit_is_refused_and_nothing_is_touched() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let (sandbox, prod) = two_environments(&bed, &fixture);
    // sandbox still runs its bootstrap images, tagged `bootstrap`: not a commit.
    let before = live(&prod);
    promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["-y", "--services", "billing"])
        .run()
        .code(1)
        .stderr_has("billing: sandbox runs :bootstrap, not a commit's image");
    assert_eq!(live(&prod), before);
    // The dry run reads both environments and says what each would do, touching nothing.
    promote(&fixture, &bed, &sandbox, &bed.registry2)
        .args(["--dry-run", "--services", "billing"])
        .run()
        .code(1)
        .stderr_has("cannot promote from sandbox to prod");
    assert_eq!(live(&prod), before);
}
