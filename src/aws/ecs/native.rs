//! ECS's own service deployments (ROLLING, BLUE_GREEN, LINEAR, CANARY): the unit ECS
//! rolls a service with since 2025, with its lifecycle stage, bake time, alarms,
//! circuit breaker and pause hooks. A rolled service is followed through the service
//! deployment our apply caused (the one created after the roll began), not through
//! `DescribeServices.deployments`; an account or service without them keeps the older
//! wait ([`Ecs::wait_until_settled`]), and says so. Here, what ECS says read into
//! values (the view, its phase, the time it may take, the lines shown); `follow` asks.

use std::time::Duration;

use aws_sdk_ecs::types::{
    DeploymentConfiguration, DeploymentLifecycleHookStatus, ServiceDeployment,
};
use serde::Serialize;

mod follow;
pub use follow::Wait;
pub use pauses::Answer;

mod pauses;
pub mod watch;

/// What one service deployment says, as shown and recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeploymentView {
    pub arn: String,
    /// ROLLING, BLUE_GREEN, LINEAR or CANARY.
    pub strategy: String,
    /// PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_*…
    pub status: String,
    pub status_reason: Option<String>,
    /// SCALE_UP, BAKE_TIME, PRODUCTION_TRAFFIC_SHIFT…
    pub stage: Option<String>,
    /// The bake time configured for the stage it is in (canary or step bake while
    /// traffic shifts, the deployment's bake in BAKE_TIME), in seconds.
    pub bake_secs: Option<u64>,
    /// How much of that bake is left, counted from when this run first saw the stage.
    pub bake_left_secs: Option<u64>,
    /// The share of production traffic the new revision asked for (LINEAR/CANARY steps).
    pub production_traffic_percent: Option<f64>,
    pub circuit_breaker_failures: i32,
    pub circuit_breaker_threshold: i32,
    pub alarms: Vec<String>,
    pub triggered_alarms: Vec<String>,
    /// Pause hooks waiting for an answer (`ContinueServiceDeployment`).
    pub pauses: Vec<Pause>,
    /// Why ECS rolled back, when it did.
    pub rollback_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    pub hook_id: String,
    /// Unix seconds; past it ECS takes the hook's timeout action.
    pub expires_at: Option<i64>,
}

/// How far the verify step waits for a service deployment (`--wait-until`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    /// Right for each strategy: BLUE_GREEN, LINEAR and CANARY until production traffic
    /// is shifted (the health checks then run during the bake, and the bake is followed
    /// to its end afterwards); ROLLING until complete; any strategy until a pause hook.
    #[default]
    Auto,
    /// Production traffic is on the new revision (its bake may still run).
    TrafficShifted,
    /// The deployment is SUCCESSFUL, bake and clean-up done.
    Complete,
    /// It waits at a pause hook (or is complete): answer it with `deploy continue`.
    Paused,
}

impl WaitUntil {
    pub fn name(self) -> &'static str {
        match self {
            WaitUntil::Auto => "auto",
            WaitUntil::TrafficShifted => "traffic-shifted",
            WaitUntil::Complete => "complete",
            WaitUntil::Paused => "paused",
        }
    }

    /// The point `auto` stands for with `strategy` (the others stand for themselves):
    /// traffic-shifted where ECS bakes after a traffic shift, complete for ROLLING.
    pub fn for_strategy(self, strategy: &str) -> WaitUntil {
        match (self, strategy) {
            (WaitUntil::Auto, "BLUE_GREEN" | "LINEAR" | "CANARY") => WaitUntil::TrafficShifted,
            (WaitUntil::Auto, _) => WaitUntil::Complete,
            (until, _) => until,
        }
    }
}

/// Whether a deployment still running has reached what `until` asks for. `auto` also
/// stops at a pause hook: nobody answers one while deploy waits.
pub fn reached(view: &DeploymentView, until: WaitUntil) -> bool {
    let running = matches!(view.status.as_str(), "IN_PROGRESS" | "PENDING");
    let paused = running && !view.pauses.is_empty();
    match until.for_strategy(&view.strategy) {
        WaitUntil::TrafficShifted => {
            (until == WaitUntil::Auto && paused)
                || running
                    && matches!(
                        view.stage.as_deref(),
                        Some("POST_PRODUCTION_TRAFFIC_SHIFT" | "BAKE_TIME" | "CLEAN_UP")
                    )
        }
        WaitUntil::Paused => paused,
        WaitUntil::Complete | WaitUntil::Auto => until == WaitUntil::Auto && paused,
    }
}

