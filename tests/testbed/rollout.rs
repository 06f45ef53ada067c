//! The full deploy and the targeted roll, end to end: build, push, terraform apply
//! (real terraform whose local-exec rolls ECS in moto), and waiting for ECS to settle.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::{
    bootstrap_applied, AwsEnv, Fixture, Testbed, DEPLOY_API, DEPLOY_SANDBOX, SERVICES,
};

/// Per service: (task definition ARN, image of the service's own container).
pub(super) fn live(env: &AwsEnv) -> BTreeMap<String, (String, String)> {
    let cluster = env.summary["ecs_cluster"]
        .as_str()
        .expect("cluster in the bootstrap summary")
        .to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let ecs = aws_sdk_ecs::Client::new(&env.sdk().await);
            let mut live = BTreeMap::new();
            for service in SERVICES {
                let described = ecs
                    .describe_services()
                    .cluster(&cluster)
                    .services(service)
                    .send()
                    .await
                    .unwrap();
                let arn = described.services()[0]
                    .task_definition()
                    .unwrap()
                    .to_owned();
                let td = ecs
                    .describe_task_definition()
                    .task_definition(&arn)
                    .send()
                    .await
                    .unwrap();
                let image = td
                    .task_definition()
                    .unwrap()
                    .container_definitions()
                    .iter()
                    .find(|c| c.name() == Some(service))
                    .and_then(|c| c.image())
                    .unwrap()
                    .to_owned();
                live.insert(service.to_owned(), (arn, image));
            }
            live
        })
}

fn terraform_output(
    bed: &Testbed,
    fixture: &Fixture,
    env: &AwsEnv,
    name: &str,
) -> serde_json::Value {
    let mut command = Command::new(&bed.terraform);
    command
        .args(["-chdir=infra/terraform/aws", "output", "-json", name])
        .current_dir(fixture.root());
    env.configure(&mut command);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn full_deploy_rolls_every_service_to_the_new_sha() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    let out = fixture.deploy().aws(&env, &bed).args(DEPLOY_SANDBOX).run();
    out.success();
    for (service, (_, image)) in live(&env) {
        assert_eq!(
            image,
            format!("{}/{service}:{tag}", bed.registry),
            "{service}"
        );
        out.stdout_has(&format!("yes (:{tag})"));
    }
    assert_eq!(
        terraform_output(&bed, &fixture, &env, "image_tag"),
        tag.as_str()
    );
    assert_eq!(
        out.stdout.matches("built, pushed").count(),
        9,
        "{}",
        out.stdout
    );

    // Both SPAs are in their buckets, recorded with the SHA, and the summary says so.
    let buckets = env.summary["spa_buckets"].as_object().unwrap().clone();
    let deployed: Vec<Option<String>> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s3 = deploy::aws::s3(&env.sdk().await);
            let private = env.summary["deploy_lock_bucket"].as_str().unwrap();
            let mut deployed = Vec::new();
            for (name, bucket) in &buckets {
                let bucket = bucket.as_str().unwrap();
                let manifest = deploy::spa::ManifestLocation::new(private, name, bucket);
                s3.head_object()
                    .bucket(bucket)
                    .key("index.html")
                    .send()
                    .await
                    .expect("index.html uploaded");
                deployed.push(
                    deploy::spa::deployed_sha(
                        &deploy::aws::Service::new(s3.clone(), None),
                        Some(&manifest),
                        bucket,
                    )
                    .await
                    .unwrap(),
                );
            }
            deployed
        });
    assert!(
        deployed
            .iter()
            .all(|sha| sha.as_deref().is_some_and(|s| s.starts_with(&tag))),
        "{deployed:?}"
    );
    for (name, bucket) in &buckets {
        let row = out.stdout.lines().find(|line| {
            line.starts_with(name.as_str()) && line.contains(bucket.as_str().unwrap())
        });
        assert!(
            row.is_some_and(|row| row.split_whitespace().nth(2) == Some("4")),
            "{name}: {}",
            out.stdout
        );
    }
}

#[test]
fn services_rolls_only_the_named_service() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let before = live(&env);

    fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "auth",
            "--profile",
            "testbed",
            "-y",
        ])
        // Piped, and without NO_COLOR: terraform must not colour a log.
        .env_remove("NO_COLOR")
        .run()
        .success()
        .stdout_has(&format!("yes (:{tag})"))
        // The fixture's root requires image_tag (no default): a partial roll sets it too.
        .stderr_lacks("No value for required variable")
        .stderr_lacks("\u{1b}[")
        // One line of ours instead of terraform's two warning boxes on every -target.
        .stderr_has("the roll is targeted on purpose at auth")
        .stderr_lacks("Resource targeting is in effect")
        .stderr_lacks("Applied changes may be incomplete");
    assert_only_rolled(&before, &live(&env), &["auth"], &bed.registry, &tag);
}

