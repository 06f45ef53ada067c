//! Benchmark of the SPA upload (issue 4): a generated dist/ of 2,000 files, first upload
//! and a no-change re-run, `deploy::spa::upload` against `aws s3 sync` on the same moto
//! in the same run, each round on fresh buckets with the order of the two tools
//! alternating. Needs the test bed.
//!
//! Not a test: a `[[bench]]` target without the libtest harness, so `cargo test` never
//! builds it (clippy --all-targets still checks it). Run by `bench/spa_upload.sh`
//! (`cargo bench --bench spa_upload`), which provides the AWS CLI (`DEPLOY_BENCH_AWS`)
//! and turns what this prints into bench/spa-results.md; `DEPLOY_BENCH_FILES`,
//! `DEPLOY_BENCH_ROUNDS` and `DEPLOY_BENCH_CONCURRENCY` size it.

use std::path::Path;

use deploy::model::config::SpaUploadConfig;
use deploy::spa::{self, ManifestLocation, SpaTarget};
use deploy::ui::progress::Progress;

use support::spa::{clients, runtime, target};
use support::{bootstrap_aws, Fixture, Testbed};

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let bed = Testbed::get();
    // The upload's phase timings (`RUST_LOG=deploy::spa=debug`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let aws_cli = std::env::var("DEPLOY_BENCH_AWS").unwrap_or_else(|_| "aws".into());
    let files = number("DEPLOY_BENCH_FILES", 2000);
    let rounds = number("DEPLOY_BENCH_ROUNDS", 3);
    let fixture = Fixture::new();
    let env = bootstrap_aws(&bed, &fixture, "bench");
    let dist = fixture.path("bench-dist");
    let (bytes, large) = generate_dist(&dist, files);
    let settings = SpaUploadConfig {
        concurrency: number(
            "DEPLOY_BENCH_CONCURRENCY",
            SpaUploadConfig::default().concurrency,
        ),
        ..SpaUploadConfig::default()
    };
    let verifying = SpaUploadConfig {
        verify_every_deploys: 1,
        ..settings.clone()
    };
    eprintln!(
        "bench: {files} files, {:.1} MiB, {large} over the {} MiB multipart threshold; {rounds} round(s); {} uploads at once",
        bytes as f64 / 1048576.0,
        settings.multipart_threshold_mib,
        settings.concurrency
    );
    let aws_sync = |bucket: &str| {
        let started = std::time::Instant::now();
        let mut command = std::process::Command::new(&aws_cli);
        env.configure(&mut command);
        let output = command
            .args(["s3", "sync", "--no-progress", "--only-show-errors"])
            .arg(&dist)
            .arg(format!("s3://{bucket}/"))
            .args(["--endpoint-url", &bed.endpoint])
            .output()
            .expect("the AWS CLI runs");
        assert!(
            output.status.success(),
            "aws s3 sync to {bucket}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed().as_secs_f64()
    };
    // [first, no change, no change with a full listing] per tool, per round.
    let mut ours: Vec<[f64; 3]> = Vec::new();
    let mut theirs: Vec<[f64; 2]> = Vec::new();
    runtime().block_on(async {
        let (s3, _) = clients(&env, &bed).await;
        let progress = Progress::new(true);
        let item = progress.item("bench");
        for round in 0..rounds {
            let ours_bucket = format!("bench-ours-{round}-{}", env.summary["account_id"].as_str().unwrap());
            let theirs_bucket = format!("bench-aws-{round}-{}", env.summary["account_id"].as_str().unwrap());
            for bucket in [&ours_bucket, &theirs_bucket] {
                s3.create_bucket().bucket(bucket).send().await.unwrap();
            }
            let spa = SpaTarget {
                build: "true".into(),
                output: dist.clone(),
                bucket: ours_bucket.clone(),
                // A manifest per round's bucket: each round starts from nothing.
                manifest: ManifestLocation::new(
                    env.summary["deploy_lock_bucket"].as_str().unwrap(),
                    "bench",
                    &ours_bucket,
                ),
                ..target(&fixture, &env)
            };
            let upload = |settings: &SpaUploadConfig, expected: usize| {
                let (s3, spa, item) = (&s3, &spa, &item);
                let settings = settings.clone();
                async move {
                    let started = std::time::Instant::now();
                    let report = spa::upload(s3, spa, "bench", &settings, item)
                        .await
                        .unwrap_or_else(|err| panic!("{err:#}"));
                    assert_eq!(report.uploaded.len(), expected);
                    started.elapsed().as_secs_f64()
                }
            };
            // Alternate who goes first, so that neither always meets a fresher moto.
            let (ours_first, theirs_first) = if round % 2 == 0 {
                let ours = upload(&settings, files).await;
                (ours, aws_sync(&theirs_bucket))
            } else {
                let theirs = aws_sync(&theirs_bucket);
                (upload(&settings, files).await, theirs)
            };
            let ours_again = upload(&settings, 0).await;
            let theirs_again = aws_sync(&theirs_bucket);
            let ours_verified = upload(&verifying, 0).await;
            assert_eq!(bucket_keys_all(&s3, &theirs_bucket).await, files);
            eprintln!(
                "bench: round {}: first {ours_first:.2} s vs {theirs_first:.2} s; no change {ours_again:.2} s ({ours_verified:.2} s listing) vs {theirs_again:.2} s",
                round + 1
            );
            ours.push([ours_first, ours_again, ours_verified]);
            theirs.push([theirs_first, theirs_again]);
            // moto keeps objects in memory: give the 110 MiB of this round back.
            for bucket in [&ours_bucket, &theirs_bucket] {
                empty_and_delete_bucket(&s3, bucket).await;
            }
        }
    });
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ours_at = |i: usize| median(ours.iter().map(|r| r[i]).collect());
    let theirs_at = |i: usize| median(theirs.iter().map(|r| r[i]).collect());
    println!();
    println!(
        "| run (median of {rounds}) | deploy::spa::upload | aws s3 sync | aws s3 sync / ours |"
    );
    println!("| --- | ---: | ---: | ---: |");
    for (label, ours_i, theirs_i) in [
        ("first upload", 0, 0),
        ("no-change re-run", 1, 1),
        (
            "no-change re-run, listing the bucket (`verify_every_deploys = 1`)",
            2,
            1,
        ),
    ] {
        let (a, b) = (ours_at(ours_i), theirs_at(theirs_i));
        println!("| {label} | {a:.2} s | {b:.2} s | **{:.1}x** |", b / a);
    }
}

