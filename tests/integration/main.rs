//! Integration tests: the real `deploy` binary against real git repositories and the
//! real test bed (moto, docker-registry, Docker, terraform). One binary, as in ripgrep.

mod changed;
mod cli;
mod dry_run;
mod environments;
mod faults;
mod images;
mod interactive;
mod lock;
mod outages;
mod preflight;
mod prune;
mod readme;
mod rollback;
mod rollout;
mod secrets;
mod spas;
#[path = "../support/mod.rs"]
mod support;
mod testbed;
