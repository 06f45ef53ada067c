//! The running test bed, and fixture environments bootstrapped in moto.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Fixture;

/// The running test bed, as `testbed/testbed.sh up` exported it.
#[derive(Clone)]
pub struct Testbed {
    pub endpoint: String,
    pub registry: String,
    /// The second registry (another environment's: prod's in the promotion tests).
    pub registry2: String,
    pub base_image: String,
    pub python: PathBuf,
    pub terraform: PathBuf,
    pub dir: PathBuf,
}

/// What a test says when the test bed is missing: the `testbed` target fails rather
/// than skips, so that a green run never hides tests that did not run.
const NO_TESTBED: &str = "the `testbed` tests need the test bed: run `scripts/check`, or `testbed/testbed.sh up`, `. .testbed/env` and `cargo test --test testbed` (the tests that need no test bed: `cargo test --test cli`)";

impl Testbed {
    /// The running test bed; panics, naming the fix, when its variables are not exported
    /// or moto or the registry does not answer. Checked once per test process.
    #[track_caller]
    pub fn get() -> Self {
        static FOUND: std::sync::OnceLock<Result<Testbed, String>> = std::sync::OnceLock::new();
        match FOUND.get_or_init(Self::find) {
            Ok(bed) => bed.clone(),
            Err(missing) => panic!("{missing}; {NO_TESTBED}"),
        }
    }

    fn find() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        if var("DEPLOY_TESTBED").is_none() {
            return Err("no test bed (DEPLOY_TESTBED unset)".to_owned());
        }
        let required =
            |name: &str| var(name).ok_or_else(|| format!("the test bed did not export {name}"));
        let bed = Self {
            endpoint: required("AWS_ENDPOINT_URL")?,
            registry: required("DEPLOY_TESTBED_REGISTRY")?,
            registry2: required("DEPLOY_TESTBED_REGISTRY2")?,
            base_image: required("DEPLOY_TESTBED_BASE_IMAGE")?,
            python: required("DEPLOY_TESTBED_PYTHON")?.into(),
            terraform: required("DEPLOY_TESTBED_TERRAFORM")?.into(),
            dir: required("DEPLOY_TESTBED_DIR")?.into(),
        };
        // An env file sourced after `testbed.sh down` exports everything but nothing
        // answers: say so once, not as a connection error deep inside each test.
        let moto = bed
            .endpoint
            .split_once("://")
            .map_or(&*bed.endpoint, |(_, rest)| rest)
            .trim_end_matches('/');
        for (what, address) in [
            ("moto", moto),
            ("the registry", &bed.registry),
            ("the second registry", &bed.registry2),
        ] {
            let answers = std::net::ToSocketAddrs::to_socket_addrs(address)
                .ok()
                .and_then(|mut addresses| addresses.next())
                .is_some_and(|socket| {
                    std::net::TcpStream::connect_timeout(&socket, std::time::Duration::from_secs(2))
                        .is_ok()
                });
            if !answers {
                return Err(format!(
                    "the test bed is not running: {what} does not answer at {address}"
                ));
            }
        }
        Ok(bed)
    }
}

impl Testbed {
    /// Whether the test bed's registry holds `repository:tag` (its own HTTP API).
    pub fn registry_has(&self, repository: &str, tag: &str) -> bool {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.registry).unwrap();
        write!(
            stream,
            "GET /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n",
            self.registry
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.starts_with("HTTP/1.1 200")
    }
}

/// A fixture environment bootstrapped in moto (what the platform's bootstrap.sh would
/// have created), isolated in an account of its own.
pub struct AwsEnv {
    pub summary: serde_json::Value,
    vars: Vec<(String, String)>,
}

impl AwsEnv {
    /// Environment for a child process: the fixture's own profile. The test bed's
    /// static keys are removed, since they would win over the profile.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    /// An SDK config for the fixture's account, for assertions made from the test.
    // aws_config re-exports the profile-file types only under their deprecated names.
    #[allow(deprecated)]
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        let path = |name: &str| {
            self.vars
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        let files = || {
            ProfileFiles::builder()
                .with_file(ProfileFileKind::Config, path("AWS_CONFIG_FILE"))
                .with_file(
                    ProfileFileKind::Credentials,
                    path("AWS_SHARED_CREDENTIALS_FILE"),
                )
                .build()
        };
        let profile = path("AWS_PROFILE");
        let credentials = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(
                &aws_config::provider_config::ProviderConfig::without_region()
                    .with_http_client(deploy::aws::waiting::https_client()),
            )
            .profile_files(files())
            .profile_name(&profile)
            .build();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(deploy::aws::waiting::https_client())
            .profile_files(files())
            .profile_name(&profile)
            .credentials_provider(credentials)
            .load()
            .await
    }

