//! SPA build and upload against the real test bed: the fixture SPA built with its own
//! `node build.mjs`, uploaded to its moto bucket through `deploy::spa`, and the
//! CloudFront invalidation read back from moto.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use deploy::model::config::SpaUploadConfig;
use deploy::spa::{self, ManifestLocation, SpaTarget, UploadReport};
use deploy::ui::progress::Progress;

use crate::support::spa::{clients, runtime, target, SPA};
use crate::support::{bootstrap_applied, bootstrap_aws, AwsEnv, Fixture, Testbed};

/// What went over the wire, in order: each request as the SDK sends it, and each answer
/// as it arrives.
#[derive(Debug, Clone, Default)]
struct WireLog(Arc<Mutex<Vec<Wire>>>);

#[derive(Debug, Clone, PartialEq)]
enum Wire {
    Sent { method: String, path: String },
    Answered,
}

impl WireLog {
    /// An S3 client like `s3` that records into this log.
    fn attach(&self, s3: &deploy::aws::S3) -> deploy::aws::S3 {
        let config = s3.config().to_builder().interceptor(self.clone()).build();
        deploy::aws::Service::new(aws_sdk_s3::Client::from_conf(config), Some("testbed"))
    }

    fn events(&self) -> Vec<Wire> {
        self.0.lock().unwrap().clone()
    }
}

impl Intercept for WireLog {
    fn name(&self) -> &'static str {
        "WireLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let uri = request.uri();
        let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
        let path = after_scheme
            .find('/')
            .map_or("/", |slash| &after_scheme[slash..]);
        let path = path.split('?').next().unwrap_or(path).to_owned();
        self.0.lock().unwrap().push(Wire::Sent {
            method: request.method().to_owned(),
            path,
        });
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(Wire::Answered);
        Ok(())
    }
}

/// Builds the SPA with its real build, then uploads it.
async fn build_and_upload(
    s3: &deploy::aws::S3,
    spa: &SpaTarget,
    git_sha: &str,
    settings: &SpaUploadConfig,
) -> UploadReport {
    let progress = Progress::new(true);
    let item = progress.item(&spa.name);
    spa::build(spa, &item).await.expect("the SPA builds");
    spa::upload(s3, spa, git_sha, settings, &item)
        .await
        .unwrap_or_else(|err| panic!("upload failed: {err:#}"))
}

/// Every key in the bucket.
async fn bucket_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let output = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    output
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect()
}

/// The keys under dist/ of the fixture SPA as built now.
fn dist_keys(dist: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dist).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if entry.file_type().unwrap().is_dir() {
            for inner in dist_keys(&entry.path()) {
                keys.push(format!("{name}/{inner}"));
            }
        } else {
            keys.push(name);
        }
    }
    keys.sort();
    keys
}

fn hashed_asset(dist: &Path, prefix: &str) -> String {
    dist_keys(dist)
        .into_iter()
        .find(|key| key.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dist.display()))
}

