//! Steps 8-10, roll and verify: the reviewed saved plan applied, each rolled service
//! followed in ECS until it settles on its tag, then its health checks. The deploy's
//! roll ([`Run::roll`]) and the automatic restore and reconcile (`restore`) go through
//! the same [`Run::roll_and_verify`]; each says its own failure.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Result};
use futures_util::StreamExt;

use super::messages::pushed_sentence;
use super::run::{cut_short, interruptible, Ready, Run};
use super::stages::Step;
use crate::aws::ecs::native::{next_step, Wait, WaitUntil};
use crate::aws::ecs::{Ecs, RolloutTarget, Settled};
use crate::error::{Interrupted, Stage};
use crate::health::Check;
use crate::model::config;
use crate::report::{RestoreReport, RunReport};
use crate::terraform::{self, Terraform};

mod bakes;

use bakes::still_baking;

/// Services followed in ECS side by side. The apply rolled them all at once, so each is
/// followed from the start: one waiting for a place would be found settled a rollout
/// late (with 8 places, a 9th service doubled the wait). Bounded for platforms with many
/// services: each follow makes about two ECS calls per `ecs.poll_interval_secs`.
const FOLLOWED_AT_ONCE: usize = 32;

/// One roll: what is applied, and what it must settle on.
pub(super) struct Roll<'a> {
    pub terraform: &'a Terraform,
    /// The arguments that apply the reviewed saved plan, and nothing else.
    pub args: Vec<String>,
    /// A `-target`ed apply (terraform's warnings about targeting are expected).
    pub targeted: bool,
    /// Each rolled service, and the tag it must settle on.
    pub targets: Vec<(String, String)>,
    pub until: WaitUntil,
}

/// Where a roll records what it did as it goes: the run's report, or its restore's.
pub(super) trait RollLog {
    /// The apply starts: the service deployments created from `at` on are its own.
    fn applying(&mut self, _at: SystemTime) {}
    fn applied(&mut self, took: Duration);
    /// The apply is done; following ECS starts.
    fn verifying(&mut self) {}
    fn settled(&mut self, rollouts: Vec<Settled>);
    fn checked(&mut self, health: Vec<Check>);
}

/// Why a roll failed, with the step it failed in.
#[derive(Debug)]
pub(super) enum RollFailure {
    /// terraform apply failed, or was interrupted.
    Apply(anyhow::Error),
    /// Services that did not settle on their tag, each with why.
    Unsettled(Vec<(String, String)>),
    /// Health checks that failed, each with why.
    Unhealthy(Vec<(String, String)>),
    /// Following ECS or checking health stopped (an interruption among the causes).
    Stopped(Step, anyhow::Error),
}

impl RollFailure {
    pub fn step(&self) -> Step {
        match self {
            RollFailure::Apply(_) => Step::Roll,
            RollFailure::Unsettled(_) => Step::Verify,
            RollFailure::Unhealthy(_) => Step::Health,
            RollFailure::Stopped(step, _) => *step,
        }
    }
}

/// `(service, why)` for each entry that has an error.
fn failed<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Option<String>)>,
) -> Vec<(String, String)> {
    entries
        .filter_map(|(service, error)| Some((service.clone(), error.clone()?)))
        .collect()
}

/// One line each, `{indent}service: why`, joined by `separator`.
pub(super) fn list(failed: &[(String, String)], indent: &str, separator: &str) -> String {
    failed
        .iter()
        .map(|(service, why)| format!("{indent}{service}: {why}"))
        .collect::<Vec<_>>()
        .join(separator)
}

