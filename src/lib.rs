//! `deploy`: build, push and roll the platform's services and SPAs on AWS.
//!
//! The binary (`main.rs`) is a thin shell over [`deploy::run`]; the modules are public
//! so that integration tests can drive single steps against the real test bed.
//!
//! The folders are the layers: `deploy` composes a run; `commands` are the other
//! subcommands; `model` holds the pure values (config, platform, plan, report);
//! `changes` decides what changed since what runs; `docker`, `aws`, `spa`,
//! `terraform`, `git`, `health` and `notify` (the webhook) each talk to one outside system; `ui` is what the
//! operator sees.

pub mod aws;
pub mod build_output;
pub mod changes;
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
pub mod process;
pub mod registry;
pub mod request;
pub mod signals;
pub mod spa;
pub mod terraform;
pub mod timestamp;
pub mod ui;
