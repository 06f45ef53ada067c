use super::*;

fn local(key: &str, content: &str) -> LocalFile {
    LocalFile {
        key: key.into(),
        path: PathBuf::from("/dist").join(key),
        size: content.len() as u64,
        sha256: format!("sha-of-{content}"),
        sha256_base64: String::new(),
        content_type: "text/plain; charset=utf-8".into(),
        cache_control: "no-cache".into(),
        entry_point: key.ends_with(".html"),
    }
}

/// Retention by deploys alone: no deploy recorded a release.
fn old_rule(deploys: u64) -> Retention {
    Retention {
        deploys,
        releases: 1,
    }
}

fn record(number: u64) -> DeployRecord {
    DeployRecord {
        number,
        git_sha: format!("sha{number}"),
        time: "2025-01-01T00:00:00Z".into(),
        uploaded: 0,
        deleted: 0,
        release: false,
        restored_from: None,
    }
}

/// Simulates one deploy of `files` (key, content) against `state` (manifest +
/// bucket), as `upload` does: returns the plan.
fn deploy(
    state: &mut (Manifest, BTreeMap<String, BucketObject>),
    files: &[(&str, &str)],
    retention: u64,
) -> UploadPlan {
    let (manifest, bucket) = state;
    let local: Vec<LocalFile> = files.iter().map(|(k, c)| local(k, c)).collect();
    let plan = plan_upload(&local, manifest, Some(bucket), old_rule(retention));
    let mut etags = BTreeMap::new();
    for key in &plan.upload {
        let file = local.iter().find(|f| &f.key == key).unwrap();
        let etag = Some(format!("\"etag-{}\"", file.sha256));
        bucket.insert(
            key.clone(),
            BucketObject {
                size: file.size,
                etag: etag.clone(),
            },
        );
        etags.insert(key.clone(), etag);
    }
    for key in &plan.expire {
        bucket.remove(key);
    }
    *manifest = next_manifest(
        manifest,
        &plan,
        &local,
        Some(bucket),
        &etags,
        record(plan.deploy),
    );
    plan
}

#[test]
fn first_deploy_uploads_everything_and_second_nothing() {
    let mut state = Default::default();
    let files = [("assets/app.1.js", "a1"), ("index.html", "v1")];
    let first = deploy(&mut state, &files, 3);
    assert_eq!(first.deploy, 1);
    assert_eq!(first.upload, ["assets/app.1.js", "index.html"]);
    let second = deploy(&mut state, &files, 3);
    assert_eq!(second.deploy, 2);
    assert!(second.upload.is_empty(), "{second:?}");
    assert_eq!(second.unchanged.len(), 2);
    assert_eq!(state.0.deployed_sha(), Some("sha2"));
}

#[test]
fn changed_content_headers_or_bucket_are_uploaded_again() {
    let mut state = Default::default();
    deploy(
        &mut state,
        &[("index.html", "v1"), ("a.js", "a"), ("b.js", "b")],
        3,
    );

    // Content changed.
    let plan = deploy(
        &mut state,
        &[("index.html", "v2"), ("a.js", "a"), ("b.js", "b")],
        3,
    );
    assert_eq!(plan.upload, ["index.html"]);

    // Headers changed (new cache rules), same content.
    let (manifest, bucket) = &mut state;
    let mut files: Vec<LocalFile> = [("index.html", "v2"), ("a.js", "a"), ("b.js", "b")]
        .iter()
        .map(|(k, c)| local(k, c))
        .collect();
    files[1].cache_control = "public, max-age=60".into();
    assert_eq!(
        plan_upload(&files, manifest, Some(bucket), old_rule(3)).upload,
        ["a.js"]
    );

    // Deleted from the bucket behind our back; overwritten behind our back.
    bucket.remove("a.js");
    bucket.get_mut("b.js").unwrap().etag = Some("\"someone-else\"".into());
    let files = &files_of(&[("index.html", "v2"), ("a.js", "a"), ("b.js", "b")]);
    assert_eq!(
        plan_upload(files, manifest, Some(bucket), old_rule(3)).upload,
        ["a.js", "b.js"]
    );
    // Without a listing, the manifest is trusted: nothing to upload.
    assert!(plan_upload(files, manifest, None, old_rule(3))
        .upload
        .is_empty());
}