#[test]
fn spa_upload_sets_headers_puts_entry_points_last_and_invalidates() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let spa = target(&fixture, &env);
    let settings = SpaUploadConfig::default();
    runtime().block_on(async {
        let (s3, cloudfront) = clients(&env, &bed).await;
        assert_eq!(
            spa::deployed_sha(&s3, Some(&spa.manifest), &spa.bucket)
                .await
                .unwrap(),
            None
        );

        let wire = WireLog::default();
        let report = build_and_upload(&wire.attach(&s3), &spa, "abc1234", &settings).await;
        let built = dist_keys(&spa.output);
        assert_eq!(built.len(), 4, "{built:?}");
        let mut uploaded = report.uploaded.clone();
        uploaded.sort();
        assert_eq!(uploaded, built, "the first upload sends every file");
        assert_eq!(report.unchanged, 0);
        assert_eq!(report.deploy, 1);

        // Entry point last, as the report says (uploads in the order they completed)...
        assert_eq!(report.entry_points, ["index.html"]);
        assert_eq!(
            report.uploaded.last().map(String::as_str),
            Some("index.html")
        );
        // ...and as the wire says: when index.html was sent, every other file had been
        // sent and every request sent so far had been answered.
        let events = wire.events();
        let index_sent = events
            .iter()
            .position(|event| {
                matches!(event, Wire::Sent { method, path }
                    if method == "PUT" && path.ends_with("/index.html"))
            })
            .expect("index.html was sent");
        let before = &events[..index_sent];
        let sent = before
            .iter()
            .filter(|e| matches!(e, Wire::Sent { .. }))
            .count();
        let answered = before.iter().filter(|e| **e == Wire::Answered).count();
        assert_eq!(
            sent, answered,
            "requests still in flight when index.html went: {events:#?}"
        );
        for key in built.iter().filter(|key| *key != "index.html") {
            assert!(
                before
                    .iter()
                    .any(|event| matches!(event, Wire::Sent { method, path }
                    if method == "PUT" && path.ends_with(&format!("/{key}")))),
                "{key} was not uploaded before index.html: {events:#?}"
            );
        }
        let manifest_sent = events
            .iter()
            .position(|event| {
                matches!(event, Wire::Sent { method, path }
                    if method == "PUT" && path.ends_with(&spa.manifest.key))
            })
            .expect("the manifest was written");
        assert!(manifest_sent > index_sent, "the manifest goes last");

        let app = hashed_asset(&spa.output, "assets/app.");
        let style = hashed_asset(&spa.output, "assets/style.");
        let immutable = "public, max-age=31536000, immutable";
        let expected = [
            ("index.html", "text/html; charset=utf-8", "no-cache"),
            (app.as_str(), "text/javascript; charset=utf-8", immutable),
            (style.as_str(), "text/css; charset=utf-8", immutable),
            (
                "favicon.svg",
                "image/svg+xml; charset=utf-8",
                "public, max-age=300",
            ),
        ];
        let mut last_modified = BTreeMap::new();
        for (key, content_type, cache_control) in expected {
            let head = s3
                .head_object()
                .bucket(&spa.bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|err| panic!("HeadObject {key}: {err:?}"));
            assert_eq!(head.content_type(), Some(content_type), "{key}");
            assert_eq!(head.cache_control(), Some(cache_control), "{key}");
            let metadata = head.metadata().cloned().unwrap_or_default();
            assert_eq!(
                metadata.get("content-sha256").map(String::len),
                Some(64),
                "{key}: {metadata:?}"
            );
            last_modified.insert(key.to_owned(), head.last_modified().copied().unwrap());
        }
        // S3's clock agrees (moto keeps whole seconds only, so this is the weak form).
        for asset in [&app, &style, &"favicon.svg".to_owned()] {
            assert!(
                last_modified[asset.as_str()] <= last_modified["index.html"],
                "{asset} modified after index.html: {last_modified:?}"
            );
        }
        let index = s3
            .head_object()
            .bucket(&spa.bucket)
            .key("index.html")
            .send()
            .await
            .unwrap();
        assert_eq!(
            index
                .metadata()
                .and_then(|m| m.get("deploy-git-sha"))
                .map(String::as_str),
            Some("abc1234")
        );
        assert_eq!(
            spa::deployed_sha(&s3, Some(&spa.manifest), &spa.bucket)
                .await
                .unwrap()
                .as_deref(),
            Some("abc1234")
        );
        // The manifest is in the private bucket, not in the one CloudFront serves.
        assert!(bucket_keys(&s3, &spa.manifest.bucket)
            .await
            .contains(&spa.manifest.key));
        assert!(
            !bucket_keys(&s3, &spa.bucket)
                .await
                .iter()
                .any(|key| key.starts_with(".deploy/")),
            "deploy's bookkeeping is not served"
        );

        // One invalidation, with the default paths, waited for.
        let distribution = spa.distribution_id.as_deref().unwrap();
        let id = spa::invalidate(
            &cloudfront,
            distribution,
            &settings.invalidation_paths,
            Some(Duration::from_secs(30)),
        )
        .await
        .unwrap();
        let listed = cloudfront
            .list_invalidations()
            .distribution_id(distribution)
            .send()
            .await
            .unwrap();
        let ids: Vec<&str> = listed
            .invalidation_list()
            .map(|list| list.items().iter().map(|item| item.id()).collect())
            .unwrap_or_default();
        assert_eq!(ids, [id.as_str()]);
        let invalidation = cloudfront
            .get_invalidation()
            .distribution_id(distribution)
            .id(&id)
            .send()
            .await
            .unwrap();
        let invalidation = invalidation.invalidation().unwrap();
        let mut paths = invalidation
            .invalidation_batch()
            .and_then(|batch| batch.paths())
            .map(|paths| paths.items().to_vec())
            .unwrap_or_default();
        paths.sort();
        assert_eq!(paths, ["/", "/index.html"]);
        assert!(invalidation.status().eq_ignore_ascii_case("completed"));

        // A second invalidation is a new one (a unique CallerReference).
        let again = spa::invalidate(&cloudfront, distribution, &["/*".to_owned()], None)
            .await
            .unwrap();
        assert_ne!(again, id);

        // Errors name what they were about.
        let err = spa::invalidate(&cloudfront, "EDOESNOTEXIST", &["/".to_owned()], None)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("EDOESNOTEXIST"), "{err:#}");
    });
}