/// Each of `rolled` runs `<registry>/<service>:<tag>` on a new task definition; every
/// other service is untouched.
#[track_caller]
pub(super) fn assert_only_rolled(
    before: &BTreeMap<String, (String, String)>,
    after: &BTreeMap<String, (String, String)>,
    rolled: &[&str],
    registry: &str,
    tag: &str,
) {
    for service in SERVICES {
        if rolled.contains(&service) {
            assert_eq!(after[service].1, format!("{registry}/{service}:{tag}"));
            assert_ne!(after[service].0, before[service].0, "{service}");
        } else {
            assert_eq!(
                after[service], before[service],
                "{service} must be untouched"
            );
        }
    }
}

#[test]
fn a_rolled_back_service_fails_the_deploy() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        // The fixture's roll script puts auth back on its previous revision, as the ECS
        // deployment circuit breaker would.
        .env("DEPLOY_TESTBED_ROLLBACK_SERVICES", "auth")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "auth,api",
            "--profile",
            "testbed",
            "-y",
        ])
        .run()
        .code(1)
        .stderr_has(&format!("instead of :{tag}"))
        .stderr_has("1 service(s) did not settle")
        .stdout_has("NO (:bootstrap)");
}

#[test]
fn a_service_that_never_settles_times_out_with_what_it_waited_on() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!(
            "{config}\n[ecs]\nwait_timeout_secs = 3\npoll_interval_secs = 1\n# {:?}\n",
            std::time::SystemTime::now()
        ),
    );
    fixture.commit_all("short ECS wait");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_TESTBED_STUCK_SERVICES", "files")
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "files",
            "--profile",
            "testbed",
            "-y",
        ])
        .run()
        .code(1)
        .stderr_has("did not settle within 3s")
        .stderr_has("task(s) running");
}

/// The shape the fixture had first: `image_tag` with a default. Partial rolls work on
/// it too (the fixture itself now requires it).
#[test]
fn a_partial_roll_works_on_a_root_whose_image_tag_has_a_default() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let variables = "infra/terraform/aws/variables.tf";
    let text = std::fs::read_to_string(fixture.path(variables)).unwrap();
    let required = "  type        = string\n}\n\nvariable \"image_tags\"";
    assert!(
        text.contains(required),
        "the fixture's image_tag changed shape"
    );
    fixture.write(
        variables,
        &text.replace(
            required,
            "  type        = string\n  default     = \"\"\n}\n\nvariable \"image_tags\"",
        ),
    );
    let tag = fixture.commit_all("image_tag with a default");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let before = live(&env);

    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .run()
        .success();
    assert_only_rolled(&before, &live(&env), &["api"], &bed.registry, &tag);
}

/// A variable the root requires and the tfvars lacks fails the same way on every
/// run: the roll's plan, in preflight, quotes terraform and says what to fix, not
/// "re-run", before anything is built.
#[test]
fn a_failed_plan_quotes_terraform_says_what_to_fix_and_builds_nothing() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture.write(
        "infra/terraform/aws/db.tf",
        "variable \"db_host\" {\n  type = string\n}\n",
    );
    let tag = fixture.commit_all("a new required variable");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .run()
        .code(1)
        .stderr_has(
            "terraform plan failed (exit status: 1)\n  Error: No value for required variable",
        )
        .stderr_has("give it a value in tfvars/sandbox.tfvars")
        .stderr_has("cannot plan the roll; nothing was built, pushed or applied")
        .stderr_lacks("this looks transient")
        .stderr_lacks("building");
    assert!(!bed.registry_has("api", &tag), "nothing may be pushed");
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}