/// What ECS says about a service deployment, for the waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Still going (rollbacks and stops in progress included: wait for their end).
    Running,
    /// A pause hook waits for an answer.
    Paused,
    Succeeded,
    /// ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED or STOPPED: ECS ended it, not on our revision.
    Ended,
}

/// How ECS ended a service deployment, quoted in the failure and the history record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeRollback {
    /// ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED or STOPPED.
    pub status: String,
    pub stage: Option<String>,
    pub reason: String,
    pub triggered_alarms: Vec<String>,
    /// Why deploy asked ECS for it (`StopServiceDeployment`), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by_deploy: Option<String>,
}

impl NativeRollback {
    /// `rolled back by ECS (alarm auth-5xx)`, `stopped by ECS (…)`: the history's words.
    pub fn headline(&self) -> String {
        let verb = match self.status.as_str() {
            "STOPPED" => "stopped by ECS",
            "ROLLBACK_FAILED" => "rollback by ECS FAILED",
            _ => "rolled back by ECS",
        };
        if let Some(why) = &self.requested_by_deploy {
            return format!("{verb} at deploy's request ({why})");
        }
        let why = match self.triggered_alarms.as_slice() {
            [] => self.reason.clone(),
            [one] => format!("alarm {one}"),
            many => format!("alarms {}", many.join(", ")),
        };
        format!("{verb} ({why})")
    }
}

