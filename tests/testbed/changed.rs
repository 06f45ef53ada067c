//! `--changed` after a full deploy: live tags from ECS, the git2 change plan, the
//! targeted roll, and every reason a live tag cannot be a diff base.

use crate::rollout::assert_only_rolled;
use crate::support::{
    bootstrap_applied, set_live_image, AwsEnv, Fixture, Testbed, DEPLOY_SANDBOX, DEPLOY_SERVICES,
    SERVICES,
};

/// The `--changed` dry-run plan as JSON: service name → (action, reason).
fn changed_plan(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> Vec<(String, String, String)> {
    let out = fixture
        .deploy()
        .aws(env, bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            // Live images set behind terraform's back are drift: decide from them.
            "--adopt-drift",
            "--profile",
            "testbed",
            "--dry-run",
            "--output",
            "json",
        ])
        .run();
    out.success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    plan["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["action"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn deploying(plan: &[(String, String, String)]) -> Vec<&str> {
    plan.iter()
        .filter(|(_, a, _)| a == "DEPLOY")
        .map(|(n, _, _)| n.as_str())
        .collect()
}

#[test]
fn changed_deploys_exactly_what_changed_since_the_live_tags() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let full = DEPLOY_SERVICES;
    fixture.deploy().aws(&env, &bed).args(full).run().success();
    let live_tag = fixture.short_sha();

    // Nothing changed: say so, exit 0, build nothing, run no terraform.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.success()
        .stdout_has("Nothing changed since the live images")
        .stdout_lacks("Summary");
    assert!(
        !out.stderr.contains("terraform_data"),
        "terraform must not run: {}",
        out.stderr
    );
    // The same from cron or CI, without -y and without a terminal: nothing needs
    // confirming, so it is not a usage error.
    fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            "--profile",
            "testbed",
        ])
        .run()
        .success()
        .stdout_has("Nothing changed since the live images");

    // Unrelated paths and slack-agent never deploy anything.
    fixture.write("docs/notes.md", "notes\n");
    fixture.write(
        "services/slack-agent/src/index.ts",
        "export const changed = 1;\n",
    );
    fixture.commit_all("docs and slack-agent");
    assert!(deploying(&changed_plan(&fixture, &env, &bed)).is_empty());

    // Every shared package and build input fans out to all nine, with that reason.
    for path in [
        "packages/common/src/index.ts",
        "packages/auth-client/src/index.ts",
        "packages/events/src/index.ts",
        "packages/tsconfig/base.json",
        "packages/eslint-config/index.js",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
        "package.json",
        "infra/docker/service.Dockerfile",
        "infra/docker/.npmrc",
    ] {
        let before = fixture.git(&["rev-parse", "HEAD"]);
        let text = std::fs::read_to_string(fixture.path(path)).unwrap_or_default();
        let comment = if path.ends_with(".json") {
            ""
        } else {
            "\n# changed\n"
        };
        let edited = if path.ends_with(".json") {
            text.replacen('{', "{\n  \"_changed\": true,", 1)
        } else {
            format!("{text}{comment}")
        };
        fixture.write(path, &edited);
        fixture.commit_all(&format!("change {path}"));
        let plan = changed_plan(&fixture, &env, &bed);
        assert_eq!(deploying(&plan), SERVICES, "{path}: {plan:?}");
        assert!(
            plan.iter().all(|(_, _, reason)| reason.contains(
                path.trim_end_matches("/src/index.ts")
                    .trim_end_matches("/base.json")
                    .trim_end_matches("/index.js")
            )),
            "{path}: {plan:?}"
        );
        fixture.git(&["reset", "--quiet", "--hard", &before]);
    }

    // One service's own change: only it deploys, and only it is rolled.
    fixture.write(
        "services/billing/src/index.ts",
        "export const billing = 2;\n",
    );
    let tag = fixture.commit_all("billing change");
    let plan = changed_plan(&fixture, &env, &bed);
    assert_eq!(deploying(&plan), ["billing"]);
    assert!(
        plan.iter()
            .any(|(n, _, r)| n == "billing" && r == "services/billing/src/index.ts changed"),
        "{plan:?}"
    );
    // terraform on PATH writes down how it was called, then runs the real one.
    let wrapper = tempfile::tempdir().unwrap();
    let calls = wrapper.path().join("calls");
    let script = wrapper.path().join("terraform");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            bed.terraform.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env(
            "PATH",
            format!(
                "{}:{}",
                wrapper.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.success()
        .stdout_has(&format!("yes (:{tag})"))
        .stdout_has(r#"-target=terraform_data.service["billing"]"#);
    // The outputs (cluster, lock bucket, health URL) are read once, for the plan and
    // preflight both.
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        calls
            .lines()
            .filter(|call| call.contains(" output "))
            .count(),
        1,
        "{calls}"
    );
    assert_eq!(
        calls
            .lines()
            .filter(|call| call.contains(" apply "))
            .count(),
        1,
        "{calls}"
    );
    let after = changed_plan(&fixture, &env, &bed);
    assert!(
        deploying(&after).is_empty(),
        "after the roll nothing is left: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|(n, _, r)| n == "api" && r.contains(&live_tag)),
        "api stays on the first deploy's tag: {after:?}"
    );

    // `status` reads the same: billing runs the new tag, the rest the first deploy's.
    let status = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["status", "--profile", "testbed", "--output", "json"])
        .run();
    status.success();
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let services = status["services"].as_array().unwrap();
    assert_eq!(services.len(), SERVICES.len(), "{status}");
    for service in services {
        let name = service["name"].as_str().unwrap();
        let expected = if name == "billing" { &tag } else { &live_tag };
        assert!(
            service["live"]["image"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{expected}")),
            "{service}"
        );
        assert_eq!(service["action"], "SKIP", "{service}");
        assert_eq!(service["live"]["rollout_state"], "COMPLETED", "{service}");
    }
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["status", "--profile", "testbed"])
        .run()
        .success()
        .stdout_has("CHANGED")
        .stdout_has(&format!("billing        {tag}"));

    // Live tags that cannot be a diff base: deployed, with the reason.
    set_live_image(&env, "api", Some(&format!("{}/api:latest", bed.registry)));
    set_live_image(
        &env,
        "auth",
        Some(&format!("{}/auth:deadbeefcafe", bed.registry)),
    );
    set_live_image(
        &env,
        "files",
        Some(&format!("{}/files:{tag}-dirty", bed.registry)),
    );
    set_live_image(&env, "reports", None);
    let plan = changed_plan(&fixture, &env, &bed);
    let reason = |name: &str| plan.iter().find(|(n, _, _)| n == name).unwrap().2.clone();
    assert_eq!(
        deploying(&plan),
        ["api", "auth", "files", "reports"],
        "{plan:?}"
    );
    assert!(
        reason("api").contains("\"latest\" is not a git SHA"),
        "{}",
        reason("api")
    );
    assert!(
        reason("auth").contains("not in local history") && reason("auth").contains("git fetch"),
        "{}",
        reason("auth")
    );
    assert!(
        reason("files").contains("uncommitted code"),
        "{}",
        reason("files")
    );
    assert!(
        reason("reports").contains("not in cluster"),
        "{}",
        reason("reports")
    );
}

