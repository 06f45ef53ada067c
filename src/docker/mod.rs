//! Docker: the engine (connect, build, push) on a local socket, over TLS or over ssh,
//! the build context taken from the committed tree and filtered by `.dockerignore`, the
//! images of a run, and the per-daemon lock that keeps `deploy prune` away from
//! running builds.

pub mod address;
pub mod build;
pub mod build_cache;
pub mod build_context;
pub mod build_steps;
pub mod committed_files;
pub mod context;
pub mod daemon_lock;
pub mod docker_config;
pub mod dockerfile_sources;
pub mod dockerignore;
pub mod engine;
pub mod file_sync;
pub mod images;
pub mod push;
pub mod registry_auth;
pub mod session;
pub mod ssh;
pub mod stages;
pub mod tls;
