//! The ground floor: pure values and the decisions over them, with no I/O and nothing of
//! the crate but the base files (`error`, `timestamp`): the configuration, the platform
//! found in the repository, HEAD, the plan of a run, the environment it talks to and its
//! history record. Reading them from disk is `crate::checkout` and `crate::planning`;
//! showing them is `crate::ui`.

pub mod config;
pub mod drift;
pub mod environment;
pub mod head;
pub mod history;
pub mod plan;
pub mod platform;
