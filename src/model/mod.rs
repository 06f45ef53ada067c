//! Pure values: the configuration, the platform found in the repository, the plan of a
//! run and its report. No I/O beyond reading `deploy.toml` and the service directories.

pub mod config;
pub mod environment;
pub mod head;
pub mod history;
pub mod plan;
pub mod platform;
