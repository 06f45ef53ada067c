//! `deploy continue --var-file tfvars/<env>.tfvars [--services a,b] [--rollback]`:
//! answers every pause hook the last run's service deployments wait at (`--wait-until
//! paused`, or `auto` stopping at a pause), per service or all, with CONTINUE (or
//! ROLLBACK): one `ContinueServiceDeployment` per hook, under the deploy lock, after the
//! confirmation (`-y`), each answer recorded in that run's history record. Then each
//! answered deployment is followed (to its end or its next pause), and the services ECS
//! rolled back, asked to or on its own, are reconciled (`reconcile`).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};

use crate::aws::deploy_lock::{self, Lock, LockLocation};
use crate::aws::ecs::native::{Answer, DeploymentView};
use crate::aws::ecs::Ecs;
use crate::aws::history::{self, HistoryLocation};
use crate::changes::environment::{read_environment, required_history_bucket};
use crate::checkout::{runtime, Checkout};
use crate::error::UsageError;
use crate::model::config;
use crate::model::history::Record;
use crate::model::platform::Platform;
use crate::request::{ContinueRequest, Globals};
use crate::ui::output::{emit_stdout_ended, Ending, OutputFormat};
use crate::ui::progress::Progress;

mod follow;
mod reconcile;
mod report;

use report::{Answered, ContinueReport};

pub fn run(globals: &Globals, request: &ContinueRequest) -> Result<()> {
    let profile = globals.profile.as_deref();
    let contexts = crate::aws::Contexts::for_profiles([("--profile", profile)])?;
    let Checkout { platform, cwd, .. } = Checkout::open(globals.repo.as_deref())?;
    let (var_file, environment) =
        crate::planning::environment_of(&platform, &cwd, &request.var_file)?;
    crate::planning::warn_about_env_tables(&platform, &var_file, &environment);
    let platform = crate::planning::platform_in(&platform, Some(&environment))?;
    let progress = Progress::new(globals.quiet);
    let runtime = runtime()?;
    let mut answers = runtime.block_on(answer_all(
        &platform,
        &environment,
        (&contexts, profile),
        request,
        &progress,
    ))?;
    if globals.output == OutputFormat::Text {
        emit_stdout_ended(&answers.report, globals.output, &Ending::SUCCEEDED)?;
    }
    // The services ECS rolled back: terraform re-applies what they ran before the run.
    let reconciled = reconcile::after_rollbacks(globals, request, &mut answers, &runtime);
    let outcome = match (std::mem::replace(&mut answers.outcome, Ok(())), reconciled) {
        (Ok(()), Ok(None)) => Ok(()),
        (Ok(()), Ok(Some(said))) => Err(anyhow::anyhow!(said)),
        (Err(err), Ok(None)) => Err(err),
        (Err(err), Ok(Some(said))) => Err(anyhow::anyhow!("{err:#}\n\n{said}")),
        (Ok(()), Err(reconcile)) => Err(reconcile),
        (Err(err), Err(reconcile)) => Err(reconcile.context(format!("{err:#}"))),
    };
    if globals.output == OutputFormat::Json {
        let ending = Ending::of(&outcome, globals.verbose, None);
        emit_stdout_ended(&answers.report, globals.output, &ending)?;
    }
    outcome
}

/// What answering did: the report, the run's record as now written, and how it went
/// (an answer or a follow that failed; the reconcile is added after).
struct Answers {
    report: ContinueReport,
    record: Record,
    history: (crate::aws::S3, String),
    outcome: Result<()>,
}

/// A pause found waiting: the service and its deployment as ECS describes it now.
struct Pending {
    service: String,
    deployment: DeploymentView,
}

async fn answer_all(
    platform: &Platform,
    environment: &str,
    (contexts, profile): (&crate::aws::Contexts, Option<&str>),
    request: &ContinueRequest,
    progress: &Progress,
) -> Result<Answers> {
    let answer = if request.rollback {
        Answer::Rollback
    } else {
        Answer::Continue
    };
    let aws = contexts.get(profile).await;
    let config_suffices = platform.config.ecs.cluster.is_some()
        && platform.config.lock.bucket.is_some()
        && platform.config.history.bucket.is_some();
    let (resolved, _) =
        read_environment(platform, profile, Some(environment), config_suffices).await?;
    let bucket = required_history_bucket(platform, &resolved, environment)?;
    let s3 = aws.s3();
    let location = HistoryLocation::new(&bucket, environment);
    let Some(mut record) = history::list(&s3, &location, 1).await?.into_iter().next() else {
        bail!("no run of {environment} is recorded in its history: there is no pause to answer");
    };
    let services = chosen(&record, request.services.as_deref())?;
    let ecs = Ecs::new(
        aws_sdk_ecs::Client::new(&aws.sdk),
        resolved.cluster()?.to_owned(),
        profile.map(str::to_owned),
    );
    let since = UNIX_EPOCH + Duration::from_secs(record.started);
    let mut pending = Vec::new();
    for service in &services {
        let ecs_service = config::expand(&platform.config.ecs.service, service);
        if let Some(deployment) =
            ecs.pending_pauses(&ecs_service, since)
                .await
                .with_context(|| {
                    format!("cannot read the service deployment of {service}; nothing was answered")
                })?
        {
            pending.push(Pending {
                service: service.clone(),
                deployment,
            });
        }
    }
    let mut report = ContinueReport {
        environment: environment.to_owned(),
        run_id: record.run_id.clone(),
        action: answer.name(),
        answered: Vec::new(),
        followed: Vec::new(),
        reconcile: None,
    };
    if pending.is_empty() {
        return Ok(Answers {
            report,
            record,
            history: (s3, bucket),
            outcome: Ok(()),
        });
    }
    eprintln!("{}", report::listing(&record, &pending, answer));
    if !request.assume_yes {
        confirm(pending.len(), environment, answer)?;
    }
    let lock = take_lock(platform, &resolved, environment, &s3, &record, request).await?;
    // From here a signal stops the follow, and the answers are still recorded.
    crate::signals::listen();
    let answered = answer_each(&ecs, &mut record, &pending, answer, &mut report).await;
    let followed = follow::each(platform, &ecs, &mut record, &report, since, progress).await;
    let outcome = answered.and(followed.and_then(|settled| {
        let failed = follow::failures(&settled, answer);
        report.followed = settled;
        failed
    }));
    // The answers given are recorded whatever happened to the others.
    let recorded = history::write(&s3, &bucket, &record)
        .await
        .context("the answers were given but the history record could not be updated");
    let released = match lock {
        Some(lock) => lock.release().await,
        None => Ok(()),
    };
    Ok(Answers {
        report,
        record,
        history: (s3, bucket),
        outcome: outcome.and(recorded).and(released),
    })
}