impl Run<'_> {
    /// The roll a deploy and its restore share: apply, then every target followed
    /// until it settles (interruptible: terraform was applied, ECS goes on), then the
    /// health checks of the targets. Not interruptible by dropping while terraform
    /// applies: it stops itself on a signal and is waited for, so that its state is
    /// never left half-written.
    pub(super) async fn roll_and_verify(
        &self,
        ready: &Ready,
        roll: Roll<'_>,
        log: &mut impl RollLog,
    ) -> Result<(), RollFailure> {
        let since = SystemTime::now();
        log.applying(since);
        let started = Instant::now();
        roll.terraform
            .apply(&roll.args, roll.targeted)
            .await
            .map_err(RollFailure::Apply)?;
        log.applied(started.elapsed());
        log.verifying();
        let services: Vec<String> = roll.targets.iter().map(|(s, _)| s.clone()).collect();
        let targets = roll.targets.clone();
        let settling = self.settle(ready, roll.targets, since, roll.until);
        let rollouts = cut_short(self.progress, settling)
            .await
            .map_err(|err| RollFailure::Stopped(Step::Verify, err))?;
        let unsettled = failed(rollouts.iter().map(|r| (&r.service, &r.error)));
        // `auto`: the deployments left at their traffic shift, still to bake.
        let baking = still_baking(&rollouts, &targets);
        let settled = rollouts.clone();
        log.settled(rollouts);
        if !unsettled.is_empty() {
            return Err(RollFailure::Unsettled(unsettled));
        }
        let checks = interruptible(Stage::AfterApply, self.health_checks(ready, &services))
            .await
            .map_err(|err| RollFailure::Stopped(Step::Health, err))?;
        let unhealthy = failed(checks.iter().map(|c| (&c.service, &c.error)));
        log.checked(checks);
        if !unhealthy.is_empty() {
            return Err(RollFailure::Unhealthy(unhealthy));
        }
        if roll.until == WaitUntil::Auto && !baking.is_empty() {
            self.follow_the_bakes(ready, baking, since, settled, log)
                .await?;
        }
        Ok(())
    }

    /// Steps 8-10 of the deploy: the roll reviewed before the confirmation (none with
    /// `--skip-tf`), verified; timed into the report, each step entered in the run's
    /// stages, a failure said as the deploy's.
    pub(super) async fn roll(&self, ready: &Ready, report: &mut RunReport) -> Result<()> {
        self.stages.enter(Step::Roll);
        let started = Instant::now();
        let (Some(step), Some(terraform), Some(saved)) =
            (&self.plan.terraform, &ready.terraform, &ready.saved_plan)
        else {
            if self.plan.terraform.is_some() {
                report.stage("terraform apply", started);
            }
            return Ok(());
        };
        // Exactly the plan reviewed before the confirmation: no -var, no -target.
        let args = step.apply.apply_saved_args(&saved.file);
        self.progress.note(&format!(
            "running {} (the plan reviewed above)",
            crate::model::plan::shell_words(
                std::iter::once("terraform".to_owned()).chain(args.clone())
            )
        ));
        let targeted = match step.apply.roll.targeted() {
            Some(services) => {
                self.progress.note(&format!(
                    "the roll is targeted on purpose at {} (-target); terraform's warnings about targeting are expected and not shown",
                    services.join(", ")
                ));
                true
            }
            None => false,
        };
        let targets = self
            .plan
            .deploying_services()
            .map(|s| (s.name.clone(), self.plan.tag_of(&s.name).to_owned()))
            .collect();
        let roll = Roll {
            terraform,
            args,
            targeted,
            targets,
            until: self.request.wait_until,
        };
        let mut log = DeployLog {
            report,
            apply_started: started,
            verify_started: None,
        };
        let rolled = self.roll_and_verify(ready, roll, &mut log).await;
        match log.verify_started {
            Some(verify_started) => log.report.stage("verify", verify_started),
            None => log.report.stage("terraform apply", started),
        }
        rolled.map_err(|failure| {
            self.stages.enter(failure.step());
            self.roll_failed(failure, &step.apply.var_file, report)
        })
    }

    /// A failure of the deploy's roll, with the state of the world.
    fn roll_failed(
        &self,
        failure: RollFailure,
        var_file: &std::path::Path,
        report: &RunReport,
    ) -> anyhow::Error {
        match failure {
            RollFailure::Apply(err) if err.is::<Interrupted>() => err,
            RollFailure::Apply(err) => {
                let advice = match err.downcast_ref::<terraform::ApplyFailed>() {
                    Some(failed) => failed.advice(var_file),
                    None => {
                        "fix what the message says, then run the same command again".to_owned()
                    }
                };
                err.context(format!(
                    "the roll failed and nothing was rolled by this run's apply; {}. {advice}: images already in the registry are not rebuilt",
                    pushed_sentence(&report.images)
                ))
            }
            RollFailure::Unsettled(unsettled) => anyhow!(
                "{} service(s) did not settle on {}:\n{}\nImages are pushed and terraform was applied; check the services in ECS (events, stopped tasks) before re-running",
                unsettled.len(),
                self.rolled_tags(),
                list(&unsettled, "  ", "\n")
            ),
            RollFailure::Unhealthy(unhealthy) => anyhow!(
                "{} health check(s) failed after the roll:\n{}\nThe services run {} in ECS but do not answer as expected",
                unhealthy.len(),
                list(&unhealthy, "  ", "\n"),
                self.rolled_tags()
            ),
            RollFailure::Stopped(_, err) => err,
        }
    }

    /// Waits for each (service, tag) to settle in ECS, sorted by service: each through
    /// the service deployment created since `since` (the roll's start), side by side.
    pub(super) async fn settle(
        &self,
        ready: &Ready,
        targets: Vec<(String, String)>,
        since: std::time::SystemTime,
        until: WaitUntil,
    ) -> Result<Vec<Settled>> {
        let ecs_config = &self.platform.config.ecs;
        let ecs = self.ecs(ready)?;
        let targets: Vec<RolloutTarget> = targets
            .into_iter()
            .map(|(service, tag)| RolloutTarget {
                ecs_service: config::expand(&ecs_config.service, &service),
                container: config::expand(&ecs_config.container, &service),
                watched_alarms: self.platform.config.alarms.of(&service),
                answered_hooks: Vec::new(),
                service,
                expected_tag: tag,
            })
            .collect();
        // The margin on top of each deployment's own bakes and steps; the whole wait
        // where a service has no service deployments.
        let wait = Wait {
            until,
            margin: Duration::from_secs(ecs_config.wait_timeout_secs),
            overall: self.request.wait_timeout,
            poll: Duration::from_secs(ecs_config.poll_interval_secs),
        };
        let (ecs, wait) = (&ecs, &wait);
        let mut settled: Vec<Settled> = futures_util::stream::iter(targets)
            .map(|target| async move {
                let item = self.progress.item(&target.service);
                item.state(&format!(
                    "waiting for ECS to settle on :{}",
                    target.expected_tag
                ));
                let settled = ecs.follow(&target, since, wait, &item).await;
                let paused = settled
                    .deployment
                    .as_ref()
                    .filter(|d| d.status != "SUCCESSFUL" && settled.error.is_none());
                match (&settled.error, paused) {
                    (None, Some(deployment)) => item.finish(&format!(
                        "{} on :{} ({:.0}s, --wait-until {}): {}",
                        if deployment.pauses.is_empty() {
                            "traffic shifted"
                        } else {
                            "PAUSED"
                        },
                        target.expected_tag,
                        settled.waited_secs,
                        until.name(),
                        match (until, deployment.pauses.is_empty()) {
                            (WaitUntil::Auto, true) => format!(
                                "health checks now, during the bake, then the deployment is followed to its end ({})",
                                next_step(deployment)
                            ),
                            _ => next_step(deployment),
                        }
                    )),
                    (None, None) => item.finish(&format!(
                        "steady on :{} ({:.0}s{})",
                        target.expected_tag,
                        settled.waited_secs,
                        settled
                            .deployment
                            .as_ref()
                            .map(|d| format!(", {} deployment SUCCESSFUL", d.strategy))
                            .unwrap_or_default()
                    )),
                    (Some(err), _) => item.finish(&format!("NOT steady: {err}")),
                }
                settled
            })
            .buffer_unordered(FOLLOWED_AT_ONCE)
            .collect()
            .await;
        settled.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(settled)
    }

    /// ECS, for the environment's cluster.
    pub(super) fn ecs(&self, ready: &Ready) -> Result<Ecs> {
        Ok(Ecs::new(
            aws_sdk_ecs::Client::new(&ready.aws.sdk),
            ready.environment.cluster()?.to_owned(),
            self.profile.clone(),
        ))
    }

    /// What the roll put the services on, for messages: `:<tag>`, or in an undo
    /// "the tags undo restored" (and the recorded tags `--restore-drift` put back).
    fn rolled_tags(&self) -> String {
        let restored = self.plan.services.iter().any(|s| s.restore.is_some());
        match &self.plan.undo {
            Some(_) => "the tags undo restored".to_owned(),
            None if restored => format!(
                ":{} and the recorded tags --restore-drift put back",
                self.plan.image_tag
            ),
            None => format!(":{}", self.plan.image_tag),
        }
    }

    /// The health checks of `services` that have a prefix (none without a base URL).
    pub(super) async fn health_checks(
        &self,
        ready: &Ready,
        services: &[String],
    ) -> Result<Vec<Check>> {
        let health = &self.platform.config.health;
        let Some(base) = &ready.environment.api_base_url else {
            if !health.prefixes.is_empty() {
                self.progress.note("health checks skipped: no base URL (set health.base_url or a terraform output api_base_url)");
            }
            return Ok(Vec::new());
        };
        let checker = crate::health::Checker::new()?;
        let patience = std::time::Duration::from_secs(health.timeout_secs);
        let mut urls = Vec::new();
        for service in services {
            if let Some(prefix) = health.prefixes.get(service) {
                urls.push((
                    service.clone(),
                    crate::health::join_url(base, prefix, &health.path),
                ));
                if health.docs {
                    urls.push((
                        service.clone(),
                        crate::health::join_url(base, prefix, "docs"),
                    ));
                }
            }
        }
        let checker = &checker;
        Ok(futures_util::stream::iter(urls)
            .map(|(service, url)| async move {
                let check = checker.check(&service, url, patience).await;
                let item = self.progress.item(&service);
                match &check.error {
                    None => item.finish(&format!("GET {} → 200", check.url)),
                    Some(err) => item.finish(&format!("UNHEALTHY: {err}")),
                }
                check
            })
            .buffer_unordered(8)
            .collect()
            .await)
    }
}