#[test]
fn spa_reupload_sends_only_what_changed() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let spa = target(&fixture, &env);
    let settings = SpaUploadConfig::default();
    runtime().block_on(async {
        let (s3, _) = clients(&env, &bed).await;
        let first = build_and_upload(&s3, &spa, "1111111", &settings).await;
        assert_eq!(first.uploaded.len(), 4);
        let old_app = hashed_asset(&spa.output, "assets/app.");

        // Nothing changed: nothing is uploaded, but the deploy is recorded.
        let second = build_and_upload(&s3, &spa, "2222222", &settings).await;
        assert!(second.uploaded.is_empty(), "{second:?}");
        assert_eq!(second.unchanged, 4);
        assert_eq!(
            spa::deployed_sha(&s3, Some(&spa.manifest), &spa.bucket)
                .await
                .unwrap()
                .as_deref(),
            Some("2222222")
        );

        // One source file changed: its asset (new hash) and the entry point naming it.
        let source = spa.dir.join("src/app.js");
        let text = std::fs::read_to_string(&source).unwrap();
        std::fs::write(&source, format!("{text}console.log(\"v3\");\n")).unwrap();
        let third = build_and_upload(&s3, &spa, "3333333", &settings).await;
        let new_app = hashed_asset(&spa.output, "assets/app.");
        assert_ne!(new_app, old_app);
        assert_eq!(third.uploaded, [new_app.as_str(), "index.html"]);
        assert_eq!(third.unchanged, 2);
        // The old asset stays for pages still open on the previous index.html.
        assert_eq!(third.stale_kept, [old_app.as_str()]);
        assert!(bucket_keys(&s3, &spa.bucket).await.contains(&old_app));

        // An object deleted behind deploy's back: between verifications the manifest is
        // trusted; a deploy that lists the bucket notices and uploads it again.
        s3.delete_object()
            .bucket(&spa.bucket)
            .key("favicon.svg")
            .send()
            .await
            .unwrap();
        let fourth = build_and_upload(&s3, &spa, "4444444", &settings).await;
        assert!(fourth.uploaded.is_empty(), "{fourth:?}");
        let verifying = SpaUploadConfig {
            verify_every_deploys: 1,
            ..settings.clone()
        };
        let fifth = build_and_upload(&s3, &spa, "5555555", &verifying).await;
        assert_eq!(fifth.uploaded, ["favicon.svg"]);
        // Overwritten behind deploy's back (same key, other content): its ETag gives it away.
        s3.put_object()
            .bucket(&spa.bucket)
            .key(&new_app)
            .body(b"tampered".to_vec().into())
            .send()
            .await
            .unwrap();
        let sixth = build_and_upload(&s3, &spa, "6666666", &verifying).await;
        assert_eq!(sixth.uploaded, [new_app.as_str()]);
    });
}