fn files_of(files: &[(&str, &str)]) -> Vec<LocalFile> {
    files.iter().map(|(k, c)| local(k, c)).collect()
}

#[test]
fn files_in_the_bucket_but_not_the_manifest_are_uploaded() {
    let manifest = Manifest::default();
    let bucket = BTreeMap::from([(
        "index.html".to_owned(),
        BucketObject {
            size: 2,
            etag: Some("\"x\"".into()),
        },
    )]);
    let plan = plan_upload(
        &files_of(&[("index.html", "v1")]),
        &manifest,
        Some(&bucket),
        old_rule(3),
    );
    assert_eq!(plan.upload, ["index.html"]);
}

#[test]
fn removed_files_are_kept_for_the_retention_then_expired() {
    let mut state = Default::default();
    deploy(&mut state, &[("index.html", "v1"), ("old.js", "o")], 2);
    // Deploy 2 stops shipping old.js: kept (2 later deploys keep it: 2 and 3).
    let plan = deploy(&mut state, &[("index.html", "v2")], 2);
    assert_eq!(plan.stale_kept, ["old.js"]);
    assert!(plan.expire.is_empty());
    let plan = deploy(&mut state, &[("index.html", "v3")], 2);
    assert_eq!(plan.stale_kept, ["old.js"]);
    // Deploy 4: retention ran out.
    let plan = deploy(&mut state, &[("index.html", "v4")], 2);
    assert_eq!(plan.expire, ["old.js"]);
    assert!(!state.0.files.contains_key("old.js"));
    assert!(!state.1.contains_key("old.js"));
    // History only keeps deploys that files still point at.
    let numbers: Vec<u64> = state.0.deploys.iter().map(|d| d.number).collect();
    assert_eq!(numbers, [4]);
}

#[test]
fn a_file_built_again_before_it_expires_is_live_again() {
    let mut state = Default::default();
    deploy(&mut state, &[("index.html", "v1"), ("x.js", "x")], 1);
    let plan = deploy(&mut state, &[("index.html", "v2")], 1);
    assert_eq!(plan.stale_kept, ["x.js"]);
    let plan = deploy(&mut state, &[("index.html", "v1"), ("x.js", "x")], 1);
    assert!(plan.expire.is_empty());
    assert_eq!(plan.upload, ["index.html"]);
    assert_eq!(state.0.files["x.js"].deploy, 3);
}

#[test]
fn unknown_objects_are_adopted_and_expire_like_old_files() {
    let mut state: (Manifest, BTreeMap<String, BucketObject>) = Default::default();
    state.1.insert(
        "legacy.js".into(),
        BucketObject {
            size: 5,
            etag: None,
        },
    );
    state.1.insert(
        LEGACY_MANIFEST_KEY.into(),
        BucketObject {
            size: 5,
            etag: None,
        },
    );
    let plan = deploy(&mut state, &[("index.html", "v1")], 1);
    assert_eq!(plan.adopted, ["legacy.js"]);
    assert_eq!(state.0.files["legacy.js"].deploy, 0);
    assert!(!state.0.files.contains_key(LEGACY_MANIFEST_KEY));
    // Deploy 2: 2 - 0 > 1.
    let plan = deploy(&mut state, &[("index.html", "v1")], 1);
    assert_eq!(plan.expire, ["legacy.js"]);
}

#[test]
fn without_a_listing_retention_still_runs_and_nothing_is_adopted() {
    let mut state = Default::default();
    deploy(&mut state, &[("index.html", "v1"), ("old.js", "o")], 1);
    let (manifest, bucket) = &state;
    assert_eq!(manifest.verified_deploy, 1);
    let local = files_of(&[("index.html", "v2")]);
    let plan = plan_upload(&local, manifest, None, old_rule(1));
    assert_eq!(plan.upload, ["index.html"]);
    assert_eq!(plan.stale_kept, ["old.js"]);
    assert!(plan.adopted.is_empty());
    let etags = BTreeMap::from([("index.html".to_owned(), Some("\"e2\"".to_owned()))]);
    let next = next_manifest(manifest, &plan, &local, None, &etags, record(2));
    assert_eq!(next.verified_deploy, 1, "no listing, no verification");
    assert_eq!(next.files["index.html"].etag.as_deref(), Some("\"e2\""));
    assert!(bucket.contains_key("old.js"));
    let plan = plan_upload(&local, &next, None, old_rule(1));
    assert_eq!(plan.expire, ["old.js"]);
}

