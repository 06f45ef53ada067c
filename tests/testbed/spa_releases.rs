//! SPA releases (issue 29) on the real bed: `deploy rollback` and `deploy undo` put an
//! SPA's kept release back byte for byte (entry points from its record, its assets
//! still in the bucket) with one CloudFront invalidation; a release past retention, or
//! one whose assets are gone, is refused before anything changes; `status`, `history`
//! and graph-mode `--changed` see the restored release. Asserted on moto's S3 and
//! CloudFront, not on deploy's output alone.

use crate::support::{bootstrap_applied, AwsEnv, Fixture, Outcome, Testbed};

const SPA: &str = "admin-ui";

/// api and both SPAs to the sandbox, through terraform (lock, history), unattended.
const DEPLOY_API_AND_SPAS: [&str; 7] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--services",
    "api",
    "--profile",
    "testbed",
    "-y",
];

/// What the SPA bucket serves as index.html: its bytes and headers.
#[derive(Debug, PartialEq)]
struct Served {
    body: Vec<u8>,
    content_type: Option<String>,
    cache_control: Option<String>,
    git_sha: Option<String>,
}

impl Served {
    /// The assets the page loads (`/assets/…` in its HTML), as bucket keys.
    fn assets(&self) -> Vec<String> {
        let html = String::from_utf8_lossy(&self.body);
        let assets: Vec<String> = html
            .split('"')
            .filter_map(|part| part.strip_prefix('/'))
            .filter(|path| path.starts_with("assets/"))
            .map(str::to_owned)
            .collect();
        assert!(!assets.is_empty(), "index.html loads no asset: {html}");
        assets
    }
}

fn bucket_of(env: &AwsEnv, spa: &str) -> (String, String) {
    (
        env.summary["spa_buckets"][spa].as_str().unwrap().to_owned(),
        env.summary["spa_distribution_ids"][spa]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

fn served(env: &AwsEnv) -> Served {
    let (bucket, _) = bucket_of(env, SPA);
    crate::support::runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let object = s3
            .get_object()
            .bucket(&bucket)
            .key("index.html")
            .send()
            .await
            .unwrap();
        Served {
            content_type: object.content_type().map(str::to_owned),
            cache_control: object.cache_control().map(str::to_owned),
            git_sha: object
                .metadata()
                .and_then(|m| m.get("deploy-git-sha"))
                .cloned(),
            body: object.body.collect().await.unwrap().into_bytes().to_vec(),
        }
    })
}

fn bucket_keys(env: &AwsEnv) -> Vec<String> {
    let (bucket, _) = bucket_of(env, SPA);
    crate::support::runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    })
}

/// How many invalidations each SPA's distribution holds: (admin-ui, simulator).
fn invalidations(env: &AwsEnv) -> (i32, i32) {
    crate::support::runtime().block_on(async {
        let cloudfront = aws_sdk_cloudfront::Client::new(&env.sdk().await);
        let mut counts = Vec::new();
        for spa in [SPA, "simulator"] {
            let (_, distribution) = bucket_of(env, spa);
            let list = cloudfront
                .list_invalidations()
                .distribution_id(distribution)
                .send()
                .await
                .unwrap();
            counts.push(list.invalidation_list().map_or(0, |l| l.quantity()));
        }
        (counts[0], counts[1])
    })
}

fn json(out: &Outcome) -> serde_json::Value {
    out.success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|err| panic!("{err}: {}", out.stdout))
}

