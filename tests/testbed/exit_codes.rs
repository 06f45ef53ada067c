//! Exit codes by class against real terraform and moto: an environment whose state has
//! none of the outputs deploy reads (initialised, never applied) lacks settings, which
//! is exit 2 with the fix, as in the `cli` tier, not a failure.

use crate::support::{bootstrap, Fixture, Testbed};

#[test]
fn an_environment_without_the_outputs_deploy_reads_is_a_setup_error() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    let env = bootstrap(&bed, &fixture, "sandbox");
    let run = |command: &str| {
        fixture
            .deploy()
            .aws(&env, &bed)
            .args([command, "--var-file", "tfvars/sandbox.tfvars"])
            .run()
    };
    run("status").usage_error().stderr_has(
        "cannot tell the ECS cluster of sandbox: terraform has no output \"ecs_cluster_name\"",
    );
    run("unlock")
        .usage_error()
        .stderr_has("no bucket for the deploy lock: set lock.bucket in deploy.toml");
    run("history")
        .usage_error()
        .stderr_has("no bucket for the run history of sandbox");
}