#[test]
fn the_bucket_is_listed_without_a_manifest_after_a_failure_and_periodically() {
    assert!(needs_listing(None, 10));
    let mut manifest = Manifest {
        verified_deploy: 4,
        deploys: vec![record(3), record(4)],
        ..Manifest::default()
    };
    // Deploy 5 is 1 after the last verification.
    assert!(!needs_listing(Some(&manifest), 10));
    assert!(needs_listing(Some(&manifest), 1));
    manifest.deploys.push(record(13));
    assert!(
        needs_listing(Some(&manifest), 10),
        "deploy 14 is 10 after 4"
    );
    manifest.verified_deploy = 0;
    manifest.deploys = vec![record(4)];
    assert!(
        needs_listing(Some(&manifest), 10),
        "the last upload did not finish"
    );
}

#[test]
fn manifest_round_trips_through_json() {
    let mut state = Default::default();
    deploy(&mut state, &[("index.html", "v1")], 1);
    let json = serde_json::to_string_pretty(&state.0).unwrap();
    let back: Manifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state.0);
    assert!(json.contains("\"git_sha\": \"sha1\""), "{json}");
}

/// [`deploy`] where every deploy keeps a release, as `upload` records them.
fn release_deploy(
    state: &mut (Manifest, BTreeMap<String, BucketObject>),
    files: &[(&str, &str)],
    retention: Retention,
) -> UploadPlan {
    let (manifest, bucket) = state;
    let local: Vec<LocalFile> = files.iter().map(|(k, c)| local(k, c)).collect();
    let plan = plan_upload(&local, manifest, Some(bucket), retention);
    let mut etags = BTreeMap::new();
    for key in &plan.upload {
        let file = local.iter().find(|f| &f.key == key).unwrap();
        let etag = Some(format!("\"etag-{}\"", file.sha256));
        let object = BucketObject {
            size: file.size,
            etag: etag.clone(),
        };
        bucket.insert(key.clone(), object);
        etags.insert(key.clone(), etag);
    }
    for key in &plan.expire {
        bucket.remove(key);
    }
    let mut record = record(plan.deploy);
    record.release = true;
    *manifest = next_manifest(manifest, &plan, &local, Some(bucket), &etags, record);
    plan
}

#[test]
fn a_file_stays_while_a_kept_release_serves_it_and_goes_with_the_last_one() {
    let mut state = Default::default();
    let retention = Retention {
        deploys: 1,
        releases: 3,
    };
    let assets = ["a.1.js", "a.2.js", "a.3.js", "a.4.js", "a.5.js"];
    let versions = ["v1", "v2", "v3", "v4", "v5"];
    // deploy number → (files expired, release records dropped)
    let mut seen = Vec::new();
    for n in 0..5 {
        let files = [("index.html", versions[n]), (assets[n], "x")];
        let plan = release_deploy(&mut state, &files, retention);
        seen.push((plan.expire.clone(), plan.dropped_releases.clone()));
    }
    let expected: Vec<(Vec<String>, Vec<u64>)> = vec![
        (vec![], vec![]),
        (vec![], vec![]),
        (vec![], vec![]),
        // Release 1 leaves the kept three (2, 3, 4): a.1.js, which only it served, goes
        // although the deploys rule alone would have dropped it a deploy earlier.
        (vec!["a.1.js".into()], vec![1]),
        (vec!["a.2.js".into()], vec![2]),
    ];
    assert_eq!(seen, expected);
    let (manifest, bucket) = &state;
    assert!(bucket.contains_key("a.3.js") && bucket.contains_key("a.4.js"));
    let numbers: Vec<u64> = manifest.deploys.iter().map(|d| d.number).collect();
    assert_eq!(numbers, [3, 4, 5], "records of dropped releases go too");
}