pub fn view(deployment: &ServiceDeployment) -> DeploymentView {
    let config = deployment.deployment_configuration();
    let strategy = config
        .and_then(|c| c.strategy())
        .map_or("ROLLING", |s| s.as_str())
        .to_owned();
    let stage = deployment.lifecycle_stage().map(|s| s.as_str().to_owned());
    let breaker = deployment.deployment_circuit_breaker();
    let alarms = deployment.alarms();
    DeploymentView {
        arn: deployment
            .service_deployment_arn()
            .unwrap_or_default()
            .to_owned(),
        bake_secs: config.and_then(|c| stage_bake(c, &strategy, stage.as_deref())),
        strategy,
        status: deployment
            .status()
            .map_or("PENDING", |s| s.as_str())
            .to_owned(),
        status_reason: deployment.status_reason().map(str::to_owned),
        stage,
        bake_left_secs: None,
        production_traffic_percent: deployment
            .target_service_revision()
            .and_then(|r| r.requested_production_traffic_weight()),
        circuit_breaker_failures: breaker.map_or(0, |b| b.failure_count()),
        circuit_breaker_threshold: breaker.map_or(0, |b| b.threshold()),
        alarms: alarms.map(|a| a.alarm_names().to_vec()).unwrap_or_default(),
        triggered_alarms: alarms
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default(),
        pauses: deployment
            .lifecycle_hook_details()
            .iter()
            .filter(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
            .map(|h| Pause {
                hook_id: h.hook_id().unwrap_or_default().to_owned(),
                expires_at: h.expires_at().map(|t| t.secs()),
            })
            .collect(),
        rollback_reason: deployment
            .rollback()
            .and_then(|r| r.reason())
            .map(str::to_owned),
    }
}

/// The bake that applies in `stage`: the canary's or a linear step's while production
/// traffic shifts, the deployment's own in BAKE_TIME.
fn stage_bake(
    config: &DeploymentConfiguration,
    strategy: &str,
    stage: Option<&str>,
) -> Option<u64> {
    let minutes = match (strategy, stage) {
        (_, Some("BAKE_TIME")) => config.bake_time_in_minutes(),
        ("CANARY", Some("PRODUCTION_TRAFFIC_SHIFT")) => config
            .canary_configuration()
            .and_then(|c| c.canary_bake_time_in_minutes()),
        ("LINEAR", Some("PRODUCTION_TRAFFIC_SHIFT")) => config
            .linear_configuration()
            .and_then(|c| c.step_bake_time_in_minutes()),
        _ => None,
    }?;
    Some(u64::try_from(minutes).unwrap_or(0) * 60)
}

pub fn phase(view: &DeploymentView) -> Phase {
    match view.status.as_str() {
        "SUCCESSFUL" => Phase::Succeeded,
        "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" => Phase::Ended,
        _ if !view.pauses.is_empty() => Phase::Paused,
        _ => Phase::Running,
    }
}

/// The bakes and steps of a deployment with `config`, in minutes: traffic shifting
/// (the canary's bake, or every linear step's bake), then the deployment's own bake.
fn schedule(config: &DeploymentConfiguration) -> (u64, u64) {
    let minutes = |m: Option<i32>| u64::try_from(m.unwrap_or(0)).unwrap_or(0);
    let bake = minutes(config.bake_time_in_minutes());
    let shifting = match config.strategy().map(|s| s.as_str()) {
        Some("CANARY") => minutes(
            config
                .canary_configuration()
                .and_then(|c| c.canary_bake_time_in_minutes()),
        ),
        Some("LINEAR") => {
            let linear = config.linear_configuration();
            let steps = steps_of(linear.and_then(|c| c.step_percent()), 0.0);
            steps * minutes(linear.and_then(|c| c.step_bake_time_in_minutes()))
        }
        _ => 0,
    };
    (shifting, bake)
}

/// How many linear steps of `step` percent take production traffic from `at` to 100%.
fn steps_of(step: Option<f64>, at: f64) -> u64 {
    match step {
        Some(step) if step > 0.0 => ((100.0 - at).max(0.0) / step).ceil() as u64,
        _ => 1,
    }
}

/// How long a deployment with `config` may take to reach `until`: every bake and step
/// it goes through on the way (the final bake only when waiting until complete, or at a
/// pause that may come after it), plus `margin` (`ecs.wait_timeout_secs`) for scaling
/// up and shifting traffic. `overall` (`--wait-timeout`) replaces the whole of it.
pub fn timeout_for(
    config: Option<&DeploymentConfiguration>,
    until: WaitUntil,
    margin: Duration,
    overall: Option<Duration>,
) -> Duration {
    if let Some(overall) = overall {
        return overall;
    }
    let Some(config) = config else {
        return margin;
    };
    let (shifting, bake) = schedule(config);
    let strategy = config.strategy().map_or("ROLLING", |s| s.as_str());
    let minutes = match until.for_strategy(strategy) {
        WaitUntil::TrafficShifted => shifting,
        _ => shifting + bake,
    };
    Duration::from_secs(minutes * 60) + margin
}

/// What a deployment still had to do when deploy stopped waiting for it: the stage, the
/// bake left in it, the linear steps or the canary's shift still ahead, the final bake,
/// a pause waiting for an answer.
pub fn what_is_left(view: &DeploymentView, config: Option<&DeploymentConfiguration>) -> String {
    let stage = view.stage.as_deref().unwrap_or("an unknown stage");
    let mut left = vec![format!("at {stage}")];
    if let Some(percent) = view.production_traffic_percent {
        left[0].push_str(&format!(" ({percent:.0}% production traffic)"));
    }
    if let Some(secs) = view.bake_left_secs {
        left.push(format!("bake {} left in it", span(secs)));
    }
    let shifting = matches!(
        stage,
        "RECONCILE_SERVICE"
            | "PRE_SCALE_UP"
            | "SCALE_UP"
            | "POST_SCALE_UP"
            | "TEST_TRAFFIC_SHIFT"
            | "POST_TEST_TRAFFIC_SHIFT"
            | "PRODUCTION_TRAFFIC_SHIFT"
    );
    if let (Some(config), true) = (config, shifting) {
        if view.strategy == "LINEAR" {
            let linear = config.linear_configuration();
            let at = view.production_traffic_percent.unwrap_or(0.0);
            let steps = steps_of(linear.and_then(|c| c.step_percent()), at);
            let bake = linear
                .and_then(|c| c.step_bake_time_in_minutes())
                .unwrap_or(0);
            if steps > 0 {
                left.push(format!(
                    "then {steps} more linear step(s), {}m bake each",
                    bake.max(0)
                ));
            }
        } else if view.strategy == "CANARY" {
            left.push("then the shift from the canary to all production traffic".to_owned());
        }
        let (_, bake) = schedule(config);
        if bake > 0 {
            left.push(format!("then the {bake}m bake"));
        }
    }
    for pause in &view.pauses {
        left.push(format!(
            "waiting at hook {} (answer it with `deploy continue`)",
            pause.hook_id
        ));
    }
    left.join(", ")
}

/// `4m12s`, `35s`.
fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        _ => format!("{}m{:02}s", secs / 60, secs % 60),
    }
}

