//! `deploy`: build, push and roll the platform's services and SPAs on AWS.
//!
//! The binary (`main.rs`) is a thin shell over [`deploy::run`]; the modules are public
//! so that integration tests can drive single steps against the real test bed.

pub mod cli;
pub mod config;
pub mod deploy;
pub mod error;
pub mod git;
pub mod logging;
pub mod plan;
pub mod platform;
pub mod request;
pub mod terraform;