#[test]
fn spa_a_run_that_died_half_way_makes_the_next_one_list_and_repair() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let spa = target(&fixture, &env);
    let settings = SpaUploadConfig::default();
    let manifest_puts = |wire: &WireLog| {
        wire.events()
            .iter()
            .filter(|event| {
                matches!(event, Wire::Sent { method, path }
                if method == "PUT" && path.ends_with(&spa.manifest.key))
            })
            .count()
    };
    runtime().block_on(async {
        let (s3, _) = clients(&env, &bed).await;
        build_and_upload(&s3, &spa, "1111111", &settings).await;
        let v1_manifest = s3
            .get_object()
            .bucket(&spa.manifest.bucket)
            .key(&spa.manifest.key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let v1_index = std::fs::read(spa.output.join("index.html")).unwrap();

        // Nothing to write: one manifest write (the deploy record), no marker.
        let wire = WireLog::default();
        build_and_upload(&wire.attach(&s3), &spa, "1111111", &settings).await;
        assert_eq!(manifest_puts(&wire), 1);

        // Something to write: the manifest is first marked unverified, then written.
        let source = spa.dir.join("src/app.js");
        let v1_source = std::fs::read_to_string(&source).unwrap();
        std::fs::write(&source, format!("{v1_source}console.log(\"v2\");\n")).unwrap();
        let wire = WireLog::default();
        let v2 = build_and_upload(&wire.attach(&s3), &spa, "2222222", &settings).await;
        assert_eq!(manifest_puts(&wire), 2);
        let v2_app = v2.uploaded[0].clone();

        // Make the bucket look as if that run had died right after index.html: v2's
        // files, v1's manifest marked unverified.
        let mut died: serde_json::Value = serde_json::from_slice(&v1_manifest).unwrap();
        died["verified_deploy"] = 0.into();
        s3.put_object()
            .bucket(&spa.manifest.bucket)
            .key(&spa.manifest.key)
            .body(serde_json::to_vec(&died).unwrap().into())
            .send()
            .await
            .unwrap();

        // Rolling back to v1: the manifest says index.html is v1 already, but this run
        // lists the bucket, sees index.html is not what the manifest recorded, and
        // uploads it; v2's asset, unknown to the manifest, is adopted for retention.
        std::fs::write(&source, &v1_source).unwrap();
        let rollback = build_and_upload(&s3, &spa, "1111111", &settings).await;
        assert_eq!(rollback.uploaded, ["index.html"]);
        assert_eq!(rollback.adopted, [v2_app.as_str()]);
        let live = s3
            .get_object()
            .bucket(&spa.bucket)
            .key("index.html")
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(
            live.as_ref() == v1_index.as_slice(),
            "index.html is not v1's"
        );
    });
}

#[test]
fn spa_removed_assets_are_kept_for_the_retention_then_deleted() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let spa = target(&fixture, &env);
    // Retention by deploys alone: only the live release is kept restorable.
    let settings = SpaUploadConfig {
        retention_deploys: 2,
        releases_kept: 1,
        ..SpaUploadConfig::default()
    };
    runtime().block_on(async {
        let (s3, _) = clients(&env, &bed).await;
        build_and_upload(&s3, &spa, "1111111", &settings).await;
        let old_style = hashed_asset(&spa.output, "assets/style.");

        // Deploy 2 no longer ships the old stylesheet: it stays (retention 2: deploys 2, 3).
        let source = spa.dir.join("src/style.css");
        let text = std::fs::read_to_string(&source).unwrap();
        std::fs::write(&source, format!("{text}\nbody {{ margin: 0; }}\n")).unwrap();
        let second = build_and_upload(&s3, &spa, "2222222", &settings).await;
        assert_eq!(second.stale_kept, [old_style.as_str()]);
        assert!(bucket_keys(&s3, &spa.bucket).await.contains(&old_style));

        let third = build_and_upload(&s3, &spa, "3333333", &settings).await;
        assert_eq!(third.stale_kept, [old_style.as_str()]);
        assert!(third.deleted.is_empty());
        assert!(bucket_keys(&s3, &spa.bucket).await.contains(&old_style));

        // Deploy 4: two deploys have kept it; now it goes.
        let fourth = build_and_upload(&s3, &spa, "4444444", &settings).await;
        assert_eq!(fourth.deleted, [old_style.as_str()]);
        assert!(fourth.stale_kept.is_empty());
        let keys = bucket_keys(&s3, &spa.bucket).await;
        assert!(!keys.contains(&old_style), "{keys:?}");
        let mut live = keys;
        live.sort();
        assert_eq!(live, dist_keys(&spa.output));
    });
}

