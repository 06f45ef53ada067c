use super::*;
use aws_sdk_ecs::types::{
    CanaryConfiguration, DeploymentLifecycleHookDetail, DeploymentStrategy, LinearConfiguration,
    Rollback, ServiceDeploymentAlarms, ServiceDeploymentCircuitBreaker,
    ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
};

fn canary(bake: i32, canary_bake: i32) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Canary)
        .bake_time_in_minutes(bake)
        .canary_configuration(
            CanaryConfiguration::builder()
                .canary_percent(10.0)
                .canary_bake_time_in_minutes(canary_bake)
                .build(),
        )
        .build()
}

#[test]
fn the_timeout_is_every_bake_and_step_plus_the_margin() {
    let margin = Duration::from_secs(600);
    assert_eq!(timeout_for(None, margin), margin);
    // A canary's 10-minute default bake plus its own bake outlast a fixed 10 minutes.
    assert_eq!(
        timeout_for(Some(&canary(10, 5)), margin),
        Duration::from_secs(15 * 60 + 600)
    );
    let linear = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Linear)
        .bake_time_in_minutes(2)
        .linear_configuration(
            LinearConfiguration::builder()
                .step_percent(30.0)
                .step_bake_time_in_minutes(3)
                .build(),
        )
        .build();
    // 30% steps: 4 of them (30, 60, 90, 100), 3 minutes each, then a 2-minute bake.
    assert_eq!(
        timeout_for(Some(&linear), margin),
        Duration::from_secs(14 * 60 + 600)
    );
    let blue_green = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(30)
        .build();
    assert_eq!(
        timeout_for(Some(&blue_green), Duration::from_secs(60)),
        Duration::from_secs(31 * 60)
    );
}

fn rolled_back() -> ServiceDeployment {
    ServiceDeployment::builder()
        .service_deployment_arn("arn:aws:ecs:us-east-1:1:service-deployment/c/auth/x")
        .status(ServiceDeploymentStatus::RollbackSuccessful)
        .lifecycle_stage(ServiceDeploymentLifecycleStage::BakeTime)
        .deployment_configuration(canary(1, 1))
        .rollback(
            Rollback::builder()
                .reason("alarm auth-5xx in ALARM")
                .build(),
        )
        .alarms(
            ServiceDeploymentAlarms::builder()
                .alarm_names("auth-5xx")
                .triggered_alarm_names("auth-5xx")
                .build(),
        )
        .deployment_circuit_breaker(
            ServiceDeploymentCircuitBreaker::builder()
                .failure_count(0)
                .threshold(3)
                .build(),
        )
        .build()
}

#[test]
fn a_rollback_is_named_by_what_ecs_says() {
    let view = view(&rolled_back());
    assert_eq!(phase(&view), Phase::Ended);
    assert_eq!(view.strategy, "CANARY");
    assert_eq!(view.bake_secs, Some(60));
    let message = ended_message("auth", &view);
    assert!(
        message.starts_with(
            "ECS rolled back the CANARY deployment of auth during BAKE_TIME: alarm auth-5xx in ALARM; alarms in ALARM: auth-5xx"
        ),
        "{message}"
    );
    let rollback = NativeRollback {
        status: view.status.clone(),
        stage: view.stage.clone(),
        reason: view.rollback_reason.clone().unwrap(),
        triggered_alarms: view.triggered_alarms.clone(),
        requested_by_deploy: None,
    };
    assert_eq!(rollback.headline(), "rolled back by ECS (alarm auth-5xx)");
    let asked = NativeRollback {
        requested_by_deploy: Some("health check failed".into()),
        ..rollback
    };
    assert_eq!(
        asked.headline(),
        "rolled back by ECS at deploy's request (health check failed)"
    );
}

#[test]
fn a_pause_and_a_bake_show_on_one_line() {
    let paused = ServiceDeployment::builder()
        .status(ServiceDeploymentStatus::InProgress)
        .lifecycle_stage(ServiceDeploymentLifecycleStage::PostProductionTrafficShift)
        .deployment_configuration(canary(1, 1))
        .lifecycle_hook_details(
            DeploymentLifecycleHookDetail::builder()
                .hook_id("h-1")
                .status(DeploymentLifecycleHookStatus::AwaitingAction)
                .expires_at(aws_sdk_ecs::primitives::DateTime::from_secs(1_000_600))
                .build(),
        )
        .build();
    let view = view(&paused);
    assert_eq!(phase(&view), Phase::Paused);
    assert_eq!(
        progress_line(&view, 1_000_000),
        "CANARY IN_PROGRESS at POST_PRODUCTION_TRAFFIC_SHIFT · PAUSED at hook h-1, expires in 10m00s"
    );
    let mut baking = super::view(&rolled_back());
    baking.status = "IN_PROGRESS".into();
    baking.triggered_alarms.clear();
    baking.bake_left_secs = Some(42);
    assert_eq!(phase(&baking), Phase::Running);
    assert_eq!(
        progress_line(&baking, 0),
        "CANARY IN_PROGRESS at BAKE_TIME · bake 42s left · 1 alarm(s) quiet"
    );
    baking.status = "SUCCESSFUL".into();
    assert_eq!(phase(&baking), Phase::Succeeded);
}

#[test]
fn a_wait_until_ends_at_the_stage_asked_for() {
    let mut baking = view(&rolled_back());
    baking.status = "IN_PROGRESS".into();
    assert!(reached(&baking, WaitUntil::TrafficShifted));
    assert!(!reached(&baking, WaitUntil::Complete));
    assert!(!reached(&baking, WaitUntil::Paused));
    baking.stage = Some("PRODUCTION_TRAFFIC_SHIFT".into());
    assert!(!reached(&baking, WaitUntil::TrafficShifted));
    baking.pauses.push(Pause {
        hook_id: "h-1".into(),
        expires_at: None,
    });
    assert!(reached(&baking, WaitUntil::Paused));
    // A rollback under way is never "reached": its end is waited for and reported.
    baking.status = "ROLLBACK_IN_PROGRESS".into();
    baking.stage = Some("BAKE_TIME".into());
    assert!(!reached(&baking, WaitUntil::TrafficShifted));
    assert!(!reached(&baking, WaitUntil::Paused));
}