/// The JSON entry named `name` in `list`.
fn named<'a>(list: &'a serde_json::Value, key: &str, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|entry| entry[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// Deploys A, then B with admin-ui changed; returns (A, B) as full SHAs with what the
/// bucket served after each.
fn deploy_a_then_b(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> [(String, Served); 2] {
    let deploy = || {
        fixture
            .deploy()
            .aws(env, bed)
            .args(DEPLOY_API_AND_SPAS)
            .run()
            .success();
        (fixture.git(&["rev-parse", "HEAD"]), served(env))
    };
    let a = deploy();
    fixture.write("apps/admin-ui/src/app.js", "console.log('admin B');\n");
    fixture.commit_all("admin-ui: B");
    let b = deploy();
    assert_ne!(a.1.body, b.1.body, "B serves another index.html");
    assert_ne!(a.1.assets(), b.1.assets());
    [a, b]
}

/// The bucket serves A's index.html byte for byte with A's headers, every asset it loads
/// is there, and B's assets are still there.
fn assert_serves_a(env: &AwsEnv, a: &Served, b: &Served) {
    let now = served(env);
    assert_eq!(&now, a, "index.html is A's, bytes and headers");
    let keys = bucket_keys(env);
    for asset in a.assets().iter().chain(b.assets().iter()) {
        assert!(
            keys.contains(asset),
            "{asset} is not in the bucket: {keys:?}"
        );
    }
}

#[test]
fn rollback_restores_the_spa_release_of_a_commit_byte_for_byte() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let [(a, served_a), (b, served_b)] = deploy_a_then_b(&fixture, &env, &bed);
    let short_a = &a[..7];
    let (admin, simulator) = invalidations(&env);

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["rollback", short_a, "--var-file", "tfvars/sandbox.tfvars"])
        .args([
            "--services",
            "api",
            "--spas",
            SPA,
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.success()
        .stdout_has(&format!("Summary: rollback to {short_a}"))
        .stderr_has(&format!("SPAs: admin-ui → release #1 ({short_a})"))
        .stdout_has("#3 = #1");
    assert_serves_a(&env, &served_a, &served_b);
    assert_eq!(served(&env).git_sha.as_deref(), Some(a.as_str()));
    assert_eq!(
        invalidations(&env),
        (admin + 1, simulator),
        "one invalidation, for admin-ui alone"
    );

    // status names the restored release as live, and HEAD's build differs from it.
    let status = json(
        &fixture
            .deploy()
            .aws(&env, &bed)
            .args(["status", "--var-file", "tfvars/sandbox.tfvars"])
            .args(["--profile", "testbed", "--output", "json"])
            .run(),
    );
    let spa = named(&status["spas"], "name", SPA);
    assert_eq!(spa["deployed_sha"], a.as_str());
    assert_eq!(spa["release"], 3);
    assert_eq!(spa["restored_from"], 1);
    assert!(spa["live_since"].is_string(), "{spa}");
    assert_eq!(spa["changed"], true);
    // The history record names it too.
    let history = json(
        &fixture
            .deploy()
            .aws(&env, &bed)
            .args(["history", "--var-file", "tfvars/sandbox.tfvars"])
            .args(["--profile", "testbed", "--output", "json"])
            .run(),
    );
    let run = &history["runs"][0];
    assert_eq!(run["mode"], "rollback");
    let change = named(&run["spas"], "name", SPA);
    assert_eq!(change["previous_sha"], b.as_str());
    assert_eq!(change["new_sha"], a.as_str());
    assert_eq!(change["previous_release"], 2);
    assert_eq!(change["new_release"], 3);
    assert_eq!(change["restored_from"], 1);
    assert!(change["live_since"].is_string(), "{change}");

    // Graph-mode --changed sees admin-ui as A's again: changed against HEAD.
    let plan = json(
        &fixture
            .deploy()
            .aws(&env, &bed)
            .args(["--var-file", "tfvars/sandbox.tfvars", "--changed=graph"])
            .args(["--profile", "testbed", "--dry-run", "--output", "json"])
            .run(),
    );
    assert_eq!(named(&plan["spas"], "name", SPA)["action"], "DEPLOY");
    assert_eq!(named(&plan["spas"], "name", "simulator")["action"], "SKIP");
}

#[test]
fn undo_after_a_deploy_restores_the_spa_release_live_before_it() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let [(a, served_a), (_, served_b)] = deploy_a_then_b(&fixture, &env, &bed);
    let (admin, simulator) = invalidations(&env);

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["undo", "--var-file", "tfvars/sandbox.tfvars"])
        .args(["--profile", "testbed", "-y"])
        .run();
    out.success().stdout_has("Summary: undo of run");
    assert_serves_a(&env, &served_a, &served_b);
    // B uploaded both SPAs under its commit: both go back, one invalidation each.
    assert_eq!(invalidations(&env), (admin + 1, simulator + 1));
    let live = fixture.live_images(&env, &bed);
    assert!(live.contains(&format!("/api:{}", &a[..7])), "{live}");
    let history = json(
        &fixture
            .deploy()
            .aws(&env, &bed)
            .args(["history", "--var-file", "tfvars/sandbox.tfvars"])
            .args(["--profile", "testbed", "--output", "json"])
            .run(),
    );
    let change = named(&history["runs"][0]["spas"], "name", SPA);
    assert_eq!(history["runs"][0]["mode"], "undo");
    assert_eq!(change["new_sha"], a.as_str());
    assert_eq!(change["restored_from"], 1);
}

