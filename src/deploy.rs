//! The run, step by step (SPEC §3): discover, plan, then execute the plan.
//!
//! Each step lives in the module of the system it talks to; this file only composes
//! them, so the whole pipeline reads on one screen.

use std::io::Write;

use anyhow::{Context as _, Result};

use crate::cli::{Cli, OutputFormat};
use crate::git::Repo;
use crate::plan::{self, Plan};
use crate::platform::Platform;
use crate::request::Request;

pub fn run(cli: &Cli) -> Result<()> {
    let request = Request::from_cli(cli);
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let start = match &request.start_dir {
        Some(dir) => cwd.join(dir),
        None => cwd.clone(),
    };

    // 1. Discover.
    let repo = Repo::discover(&start)?;
    let platform = Platform::load(repo.root())?;
    let head = repo.head()?;
    let uncommitted = repo.uncommitted_paths()?;
    tracing::info!(root = %repo.root().display(), tag = %head.short_sha, "repository found");

    // 2. Plan.
    let plan = Plan::new(
        &platform,
        &request,
        plan::Context {
            head,
            uncommitted,
            cwd: &cwd,
            registry_env: std::env::var("DEPLOY_REGISTRY").ok().filter(|v| !v.is_empty()),
        },
    )?;
    print_plan(&plan, request.output)?;
    if request.dry_run {
        return Ok(());
    }

    anyhow::bail!(
        "this build of deploy can only plan (--dry-run); building, pushing and rolling are not available yet. Nothing was built, pushed or applied."
    )
}

fn print_plan(plan: &Plan, output: OutputFormat) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match output {
        OutputFormat::Text => write!(stdout, "{plan}"),
        OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(plan)?),
    }
    .context("cannot write to stdout")
}