/// The services of the run to look at: `--services` (each one the run rolled), or all
/// it rolled.
fn chosen(record: &Record, asked: Option<&[String]>) -> Result<Vec<String>> {
    let rolled: Vec<String> = record
        .services
        .iter()
        .filter(|s| s.rolled)
        .map(|s| s.service.clone())
        .collect();
    let Some(asked) = asked else {
        return Ok(rolled);
    };
    if let Some(stranger) = asked.iter().find(|s| !rolled.contains(s)) {
        return Err(UsageError::new(format!(
            "--services {stranger}: the last run ({}) did not roll it (it rolled: {})",
            record.run_id,
            if rolled.is_empty() {
                "nothing".to_owned()
            } else {
                rolled.join(", ")
            }
        ))
        .into());
    }
    Ok(asked.to_vec())
}

/// The operator types `y`, or nothing is answered.
fn confirm(count: usize, environment: &str, answer: Answer) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::new(
            "no terminal to confirm on and -y not given; pass -y to answer the pauses without the prompt. Nothing was answered",
        )
        .into());
    }
    let then = match answer {
        Answer::Rollback => ", then re-apply with terraform the tags they ran before",
        Answer::Continue => "",
    };
    eprint!(
        "Answer {count} pause(s) in {environment} with {}{then}? [y/N] ",
        answer.name()
    );
    std::io::stderr().flush().ok();
    let mut typed = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut typed)
        .context("cannot read the confirmation")?;
    if typed.trim() == "y" {
        Ok(())
    } else {
        Err(UsageError::new("not confirmed: nothing was answered").into())
    }
}

/// The environment's deploy lock, as a deploy takes it (none when the lock is off or
/// has no bucket, said).
async fn take_lock(
    platform: &Platform,
    resolved: &crate::model::environment::Environment,
    environment: &str,
    s3: &crate::aws::S3,
    record: &Record,
    request: &ContinueRequest,
) -> Result<Option<Lock>> {
    if !platform.config.lock.enabled {
        return Ok(None);
    }
    let Some(bucket) = &resolved.lock_bucket else {
        crate::ui::output::warn(&format!(
            "answering WITHOUT the deploy lock: no bucket for it ({}, or lock.enabled = false)",
            config::set_in_config("lock.bucket")
        ));
        return Ok(None);
    };
    let taken = deploy_lock::take(
        s3.clone(),
        LockLocation::new(bucket, environment),
        &record.head,
        request.lock_wait,
        |held, left| {
            let holder = match &held.holder {
                Some(holder) => format!("held by {holder}"),
                None => "held by another run".to_owned(),
            };
            eprintln!(
                "waiting for the deploy lock of {environment} (up to {} more, --lock-wait): {holder}",
                crate::timestamp::age(left.as_secs().max(1))
            );
        },
    )
    .await?;
    Ok(Some(taken.lock))
}

/// One `ContinueServiceDeployment` per hook, each answer added to the record's
/// service; every hook is tried, the failures listed at the end.
async fn answer_each(
    ecs: &Ecs,
    record: &mut Record,
    pending: &[Pending],
    answer: Answer,
    report: &mut ContinueReport,
) -> Result<()> {
    let by = crate::operator::operator();
    let mut failed = Vec::new();
    for Pending {
        service,
        deployment,
    } in pending
    {
        for pause in &deployment.pauses {
            match ecs
                .answer_pause(&deployment.arn, &pause.hook_id, answer)
                .await
            {
                Ok(()) => {
                    let at = crate::timestamp::now_unix();
                    if let Some(change) = record.services.iter_mut().find(|s| &s.service == service)
                    {
                        change.pause_answers.push(format!(
                            "{} at hook {} by {by}, {}",
                            answer.name(),
                            pause.hook_id,
                            crate::timestamp::rfc3339(at)
                        ));
                    }
                    report
                        .answered
                        .push(Answered::new(service, deployment, pause));
                }
                Err(err) => failed.push(format!("  {service} (hook {}): {err:#}", pause.hook_id)),
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    bail!(
        "{} pause(s) could not be answered ({} answered):\n{}",
        failed.len(),
        report.answered.len(),
        failed.join("\n")
    )
}

#[cfg(test)]
mod tests;