    pub fn configure(&self, command: &mut Command) {
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .envs(self.vars());
    }
}

/// Runs `testbed/fixture_bootstrap.py` for the fixture: ECR repositories, the ECS
/// cluster and services, SPA buckets and distributions, the tfvars file, a credentials
/// profile `testbed`, and the terraform workspace `env`.
pub fn bootstrap(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &["--terraform"])
}

/// As after a real bootstrap: terraform initialised, workspace `env` selected, and a
/// first apply (tag `bootstrap`) so that state and outputs exist.
pub fn bootstrap_applied(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &["--initial-apply"])
}

/// Two environments in one checkout, each applied in an account of its own, with
/// profiles named after them; sandbox, bootstrapped last, is the selected workspace.
pub fn bootstrap_prod_and_sandbox(bed: &Testbed, fixture: &Fixture) -> (AwsEnv, AwsEnv) {
    let prod = bootstrap_with(
        bed,
        fixture,
        "prod",
        &["--initial-apply", "--profile", "prod"],
    );
    let sandbox = bootstrap_with(
        bed,
        fixture,
        "sandbox",
        &["--initial-apply", "--profile", "sandbox"],
    );
    (prod, sandbox)
}

/// The AWS side only: no terraform init/workspace.
pub fn bootstrap_aws(bed: &Testbed, fixture: &Fixture, env: &str) -> AwsEnv {
    bootstrap_with(bed, fixture, env, &[])
}

/// Bootstraps with extra `fixture_bootstrap.py` arguments (`--profile NAME`, ...).
pub fn bootstrap_with(bed: &Testbed, fixture: &Fixture, env: &str, extra: &[&str]) -> AwsEnv {
    bootstrap_in_registry(bed, fixture, env, extra, &bed.registry)
}

/// As [`bootstrap_with`], with the environment's images in `registry` (its tfvars
/// `registry`): the second registry gives prod a registry of its own.
pub fn bootstrap_in_registry(
    bed: &Testbed,
    fixture: &Fixture,
    env: &str,
    extra: &[&str],
    registry: &str,
) -> AwsEnv {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/fixture_bootstrap.py");
    let output = Command::new(&bed.python)
        .env("DEPLOY_TESTBED_REGISTRY", registry)
        .arg(&script)
        .args(["--repo"])
        .arg(fixture.root())
        .args(["--env", env])
        .args(extra)
        .output()
        .expect("the bootstrap script runs");
    assert!(
        output.status.success(),
        "fixture bootstrap failed\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the bootstrap prints JSON");
    let aws_dir = fixture.path(".aws-test");
    let vars = vec![
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_owned(),
            aws_dir.join("credentials").display().to_string(),
        ),
        (
            "AWS_CONFIG_FILE".to_owned(),
            aws_dir.join("config").display().to_string(),
        ),
        (
            "AWS_PROFILE".to_owned(),
            summary["profile"].as_str().unwrap_or("testbed").to_owned(),
        ),
    ];
    AwsEnv { summary, vars }
}

/// A current-thread runtime for SDK calls made by the tests themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Makes ECS run `image` for `service` behind terraform's back (a new task definition
/// revision, then UpdateService), or deletes the service when `image` is `None`.
pub fn set_live_image(env: &AwsEnv, service: &str, image: Option<&str>) {
    let cluster = env.summary["ecs_cluster"].as_str().unwrap().to_owned();
    runtime().block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
        let Some(image) = image else {
            ecs.delete_service()
                .cluster(&cluster)
                .service(service)
                .force(true)
                .send()
                .await
                .unwrap();
            return;
        };
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name(service)
            .image(image)
            .memory(128)
            .build();
        let td = ecs
            .register_task_definition()
            .family(service)
            .container_definitions(container)
            .send()
            .await
            .unwrap();
        let arn = td
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_owned();
        ecs.update_service()
            .cluster(&cluster)
            .service(service)
            .task_definition(arn)
            .send()
            .await
            .unwrap();
    });
}
