//! Per-environment names in deploy.toml against moto: `cluster = "platform-{env}"`
//! is read as each environment's own cluster, and an environment whose state is empty
//! gets advice that holds for every environment.

use crate::support::{bootstrap_prod_and_sandbox, Fixture, Testbed};

#[test]
fn a_cluster_named_with_env_is_each_environment_s_own() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let (prod, sandbox) = bootstrap_prod_and_sandbox(&bed, &fixture);
    for (env, aws) in [("prod", &prod), ("sandbox", &sandbox)] {
        assert_eq!(
            aws.summary["ecs_cluster"],
            format!("platform-{env}"),
            "the test bed's clusters"
        );
    }
    let status = |env: &str| {
        fixture
            .deploy()
            .aws(&sandbox, &bed)
            .env_remove("AWS_PROFILE")
            .args(["status", "--output", "json", "--profile", env])
            .args(["--var-file", &format!("tfvars/{env}.tfvars")])
            .run()
    };

    // A new environment: its workspace exists, its state is empty.
    fixture
        .terraform(&sandbox, &bed, &["workspace", "new", "staging"])
        .status
        .success()
        .then_some(())
        .expect("terraform workspace new staging");
    let tfvars =
        std::fs::read_to_string(fixture.path("infra/terraform/aws/tfvars/prod.tfvars")).unwrap();
    fixture.write("infra/terraform/aws/tfvars/staging.tfvars", &tfvars);
    let empty = fixture
        .deploy()
        .aws(&sandbox, &bed)
        .args(["status", "--var-file", "tfvars/staging.tfvars"])
        .run();
    assert!(empty.code != 0, "{empty}");
    empty
        .stderr_has(
            "cannot tell the ECS cluster of staging: terraform has no output \"ecs_cluster_name\"",
        )
        .stderr_has("ecs.cluster = \"<name>-{env}\"")
        .stderr_has("[env.staging]");

    // The cluster from deploy.toml alone: the output that names it is not read.
    fixture.write(
        "deploy.toml",
        "[ecs]\ncluster = \"platform-{env}\"\n[terraform.outputs]\necs_cluster = \"no_such_output\"\n",
    );
    for env in ["prod", "sandbox"] {
        let out = status(env);
        out.success();
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["cluster"], format!("platform-{env}"), "{json}");
        let services = json["services"].as_array().unwrap();
        assert_eq!(services.len(), 9, "{json}");
        // Each environment's services were found running in its own cluster.
        for service in services {
            assert_eq!(service["live"]["state"], "running", "{env}: {service}");
        }
    }

    // Without an environment, the name is not sent as "platform-{env}".
    fixture
        .deploy()
        .aws(&sandbox, &bed)
        .args(["status", "--profile", "prod"])
        .run()
        .usage_error()
        .stderr_has("ecs.cluster in")
        .stderr_has("pass --var-file tfvars/<workspace>.tfvars");
}
