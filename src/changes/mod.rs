//! What changed since what runs: the git diff of a service's inputs between two
//! commits, and the survey of what ECS runs against HEAD (`--changed`, `status`).

pub mod diff;
pub mod live;