#[test]
fn spa_large_files_go_up_in_parts_and_unknown_objects_are_adopted() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // The build copies an 11 MiB file into dist/ after the fixture's own build.
    let video: Vec<u8> = {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .take(11 * 1024 * 1024)
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    std::fs::write(fixture.path("apps/admin-ui/video.bin"), &video).unwrap();
    let spa = SpaTarget {
        build: "node build.mjs && cp video.bin dist/assets/video.0a1b2c3d.bin".into(),
        ..target(&fixture, &env)
    };
    let settings = SpaUploadConfig {
        multipart_threshold_mib: 5,
        multipart_part_mib: 5,
        retention_deploys: 1,
        ..SpaUploadConfig::default()
    };
    runtime().block_on(async {
        let (s3, _) = clients(&env, &bed).await;
        // An object some earlier tool left in the bucket.
        s3.put_object()
            .bucket(&spa.bucket)
            .key("legacy/old.js")
            .body(b"old".to_vec().into())
            .send()
            .await
            .unwrap();

        let first = build_and_upload(&s3, &spa, "1111111", &settings).await;
        assert!(first
            .uploaded
            .contains(&"assets/video.0a1b2c3d.bin".to_owned()));
        assert_eq!(first.adopted, ["legacy/old.js"]);
        let head = s3
            .head_object()
            .bucket(&spa.bucket)
            .key("assets/video.0a1b2c3d.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(video.len() as i64));
        // Three parts: 5 + 5 + 1 MiB.
        assert!(
            head.e_tag().unwrap_or_default().ends_with("-3\""),
            "{head:?}"
        );
        assert_eq!(head.content_type(), Some("application/octet-stream"));
        assert_eq!(
            head.cache_control(),
            Some("public, max-age=31536000, immutable")
        );
        let uploaded = s3
            .get_object()
            .bucket(&spa.bucket)
            .key("assets/video.0a1b2c3d.bin")
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(
            uploaded.as_ref() == video.as_slice(),
            "multipart content differs"
        );

        // The same build again: nothing to upload, multipart or not.
        let second = build_and_upload(&s3, &spa, "2222222", &settings).await;
        assert!(second.uploaded.is_empty(), "{second:?}");
        // The adopted object had its one deploy of retention.
        assert_eq!(second.deleted, ["legacy/old.js"]);
    });
}

/// Build and push api and upload both SPAs, unattended; no terraform.
const PUSH_API_AND_SPAS: [&str; 6] = [
    "--skip-tf",
    "--services",
    "api",
    "--profile",
    "testbed",
    "-y",
];

/// A deploy of api and both SPAs (no terraform) that must succeed.
fn push_api_and_spas(fixture: &Fixture, env: &AwsEnv, bed: &Testbed) -> crate::support::Outcome {
    let out = fixture.deploy().aws(env, bed).args(PUSH_API_AND_SPAS).run();
    out.success();
    out
}

/// Per SPA of the fixture environment: (name, its bucket, its distribution).
pub(super) fn spa_buckets(env: &AwsEnv) -> Vec<(String, String, String)> {
    env.summary["spa_buckets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, bucket)| {
            (
                name.clone(),
                bucket.as_str().unwrap().to_owned(),
                env.summary["spa_distribution_ids"][name]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// Where deploy keeps an SPA's manifest in the fixture environment's private bucket.
pub(super) fn private_manifest(env: &AwsEnv, spa: &str, bucket: &str) -> ManifestLocation {
    ManifestLocation::new(
        env.summary["deploy_lock_bucket"].as_str().unwrap(),
        spa,
        bucket,
    )
}

/// How many invalidations CloudFront (moto) holds for a distribution.
async fn invalidations(cloudfront: &aws_sdk_cloudfront::Client, distribution: &str) -> i32 {
    cloudfront
        .list_invalidations()
        .distribution_id(distribution)
        .send()
        .await
        .unwrap()
        .invalidation_list()
        .map_or(0, |list| list.quantity())
}

/// The `deploy status` row of an SPA (text output).
fn status_row(fixture: &Fixture, env: &AwsEnv, bed: &Testbed, spa: &str) -> String {
    let out = fixture
        .deploy()
        .aws(env, bed)
        .args(["status", "--profile", "testbed"])
        .run();
    out.success();
    out.stdout
        .lines()
        .find(|line| line.starts_with(&format!("{spa} ")))
        .unwrap_or_else(|| panic!("no {spa} row: {}", out.stdout))
        .to_owned()
}

#[test]
fn a_dirty_spa_is_refused_before_anything_is_built() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let app = "apps/admin-ui/src/app.js";
    let text = std::fs::read_to_string(fixture.path(app)).unwrap();
    fixture.write(app, &format!("{text}console.log(\"uncommitted\");\n"));
    fixture.write("apps/admin-ui/src/extra.js", "export {};\n");
    // Ignored files are never inputs (node_modules/, dist/ are in .gitignore).
    fixture.write("apps/admin-ui/node_modules/left-pad/index.js", "x\n");

    // The plan already says so: the dry run stops with the same message.
    fixture
        .deploy()
        .args(["--skip-tf", "--dry-run"])
        .run()
        .usage_error()
        .stderr_has(app);

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API_AND_SPAS)
        .run();
    out.usage_error()
        .stderr_has("SPA admin-ui:")
        .stderr_has(app)
        .stderr_has("apps/admin-ui/src/extra.js")
        .stderr_has("--allow-dirty-spas")
        .stderr_has("Nothing was touched")
        .stderr_lacks("node_modules")
        .stderr_lacks("SPA simulator");
    // Nothing built (not the SPA, not the image), nothing pushed, nothing uploaded.
    assert!(!fixture.path("apps/admin-ui/dist").exists());
    assert!(!bed.registry_has("api", &tag));
    runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        for (_, bucket, _) in spa_buckets(&env) {
            assert_eq!(bucket_keys(&s3, &bucket).await, Vec::<String>::new());
        }
    });
}

