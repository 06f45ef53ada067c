//! The tier that needs no test bed: the real `deploy` binary in temp git repositories,
//! for everything it decides before it talks to AWS, Docker or terraform (flags, usage
//! and config errors, help, completions, the man page, dry runs without `--changed`).
//! `cargo test --test cli` runs anywhere, in seconds; `scripts/check --fast` runs it.

mod ci;
mod cli;
mod completions;
mod dry_run;
mod environments;
mod exit_codes;
mod flags;
mod json_ending;
mod profiles;
mod rollback;
#[path = "../support/mod.rs"]
mod support;