/// `--changed` reads what ECS runs even in a dry run (read-only), so it needs the bed.
#[test]
fn changed_mode_skips_spas_as_the_runbook_says() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed",
            "--profile",
            "testbed",
            "--dry-run",
        ])
        .run()
        .success()
        .stdout_has("incremental deploy (--changed)")
        .stdout_has("--changed covers backend services only");
}

/// Graph mode on the real bed: a change in `@platform/events` rolls exactly the services
/// that depend on it (api, auth and webhooks, by the fixture's `workspace:` edges), and
/// a change in admin-ui's own files uploads admin-ui and leaves simulator's bucket on
/// the first deploy's SHA. Asserted on ECS task definitions and the SPA upload
/// manifests, not on the plan.
#[test]
fn graph_mode_rolls_exactly_the_dependents_and_the_changed_spa() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SANDBOX)
        .run()
        .success();
    let first = fixture.git(&["rev-parse", "HEAD"]);
    fixture.write("packages/events/src/index.ts", "export const events = 2;\n");
    fixture.write("apps/admin-ui/src/app.js", "console.log('admin 2');\n");
    let tag = fixture.commit_all("events and admin-ui");
    let head = fixture.git(&["rev-parse", "HEAD"]);
    let (before, after) = roll_in_graph_mode(&fixture, &env, &bed);
    assert_only_rolled(
        &before,
        &after,
        &["api", "auth", "webhooks"],
        &bed.registry,
        &tag,
    );
    let recorded_shas = recorded_spa_shas(&env, &bed);
    assert_eq!(recorded_shas.len(), 2, "both SPAs: {recorded_shas:?}");
    for (name, recorded) in recorded_shas {
        let expected = if name == "admin-ui" { &head } else { &first };
        assert_eq!(recorded.as_deref(), Some(expected.as_str()), "{name}");
    }
}

/// Per service: (task definition ARN, image), as `crate::rollout::live` reads them.
type Live = std::collections::BTreeMap<String, (String, String)>;

/// Runs `--changed=graph` for real; the live services before and after.
fn roll_in_graph_mode(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> (Live, Live) {
    let before = crate::rollout::live(env);
    fixture
        .deploy()
        .aws(env, bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--changed=graph",
            "--profile",
            "testbed",
            "-y",
        ])
        .run()
        .success();
    (before, crate::rollout::live(env))
}