#[test]
fn a_dirty_workspace_package_the_spa_builds_from_is_refused_too() {
    let _bed = Testbed::get();
    let fixture = Fixture::new();
    // The fixture's SPAs depend on no workspace package: admin-ui now uses
    // @platform/common, which uses @platform/tsconfig.
    fixture.write(
        "apps/admin-ui/package.json",
        r#"{"name": "@platform/admin-ui", "private": true, "dependencies": {"@platform/common": "workspace:*"}}"#,
    );
    fixture.commit_all("admin-ui uses common");
    let dry_run = || fixture.deploy().args(["--skip-tf", "--dry-run"]).run();

    // A package no SPA builds from: the images are built from the commit anyway.
    fixture.write("packages/events/src/index.ts", "// uncommitted\n");
    dry_run().success();

    fixture.write("packages/tsconfig/base.json", "{}\n");
    dry_run()
        .usage_error()
        .stderr_has("SPA admin-ui:\n    packages/tsconfig/base.json")
        .stderr_lacks("packages/events");
    fixture.git(&["checkout", "--", "packages/tsconfig"]);

    fixture.write("pnpm-lock.yaml", "lockfileVersion: '9.0'\n# uncommitted\n");
    dry_run()
        .usage_error()
        .stderr_has("SPA admin-ui:\n    pnpm-lock.yaml")
        .stderr_has("SPA simulator:\n    pnpm-lock.yaml");
}

#[test]
fn allow_dirty_spas_records_sha_dirty_and_status_shows_it_dirty() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let head = fixture.git(&["rev-parse", "HEAD"]);
    let short = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let app = "apps/admin-ui/src/app.js";
    let text = std::fs::read_to_string(fixture.path(app)).unwrap();
    fixture.write(app, &format!("{text}console.log(\"uncommitted\");\n"));

    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API_AND_SPAS)
        .args(["--allow-dirty-spas"])
        .run()
        .success()
        .stdout_has(&format!("recorded as {short}-dirty"));
    let bucket = env.summary["spa_buckets"][SPA].as_str().unwrap().to_owned();
    let simulator = env.summary["spa_buckets"]["simulator"]
        .as_str()
        .unwrap()
        .to_owned();
    runtime().block_on(async {
        let s3 = deploy::aws::Aws {
            sdk: env.sdk().await,
            profile: None,
        }
        .s3();
        let manifest = private_manifest(&env, SPA, &bucket);
        assert_eq!(
            spa::deployed_sha(&s3, Some(&manifest), &bucket)
                .await
                .unwrap(),
            Some(format!("{head}-dirty"))
        );
        let index = s3
            .head_object()
            .bucket(&bucket)
            .key("index.html")
            .send()
            .await
            .unwrap();
        assert_eq!(
            index.metadata().and_then(|m| m.get("deploy-git-sha")),
            Some(&format!("{head}-dirty"))
        );
        // The other SPA's inputs are clean: it is recorded as HEAD.
        let manifest = private_manifest(&env, "simulator", &simulator);
        assert_eq!(
            spa::deployed_sha(&s3, Some(&manifest), &simulator)
                .await
                .unwrap(),
            Some(head.clone())
        );
    });
    let row = status_row(&fixture, &env, &bed, SPA);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[2..4],
        [format!("{short}-dirty").as_str(), "yes"],
        "{row}"
    );
    assert!(row.contains("uncommitted"), "{row}");
    let row = status_row(&fixture, &env, &bed, "simulator");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2..4], [short.as_str(), "no"], "{row}");
}