async fn bucket_keys_all(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += page.unwrap().contents().len();
    }
    count
}

async fn empty_and_delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    loop {
        let page = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
        let objects: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .map(|key| ObjectIdentifier::builder().key(key).build().unwrap())
            .collect();
        if objects.is_empty() {
            break;
        }
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .unwrap();
        s3.delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

/// Writes `count` files (mostly small, some tens of KiB, a few over the 8 MiB multipart
/// threshold), deterministically; returns (total bytes, files over the threshold).
fn generate_dist(dir: &Path, count: usize) -> (u64, usize) {
    let mut total = 0;
    let mut large = 0;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..count {
        let (key, size) = match i {
            0 => ("index.html".to_owned(), 2_000),
            _ if i % 500 == 1 => (format!("media/clip-{i}.0a1b2c{i:02x}.mp4"), 9 * 1024 * 1024),
            _ if i % 10 == 0 => (
                format!("assets/chunk-{i}.{:08x}.js", next() as u32),
                40_000 + (next() % 60_000) as usize,
            ),
            _ if i % 3 == 0 => (format!("img/icon-{i}.svg"), 500 + (next() % 3_000) as usize),
            _ => (
                format!("assets/mod-{i}.{:08x}.js", next() as u32),
                200 + (next() % 8_000) as usize,
            ),
        };
        if size > 8 * 1024 * 1024 {
            large += 1;
        }
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut body = Vec::with_capacity(size);
        while body.len() < size {
            body.extend_from_slice(&next().to_le_bytes());
        }
        body.truncate(size);
        std::fs::write(&path, &body).unwrap();
        total += size as u64;
    }
    (total, large)
}
