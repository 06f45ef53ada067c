//! The test-bed tier: the real `deploy` binary against real git repositories and the
//! real test bed (moto, docker-registry, Docker, terraform; SPEC §7). One binary, as in
//! ripgrep. Every test fails, never skips, when the test bed is missing: run
//! `scripts/check`, or `testbed/testbed.sh up`, `. .testbed/env` and
//! `cargo test --test testbed`.

mod build_cache;
mod changed;
mod context;
mod contexts;
mod diagnostics;
mod drift;
mod ecs_native;
mod ecs_waiting;
mod env_names;
mod environments;
mod exit_codes;
mod faults;
mod history;
mod images;
mod interactive;
mod json_ending;
mod lock;
mod network;
mod notify;
mod outages;
mod overlap;
mod preflight;
mod private_base;
mod promote;
mod prune;
mod readme;
mod registry_copy;
mod remote;
mod review;
mod rollback;
mod rollout;
mod secrets;
mod spa_releases;
mod spas;
#[path = "../support/mod.rs"]
mod support;
mod testbed;
mod web_identity;