#[test]
fn spa_manifests_stay_private_and_an_unchanged_spa_is_not_invalidated() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let short = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let deploy = || push_api_and_spas(&fixture, &env, &bed);

    let first = deploy();
    // Progress lines are prefixed by the SPA's name once.
    first
        .stderr_has("admin-ui: s3://")
        .stderr_lacks("admin-ui: admin-ui:")
        .stderr_lacks("simulator: simulator:");
    runtime().block_on(async {
        let sdk = env.sdk().await;
        let s3 = deploy::aws::s3(&sdk);
        let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
        for (name, bucket, distribution) in spa_buckets(&env) {
            assert_eq!(invalidations(&cloudfront, &distribution).await, 1, "{name}");
            let keys = bucket_keys(&s3, &bucket).await;
            assert!(keys.contains(&"index.html".to_owned()), "{keys:?}");
            assert!(
                !keys.iter().any(|key| key.starts_with(".deploy/")),
                "{name}: deploy's manifest is served: {keys:?}"
            );
            let manifest = private_manifest(&env, &name, &bucket);
            assert!(bucket_keys(&s3, &manifest.bucket)
                .await
                .contains(&manifest.key));
        }
    });
    // status reads the private manifest, and shows the SHA as image tags are shown.
    let row = status_row(&fixture, &env, &bed, SPA);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2..4], [short.as_str(), "no"], "{row}");

    // Nothing changed: uploads nothing, and creates no invalidation.
    let second = deploy();
    second.stdout_has("not needed (no entry point changed)");
    runtime().block_on(async {
        let cloudfront = aws_sdk_cloudfront::Client::new(&env.sdk().await);
        for (name, _, distribution) in spa_buckets(&env) {
            assert_eq!(invalidations(&cloudfront, &distribution).await, 1, "{name}");
        }
    });
}

#[test]
fn a_manifest_left_in_the_spa_bucket_moves_to_the_private_bucket() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let short = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let deploy = || push_api_and_spas(&fixture, &env, &bed);
    deploy();
    // As an older deploy left it: the manifest in the SPA bucket, none in the private one.
    let bucket = env.summary["spa_buckets"][SPA].as_str().unwrap().to_owned();
    let manifest = private_manifest(&env, SPA, &bucket);
    runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let body = s3
            .get_object()
            .bucket(&manifest.bucket)
            .key(&manifest.key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        s3.put_object()
            .bucket(&bucket)
            .key(spa::LEGACY_MANIFEST_KEY)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        s3.delete_object()
            .bucket(&manifest.bucket)
            .key(&manifest.key)
            .send()
            .await
            .unwrap();
    });
    // Not migrated yet: status reads the old place.
    let row = status_row(&fixture, &env, &bed, SPA);
    assert_eq!(row.split_whitespace().nth(2), Some(short.as_str()), "{row}");

    // The next deploy compares against the old manifest (nothing to upload), writes the
    // new one and deletes the old.
    let out = deploy();
    let row = out
        .stdout
        .lines()
        .find(|line| line.starts_with("admin-ui ") && line.contains(&bucket))
        .unwrap_or_else(|| panic!("no admin-ui row: {}", out.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2..4], ["0", "4"], "uploaded, unchanged: {row}");
    runtime().block_on(async {
        let s3 = deploy::aws::s3(&env.sdk().await);
        let keys = bucket_keys(&s3, &bucket).await;
        assert!(
            !keys.contains(&spa::LEGACY_MANIFEST_KEY.to_owned()),
            "{keys:?}"
        );
        assert!(bucket_keys(&s3, &manifest.bucket)
            .await
            .contains(&manifest.key));
    });
}