/// `terraform.targets` that do not match the root's addresses would apply nothing;
/// found in preflight, before any build.
#[test]
fn targets_that_match_nothing_stop_the_run_before_any_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    let ours = r#"targets = ['terraform_data.task_definition["{service}"]', 'terraform_data.service["{service}"]']"#;
    assert!(config.contains(ours), "the fixture's targets changed");
    // deploy's defaults: the addresses of an aws-provider root, not of this one.
    fixture.write(
        "deploy.toml",
        &config.replace(
            ours,
            r#"targets = ['aws_ecs_task_definition.service["{service}"]', 'aws_ecs_service.service["{service}"]']"#,
        ),
    );
    let tag = fixture.commit_all("targets of another root");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(DEPLOY_API)
        .run()
        .usage_error()
        .stderr_has("match nothing terraform knows")
        .stderr_has(r#"api: aws_ecs_task_definition.service["api"], aws_ecs_service.service["api"] match nothing in the state; terraform has terraform_data.service["api"], terraform_data.task_definition["api"]"#)
        .stderr_has("Set terraform.targets in deploy.toml")
        .stderr_has("Nothing was built or pushed");
    assert!(!bed.registry_has("api", &tag), "nothing may be pushed");
    fixture.assert_nothing_rolled_and_no_lock_left(&env, &bed);
}

#[test]
fn a_failed_apply_says_what_was_pushed_and_that_a_rerun_resumes() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_TESTBED_FAIL_SERVICES", "api")
        .args(DEPLOY_API)
        .run()
        .code(1)
        .stderr_has("terraform apply failed")
        .stderr_has("Error: local-exec provisioner error")
        .stderr_has("Pushed: api")
        .stderr_has("run the same command again: images already in the registry are not rebuilt");
}

#[test]
fn a_workspace_that_does_not_match_the_tfvars_stops_before_anything_is_touched() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    std::fs::copy(
        fixture.path("infra/terraform/aws/tfvars/sandbox.tfvars"),
        fixture.path("infra/terraform/aws/tfvars/prod.tfvars"),
    )
    .unwrap();
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/prod.tfvars",
            "--skip-spas",
            "--profile",
            "testbed",
            "-y",
        ])
        .run();
    out.usage_error()
        .stderr_has("the terraform workspace is \"sandbox\" but the tfvars file is for \"prod\"")
        .stderr_has("terraform -chdir=infra/terraform/aws workspace new prod");
    assert!(
        out.stdout.contains("Plan:") && !out.stdout.contains("Summary"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_profile_that_does_not_exist_is_a_usage_error() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = crate::support::bootstrap_aws(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--skip-tf", "--skip-spas", "--profile", "nope", "-y"])
        .run()
        .usage_error()
        .stderr_has("--profile nope: no such AWS profile")
        .stderr_has("testbed");
}

/// A static HTTP server standing in for the load balancer, stopped on drop.
pub(super) struct HttpServer {
    child: std::process::Child,
    pub(super) port: u16,
    _root: tempfile::TempDir,
}

impl HttpServer {
    pub(super) fn serving(bed: &Testbed, files: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        for file in files {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "ok\n").unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bed.python)
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self {
            child,
            port,
            _root: root,
        }
    }
}

impl HttpServer {
    /// Serves `file` (`ok`) from now on.
    pub(super) fn serve(&self, file: &str) {
        let path = self._root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "ok\n").unwrap();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn health_checks_follow_the_roll_and_a_failing_one_fails_the_deploy() {
    let bed = Testbed::get();
    let server = HttpServer::serving(&bed, &["v1/auth/health", "v1/auth/docs"]);
    let fixture = Fixture::new();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!(
            "{config}\n[health]\nbase_url = \"http://127.0.0.1:{}\"\ndocs = true\ntimeout_secs = 2\n[health.prefixes]\nauth = \"/v1/auth\"\napi = \"/api\"\n# {:?}\n",
            server.port,
            std::time::SystemTime::now()
        ),
    );
    fixture.commit_all("health checks");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--skip-spas",
            "--services",
            "auth,api",
            "--profile",
            "testbed",
            "-y",
            "--output",
            "json",
        ])
        .run();
    out.code(1)
        .stderr_has(&format!(
            "GET http://127.0.0.1:{}/api/health answered 404",
            server.port
        ))
        .stderr_has("2 health check(s) failed");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let healthy: Vec<(String, bool)> = report["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["url"]
                    .as_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_owned(),
                c["healthy"].as_bool().unwrap(),
            )
        })
        .collect();
    let port = server.port;
    for (url, ok) in [
        (format!("{port}/v1/auth/health"), true),
        (format!("{port}/v1/auth/docs"), true),
        (format!("{port}/api/health"), false),
        (format!("{port}/api/docs"), false),
    ] {
        assert!(healthy.contains(&(url.clone(), ok)), "{url}: {healthy:?}");
    }
}