#[test]
fn a_release_past_retention_or_missing_assets_is_refused_before_anything_changes() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let toml = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{toml}\n[spa_upload]\nreleases_kept = 2\n"),
    );
    fixture.commit_all("keep two SPA releases");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let push = || {
        fixture
            .deploy()
            .aws(&env, &bed)
            .args([
                "--skip-tf",
                "--services",
                "api",
                "--profile",
                "testbed",
                "-y",
            ])
            .run()
            .success();
        fixture.git(&["rev-parse", "HEAD"])
    };
    let a = push();
    fixture.write("apps/admin-ui/src/app.js", "console.log('admin B');\n");
    fixture.commit_all("admin-ui: B");
    let b = push();
    let served_b = served(&env);
    fixture.write("apps/admin-ui/src/app.js", "console.log('admin C');\n");
    fixture.commit_all("admin-ui: C");
    push();
    let served_c = served(&env);
    let keys = bucket_keys(&env);
    let counts = invalidations(&env);
    let rollback = |to: &str| {
        fixture
            .deploy()
            .aws(&env, &bed)
            .args(["rollback", to, "--var-file", "tfvars/sandbox.tfvars"])
            .args([
                "--services",
                "api",
                "--spas",
                SPA,
                "--profile",
                "testbed",
                "-y",
            ])
            .run()
    };

    // A's release is the third newest: no longer kept. The oldest restorable is named.
    rollback(&a[..7])
        .code(1)
        .stderr_has("cannot restore this SPA:")
        .stderr_has(&format!(
            "admin-ui: that release is no longer kept (spa_upload.releases_kept = 2); the oldest restorable is #2 ({}, live from",
            &b[..7]
        ))
        .stderr_has("Nothing was touched")
        .stdout_lacks("Summary:");

    // B's asset deleted behind deploy's back: B is refused, naming it.
    let gone = served_b
        .assets()
        .into_iter()
        .find(|asset| asset.starts_with("assets/app."))
        .unwrap();
    crate::support::runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let (bucket, _) = bucket_of(&env, SPA);
        s3.delete_object()
            .bucket(bucket)
            .key(&gone)
            .send()
            .await
            .unwrap();
    });
    rollback(&b[..7])
        .code(1)
        .stderr_has(&format!(
            "admin-ui: release #2 ({}) needs files s3://",
            &b[..7]
        ))
        .stderr_has(&format!(
            "no longer holds as released: {gone} (gone from the bucket)"
        ))
        .stderr_has("Nothing was touched");

    // Nothing changed: C is served, no invalidation, nothing else deleted, api as it was.
    assert_eq!(served(&env), served_c);
    assert_eq!(invalidations(&env), counts);
    let now = bucket_keys(&env);
    assert_eq!(
        now,
        keys.into_iter().filter(|k| *k != gone).collect::<Vec<_>>()
    );
    fixture
        .unlock(&env, &bed)
        .success()
        .stdout_has("no deploy lock held for sandbox");
}

/// A graph-mode `--changed` run that uploaded admin-ui alone rolled no service: undoing
/// it restores the SPA and plans no terraform roll at all.
#[test]
fn undo_of_a_run_that_changed_an_spa_alone_rolls_no_service() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(crate::support::DEPLOY_SANDBOX)
        .run()
        .success();
    let served_a = served(&env);
    fixture.write("apps/admin-ui/src/app.js", "console.log('admin B');\n");
    fixture.commit_all("admin-ui: B");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--var-file", "tfvars/sandbox.tfvars", "--changed=graph"])
        .args(["--profile", "testbed", "-y"])
        .run()
        .success();
    let served_b = served(&env);
    assert_ne!(served_a, served_b);
    let before = crate::rollout::live(&env);

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["undo", "--var-file", "tfvars/sandbox.tfvars"])
        .args(["--profile", "testbed", "-y"])
        .run();
    out.success()
        .stdout_has("terraform: nothing to roll")
        .stderr_lacks("planning the roll");
    assert_serves_a(&env, &served_a, &served_b);
    assert_eq!(crate::rollout::live(&env), before, "no service was rolled");
}