/// Per SPA: the git SHA its bucket records (read from S3, not from our output).
fn recorded_spa_shas(env: &AwsEnv, bed: &Testbed) -> Vec<(String, Option<String>)> {
    crate::support::spa::runtime().block_on(async {
        let (s3, _) = crate::support::spa::clients(env, bed).await;
        let mut recorded = Vec::new();
        for (name, bucket, _) in crate::spas::spa_buckets(env) {
            let manifest = crate::spas::private_manifest(env, &name, &bucket);
            let sha = deploy::spa::deployed_sha(&s3, Some(&manifest), &bucket)
                .await
                .unwrap();
            recorded.push((name, sha));
        }
        recorded
    })
}

/// A lockfile-only bump of one service's external dependency (`pnpm update express
/// --filter webhooks` within its `^4.19.2` range, as Renovate's lock maintenance does):
/// webhooks moves from express 4.19.2 to 4.21.1 (with its new cookie) in the fixture's
/// v9 lockfile, while api stays on 4.19.2 and no `package.json` changes. Graph mode
/// rolls webhooks alone and uploads no SPA (asserted on ECS task definitions and the
/// buckets' recorded SHAs); the runbook's rule plans all nine for the same commit, as
/// a lockfile change fans out.
#[test]
fn graph_mode_rolls_only_the_importer_whose_lockfile_entry_was_bumped() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_SANDBOX)
        .run()
        .success();
    let first = fixture.git(&["rev-parse", "HEAD"]);
    let bumped = bump_express_for_webhooks(
        &std::fs::read_to_string(fixture.path("pnpm-lock.yaml")).unwrap(),
    );
    fixture.write("pnpm-lock.yaml", &bumped);
    let tag = fixture.commit_all("chore(deps): lock express 4.21.1 for webhooks");

    // The runbook's rule, on the same commit: pnpm-lock.yaml fans out to all nine.
    let runbook = changed_plan(&fixture, &env, &bed);
    assert_eq!(deploying(&runbook), SERVICES, "{runbook:?}");

    let (before, after) = roll_in_graph_mode(&fixture, &env, &bed);
    assert_only_rolled(&before, &after, &["webhooks"], &bed.registry, &tag);
    let recorded_shas = recorded_spa_shas(&env, &bed);
    assert_eq!(recorded_shas.len(), 2, "both SPAs: {recorded_shas:?}");
    for (name, recorded) in recorded_shas {
        assert_eq!(recorded.as_deref(), Some(first.as_str()), "{name}");
    }
}

/// `text` with `from` replaced, which must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    text.replacen(from, to, 1)
}

/// The fixture's lockfile after `pnpm update express --filter webhooks`: the
/// webhooks importer resolves 4.21.1, and the new express and cookie entries appear in
/// `packages` and `snapshots` beside the ones api still uses.
fn bump_express_for_webhooks(lock: &str) -> String {
    // webhooks is the last importer: its express entry is the one before `packages:`.
    let lock = replace_once(
        lock,
        "      express:\n        specifier: ^4.19.2\n        version: 4.19.2\n    devDependencies:\n      '@platform/tsconfig':\n        specifier: workspace:*\n        version: link:../../packages/tsconfig\n\npackages:",
        "      express:\n        specifier: ^4.19.2\n        version: 4.21.1\n    devDependencies:\n      '@platform/tsconfig':\n        specifier: workspace:*\n        version: link:../../packages/tsconfig\n\npackages:",
    );
    let lock = replace_once(
        &lock,
        "\n  js-tokens@4.0.0:\n    resolution:",
        "\n  cookie@0.7.1:\n    resolution: {integrity: sha512-W/Y5fa/ODfGwm4UQQaDMlLUYtRCA+0bSWR+bZCnfFzWGw+63nkc2Xd3N9Flqq85aTwY6Y7pl1lm5Nqx83MLnhQ==}\n    engines: {node: '>= 0.6'}\n\n  express@4.21.1:\n    resolution: {integrity: sha512-rAzf1CydYap1e4hQCgawnrbmFPhK3m5mqdtgbjAlrXv0/gw8R4LjfbRYlI6ep33Z4WjJBJf5F0iNXTYGtFezqA==}\n    engines: {node: '>= 0.10.0'}\n\n  js-tokens@4.0.0:\n    resolution:",
    );
    replace_once(
        &lock,
        "\n  js-tokens@4.0.0: {}",
        "\n  cookie@0.7.1: {}\n\n  express@4.21.1:\n    dependencies:\n      accepts: 1.3.8\n      content-type: 1.0.5\n      cookie: 0.7.1\n\n  js-tokens@4.0.0: {}",
    )
}