/// The deploy's roll, recorded in the run's report and timed: the apply, then verify.
struct DeployLog<'r> {
    report: &'r mut RunReport,
    apply_started: Instant,
    verify_started: Option<Instant>,
}

impl RollLog for DeployLog<'_> {
    fn applying(&mut self, at: SystemTime) {
        self.report.roll_started = Some(at);
    }

    fn applied(&mut self, took: Duration) {
        self.report.apply_secs = Some(took.as_secs_f64());
        self.report.applied = true;
    }

    fn verifying(&mut self) {
        self.report.stage("terraform apply", self.apply_started);
        self.verify_started = Some(Instant::now());
    }

    fn settled(&mut self, rollouts: Vec<Settled>) {
        self.report.rollouts = rollouts;
    }

    fn checked(&mut self, health: Vec<Check>) {
        self.report.health = health;
    }
}

/// A restore (or a reconcile), recorded in its own report.
impl RollLog for RestoreReport {
    fn applied(&mut self, _took: Duration) {
        self.applied = true;
    }

    fn settled(&mut self, rollouts: Vec<Settled>) {
        self.rollouts = rollouts;
    }

    fn checked(&mut self, health: Vec<Check>) {
        self.health = health;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roll_failure_names_its_step_and_lists_what_failed() {
        let failed = vec![
            ("api".to_owned(), "did not settle".to_owned()),
            ("auth".to_owned(), "503".to_owned()),
        ];
        let table = [
            (RollFailure::Apply(anyhow!("apply")), Step::Roll),
            (RollFailure::Unsettled(failed.clone()), Step::Verify),
            (RollFailure::Unhealthy(failed.clone()), Step::Health),
            (
                RollFailure::Stopped(Step::Verify, anyhow!("ecs")),
                Step::Verify,
            ),
            (
                RollFailure::Stopped(Step::Health, anyhow!("checker")),
                Step::Health,
            ),
        ];
        for (failure, step) in table {
            assert_eq!(failure.step(), step, "{failure:?}");
        }
        assert_eq!(
            list(&failed, "  ", "\n"),
            "  api: did not settle\n  auth: 503"
        );
        assert_eq!(list(&failed, "", "; "), "api: did not settle; auth: 503");
    }
}
