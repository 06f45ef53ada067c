//! The run, step by step (SPEC §3): discover, plan, preflight, who am I, build and
//! push. Each step lives in the module of the system it talks to; this file only
//! composes them, so the whole pipeline reads on one screen.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Context as _, Result};
use serde::Serialize;

use crate::aws;
use crate::cli::{Cli, OutputFormat};
use crate::docker::Engine;
use crate::ecr;
use crate::error::{Interrupted, UsageError};
use crate::git::Repo;
use crate::images::{self, ImageJob, ImageResult, ImageSettings, ImageStatus};
use crate::plan::{self, Action, Mode, Plan};
use crate::platform::Platform;
use crate::progress::Progress;
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
            registry_env: registry_override_env(),
        },
    )?;
    if request.dry_run {
        return print_json_or_text(&plan, request.output);
    }
    refuse_what_is_not_built_yet(&plan)?;
    if !request.assume_yes && !std::io::stdin().is_terminal() {
        // Never wait for input that cannot come (SPEC §3): fail before touching anything.
        return Err(UsageError::new(
            "no terminal to confirm on and -y not given; pass -y (with --profile) to deploy without the prompt. Nothing was touched",
        )
        .into());
    }
    if request.output == OutputFormat::Text {
        print!("{plan}");
    }

    let progress = Progress::new(cli.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let log_dir = repo
        .git_dir()
        .join("deploy")
        .join("logs")
        .join(&plan.image_tag);
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = execute(&platform, &request, &plan, &progress, log_dir) => outcome,
            _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
        }
    });
    // Stop build/push streams now: the daemon cancels work whose connection closed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome
}

/// Execution steps later work adds (SPA upload, terraform roll, --changed): refused up
/// front, before anything is touched, rather than half-run.
fn refuse_what_is_not_built_yet(plan: &Plan) -> Result<()> {
    let mut missing = Vec::new();
    if plan.mode == Mode::Changed {
        missing.push("--changed (reading live tags from ECS)");
    }
    if plan.terraform.is_some() {
        missing.push("the terraform roll (pass --skip-tf)");
    }
    if plan.spas.iter().any(|spa| spa.action == Action::Deploy) {
        missing.push("the SPA upload (pass --skip-spas)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "this version of deploy builds and pushes images only; not available yet: {}. Nothing was touched",
        missing.join(", ")
    )
}

async fn execute(
    platform: &Platform,
    request: &Request,
    plan: &Plan,
    progress: &Progress,
    log_dir: std::path::PathBuf,
) -> Result<()> {
    let deploying: Vec<_> = plan
        .services
        .iter()
        .filter(|step| step.action == Action::Deploy)
        .collect();

    // Preflight: the Docker daemon.
    let engine = Engine::connect().await?;
    tracing::info!(host = %engine.host, builder = ?engine.builder, "docker daemon reachable");

    // Who am I, then a typed y (runbook: "asks for a typed y before pushing").
    let profile = request.profile.as_deref();
    let sdk = aws::load(profile).await;
    let identity = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| anyhow!(aws::explain(&err, profile)))
        .context("cannot tell which AWS account this is (STS GetCallerIdentity)")?;
    let summary = format!(
        "AWS account {} as {}\n  region {}, profile {}\n  deploying {} image(s) tagged {}{}",
        identity.account().unwrap_or("?"),
        identity.arn().unwrap_or("?"),
        sdk.region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "?".into()),
        profile.unwrap_or("(default chain)"),
        deploying.len(),
        plan.image_tag,
        if plan.uncommitted.is_empty() {
            String::new()
        } else {
            format!(
                "\n  built from commit {}: {} uncommitted path(s) are NOT included",
                plan.head.sha,
                plan.uncommitted.len()
            )
        },
    );
    progress.note(&summary);
    if !request.assume_yes {
        confirm()?;
    }

    // ECR: every repository must exist before anything is built.
    let ecr_client = aws_sdk_ecr::Client::new(&sdk);
    let repositories: Vec<String> = deploying
        .iter()
        .map(|step| step.repository.clone())
        .collect();
    ecr::repository_uris(&ecr_client, &repositories, profile).await?;
    let access = ecr::registry_access(&ecr_client, plan.registry.host.as_deref(), profile).await?;
    let jobs: Vec<ImageJob> = deploying
        .iter()
        .map(|step| ImageJob {
            service: step.name.clone(),
            image: format!("{}/{}", access.host, step.image),
        })
        .collect();
    let docker_config = &platform.config.docker;
    let settings = ImageSettings {
        repo_root: platform.root.clone(),
        commit: plan.head.sha.clone(),
        context_dir: docker_config.context.clone(),
        dockerfile: dockerfile_in_context(&docker_config.dockerfile, &docker_config.context)?,
        service_arg: docker_config.service_arg.clone(),
        build_args: docker_config
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        concurrency: docker_config.concurrency,
        log_dir,
    };
    let results = images::build_and_push(
        &engine,
        &jobs,
        &settings,
        &access.docker_credentials(),
        progress,
    )
    .await?;

    report(plan, &results, request.output)?;
    let failures: Vec<&ImageResult> = results
        .iter()
        .filter(|r| r.status == ImageStatus::Failed)
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    let names = |status: ImageStatus| -> String {
        let list: Vec<&str> = results
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.service.as_str())
            .collect();
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    };
    let details: Vec<String> = failures
        .iter()
        .map(|r| r.error.clone().unwrap_or_default())
        .collect();
    bail!(
        "{}\n\n{} image(s) failed. Pushed: {}. Already in the registry: {}. Not pushed: {}{}. Nothing was applied.\nRe-run the same command to resume: images already in the registry are not rebuilt.",
        details.join("\n\n"),
        failures.len(),
        names(ImageStatus::Pushed),
        names(ImageStatus::AlreadyInRegistry),
        names(ImageStatus::Failed),
        match names(ImageStatus::NotStarted).as_str() {
            "none" => String::new(),
            other => format!(", {other} (not started)"),
        }
    )
}

