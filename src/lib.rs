//! `deploy`: build, push and roll the platform's services and SPAs on AWS.
//!
//! The binary (`main.rs`) is a thin shell over [`deploy::run`]; the modules are public
//! so that integration tests can drive single steps against the real test bed.

pub mod aws;
pub mod changes;
pub mod cli;
pub mod config;
pub mod context;
pub mod daemon_lock;
pub mod deploy;
pub mod docker;
pub mod dockerignore;
pub mod ecr;
pub mod ecs;
pub mod error;
pub mod git;
pub mod health;
pub mod images;
pub mod live;
pub mod lock;
pub mod logging;
pub mod plan;
pub mod platform;
pub mod profiles;
pub mod progress;
pub mod prune;
pub mod request;
pub mod spa;
pub mod status;
pub mod style;
pub mod summary;
pub mod terraform;
