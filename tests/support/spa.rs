//! The SPA upload driven in-process (`deploy::spa`) against the fixture's moto account:
//! shared by the `testbed` target's `spas` module and `bench/spa_upload.rs`.

// aws-config names the profile-file set only under these deprecated aliases; their new
// home, aws-runtime, is not a direct dependency.
#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::{BehaviorVersion, Region};
use deploy::spa::{ManifestLocation, SpaTarget};

use super::{AwsEnv, Fixture, Testbed};

/// The fixture SPA the upload tests and the benchmark use.
pub const SPA: &str = "admin-ui";

/// A runtime with two workers, as deploy's own: the upload runs requests concurrently.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Clients for the fixture's own moto account. The profile files are given to the SDK
/// directly: the test process's environment is shared by tests running in parallel
/// (and holds the test bed's default-account keys, which would win over a profile).
#[allow(deprecated)]
pub async fn clients(env: &AwsEnv, bed: &Testbed) -> (deploy::aws::S3, deploy::aws::CloudFront) {
    let file = |key: &str| env.summary[key].as_str().expect(key).to_owned();
    let files = ProfileFiles::builder()
        .with_file(ProfileFileKind::Credentials, file("credentials_file"))
        .with_file(ProfileFileKind::Config, file("config_file"))
        .build();
    let credentials = ProfileFileCredentialsProvider::builder()
        .configure(
            &aws_config::provider_config::ProviderConfig::without_region()
                .with_http_client(deploy::aws::waiting::https_client()),
        )
        .profile_files(files.clone())
        .profile_name("testbed")
        .build();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(deploy::aws::waiting::https_client())
        .profile_files(files)
        .profile_name("testbed")
        .credentials_provider(credentials)
        .region(Region::new("us-east-1"))
        .endpoint_url(&bed.endpoint)
        .load()
        .await;
    // As deploy makes them: the clients carry the profile their errors name.
    let aws = deploy::aws::Aws {
        sdk,
        profile: Some("testbed".to_owned()),
    };
    (aws.s3(), aws.cloudfront())
}

/// The fixture's admin-ui, bound for its bucket in the fixture's moto account.
pub fn target(fixture: &Fixture, env: &AwsEnv) -> SpaTarget {
    let dir = fixture.path(&format!("apps/{SPA}"));
    let bucket = env.summary["spa_buckets"][SPA].as_str().unwrap();
    SpaTarget {
        name: SPA.into(),
        output: dir.join("dist"),
        dir,
        build: "node build.mjs".into(),
        bucket: bucket.into(),
        distribution_id: env.summary["spa_distribution_ids"][SPA]
            .as_str()
            .map(str::to_owned),
        manifest: ManifestLocation::new(
            env.summary["deploy_lock_bucket"].as_str().unwrap(),
            SPA,
            bucket,
        ),
        env: Vec::new(),
    }
}
