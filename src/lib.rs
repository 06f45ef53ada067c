//! `deploy`: build, push and roll the platform's services and SPAs on AWS.
//!
//! The binary (`main.rs`) is a thin shell over [`deploy::run`]; the modules are public
//! so that integration tests can drive single steps against the real test bed.
//!
//! The folders are the layers, each importing only from those below it
//! (docs/architecture.md; `scripts/layers` checks every rule):
//!
//! - base files, importing nothing of the crate: `error`, `timestamp`, `operator` (who
//!   runs deploy, on which host), `paths` (the one path normaliser);
//! - `model`: the pure values (config, platform, HEAD, plan, environment, history
//!   record); std, serde, anyhow, thiserror and the base files only, and no I/O;
//! - adapters, one per outside system: `aws`, `docker`, `registry`, `spa`, `terraform`,
//!   `git`, `health` and `notify` (the webhook), with the helpers they share (`process`,
//!   `signals`, `http`, `glob`, `build_output`) and `ui`, what the operator sees (no clap, no `cli`);
//!   an adapter never imports `deploy`, `commands`, `changes`, `request` or `cli`;
//! - `checkout` (what is read from the repository), `planning` (the plan made from the
//!   request), `report` (the end-of-run report and the history record finished from it), and
//!   `changes` (what changed
//!   since what runs);
//! - `deploy` (a run) and `commands` (the other subcommands), which never import each
//!   other;
//! - `request` and `cli`: the command line; clap types stop there and at `main.rs`.
//!
//! An adapter imports another only along one of these edges (`scripts/layers` reads
//! this list):
//!
//! - `spa` uses `aws`: the buckets are S3 and the distributions CloudFront, through the
//!   run's one AWS configuration.
//! - `aws` uses `registry`: ECR's authorization token opens a registry client for its
//!   registry.

pub mod aws;
pub mod build_output;
pub mod changes;
pub mod checkout;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod docker;
pub mod error;
pub mod git;
pub mod glob;
pub mod health;
pub mod http;
pub mod model;
pub mod notify;
pub mod operator;
pub mod paths;
pub mod planning;
pub mod process;
pub mod registry;
pub mod report;
pub mod request;
pub mod signals;
pub mod spa;
pub mod terraform;
pub mod timestamp;
pub mod ui;
