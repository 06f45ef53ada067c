//! The harness shared by the integration test targets (`cli`: no test bed needed;
//! `testbed`: the real test bed, SPEC §7): runs the real `deploy` binary in temp
//! directories, builds the fixture platform as a real git repository, and finds the
//! test bed.
//!
//! Each target includes this folder with `#[path = "../support/mod.rs"] mod support;`,
//! so not every target uses every helper.

#![allow(dead_code, unused_imports)]

mod docker_use;
mod ecs_deployments;
mod faults;
mod fixture;
pub mod private_registry;
pub mod registry;
mod run;
pub mod spa;
mod testbed;
pub mod webhook;

pub use docker_use::DockerUse;
pub use ecs_deployments::EcsDeployments;
pub use faults::{
    eventually, processes_in, processes_with, unique_marker, FaultProxy, Listener, OnAccept,
    Tinyproxy,
};
pub use fixture::{
    push, Fixture, DEPLOY_API, DEPLOY_SANDBOX, DEPLOY_SERVICES, PUSH_API, SERVICES, UNLOCK_SANDBOX,
};
pub use run::{Background, Deploy, Outcome, Sig};
pub use testbed::{
    bootstrap, bootstrap_applied, bootstrap_aws, bootstrap_in_registry, bootstrap_prod_and_sandbox,
    bootstrap_with, runtime, set_live_image, AwsEnv, Testbed,
};