/// The Dockerfile as the daemon names it: relative to the build context.
fn dockerfile_in_context(
    dockerfile: &std::path::Path,
    context: &std::path::Path,
) -> Result<std::path::PathBuf> {
    if context == std::path::Path::new(".") {
        return Ok(dockerfile.to_path_buf());
    }
    dockerfile
        .strip_prefix(context)
        .map(|p| p.to_path_buf())
        .map_err(|_| {
            UsageError::new(format!(
                "docker.dockerfile {} is outside docker.context {}",
                dockerfile.display(),
                context.display()
            ))
            .into()
        })
}

fn confirm() -> Result<()> {
    eprint!("Type y to build and push: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the confirmation")?;
    if answer.trim() == "y" {
        Ok(())
    } else {
        Err(UsageError::new("not confirmed: nothing was built or pushed").into())
    }
}

#[derive(Serialize)]
struct RunReport<'a> {
    plan: &'a Plan,
    images: &'a [ImageResult],
}

fn report(plan: &Plan, results: &[ImageResult], output: OutputFormat) -> Result<()> {
    if output == OutputFormat::Json {
        return print_json_or_text(
            &RunReport {
                plan,
                images: results,
            },
            output,
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nSummary ({}):", plan.image_tag)?;
    for r in results {
        let status = match r.status {
            ImageStatus::AlreadyInRegistry => "already in registry (skipped)",
            ImageStatus::Pushed => "built and pushed",
            ImageStatus::Failed => "FAILED",
            ImageStatus::NotStarted => "not started",
        };
        let timing = match (r.build_secs, r.push_secs) {
            (Some(b), Some(p)) => format!("build {b:.1}s, push {p:.1}s"),
            (Some(b), None) => format!("build {b:.1}s"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {:<16} {:<30} {:<50} {}",
            r.service, status, r.image, timing
        )?;
    }
    Ok(())
}

fn print_json_or_text<T: Serialize + std::fmt::Display>(
    value: &T,
    output: OutputFormat,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match output {
        OutputFormat::Text => write!(stdout, "{value}"),
        OutputFormat::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(value)?),
    }
    .context("cannot write to stdout")
}

/// `DEPLOY_REGISTRY`: push to this host instead of ECR's (a local registry).
fn registry_override_env() -> Option<String> {
    std::env::var("DEPLOY_REGISTRY")
        .ok()
        .filter(|v| !v.is_empty())
}

impl std::fmt::Display for RunReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.plan)
    }
}