/// The one progress line of a followed deployment.
pub fn progress_line(view: &DeploymentView, now_unix: i64) -> String {
    let mut parts = vec![format!(
        "{} {}{}",
        view.strategy,
        view.status,
        view.stage
            .as_deref()
            .map(|s| format!(" at {s}"))
            .unwrap_or_default()
    )];
    if let Some(left) = view.bake_left_secs {
        parts.push(format!("bake {} left", span(left)));
    }
    if let Some(percent) = view.production_traffic_percent {
        parts.push(format!("{percent:.0}% production traffic"));
    }
    if view.circuit_breaker_failures > 0 {
        parts.push(format!(
            "circuit breaker {}/{}",
            view.circuit_breaker_failures, view.circuit_breaker_threshold
        ));
    }
    if !view.triggered_alarms.is_empty() {
        parts.push(format!("ALARM {}", view.triggered_alarms.join(", ")));
    } else if !view.alarms.is_empty() {
        parts.push(format!("{} alarm(s) quiet", view.alarms.len()));
    }
    for pause in &view.pauses {
        let expiry = pause
            .expires_at
            .map(|at| {
                format!(
                    ", expires in {}",
                    span(u64::try_from(at - now_unix).unwrap_or(0))
                )
            })
            .unwrap_or_default();
        parts.push(format!("PAUSED at hook {}{expiry}", pause.hook_id));
    }
    parts.join(" · ")
}

/// What a deployment left running (`--wait-until`) still does, and how to answer a pause.
pub fn next_step(view: &DeploymentView) -> String {
    match view.pauses.as_slice() {
        [] => format!(
            "ECS goes on with {} at {}{}",
            view.strategy,
            view.stage.as_deref().unwrap_or("its next stage"),
            view.bake_left_secs
                .map(|left| format!(", bake {} left", span(left)))
                .unwrap_or_default()
        ),
        pauses => format!(
            "{} {} waits at hook {}: answer with `deploy continue` (or `deploy continue --rollback`), or let its timeout action run ({})",
            view.strategy,
            view.stage.as_deref().unwrap_or("?"),
            pauses
                .iter()
                .map(|p| p.hook_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            view.arn
        ),
    }
}

/// The failure's words: service, strategy, stage, reason and alarms as ECS gives them.
pub fn ended_message(ecs_service: &str, view: &DeploymentView) -> String {
    let what = match view.status.as_str() {
        "STOPPED" => "ECS stopped",
        "ROLLBACK_FAILED" => "ECS tried and FAILED to roll back",
        _ => "ECS rolled back",
    };
    let reason = view
        .rollback_reason
        .as_deref()
        .or(view.status_reason.as_deref())
        .unwrap_or("no reason given");
    let alarms = if view.triggered_alarms.is_empty() {
        String::new()
    } else {
        format!("; alarms in ALARM: {}", view.triggered_alarms.join(", "))
    };
    let breaker = if view.circuit_breaker_failures > 0 {
        format!(
            "; circuit breaker {}/{} failed tasks",
            view.circuit_breaker_failures, view.circuit_breaker_threshold
        )
    } else {
        String::new()
    };
    format!(
        "{what} the {} deployment of {ecs_service} during {}: {reason}{alarms}{breaker} ({})",
        view.strategy,
        view.stage.as_deref().unwrap_or("an unknown stage"),
        view.arn
    )
}

#[cfg(test)]
mod tests;
