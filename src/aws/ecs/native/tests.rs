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

fn linear(bake: i32, step: f64, step_bake: i32) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Linear)
        .bake_time_in_minutes(bake)
        .linear_configuration(
            LinearConfiguration::builder()
                .step_percent(step)
                .step_bake_time_in_minutes(step_bake)
                .build(),
        )
        .build()
}

fn blue_green(bake: i32) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::BlueGreen)
        .bake_time_in_minutes(bake)
        .build()
}

#[test]
fn the_timeout_is_every_bake_and_step_on_the_way_plus_the_margin() {
    use WaitUntil::{Auto, Complete, Paused, TrafficShifted};
    let rolling = DeploymentConfiguration::builder()
        .strategy(DeploymentStrategy::Rolling)
        .build();
    let ten = Duration::from_secs(600);
    let min = |m: u64| Duration::from_secs(m * 60);
    // (configuration, until, margin, --wait-timeout, expected)
    let table = [
        // No deployment configuration (nothing to follow): the margin alone.
        (None, Complete, ten, None, ten),
        (Some(rolling.clone()), Complete, ten, None, ten),
        (Some(rolling), Auto, ten, None, ten),
        // A canary's 10-minute default bake plus its own bake outlast a fixed 10 minutes.
        (Some(canary(10, 5)), Complete, ten, None, min(15) + ten),
        // Until traffic is shifted: the canary's bake, not the final one.
        (Some(canary(10, 5)), TrafficShifted, ten, None, min(5) + ten),
        (Some(canary(10, 5)), Auto, ten, None, min(5) + ten),
        // A pause may come after the bake: all of it.
        (Some(canary(10, 5)), Paused, ten, None, min(15) + ten),
        // 30% steps: 4 of them (30, 60, 90, 100), 3 minutes each, then a 2-minute bake.
        (Some(linear(2, 30.0, 3)), Complete, ten, None, min(14) + ten),
        (
            Some(linear(2, 30.0, 3)),
            TrafficShifted,
            ten,
            None,
            min(12) + ten,
        ),
        // 25% steps divide 100 exactly: 4 steps.
        (Some(linear(0, 25.0, 1)), Complete, ten, None, min(4) + ten),
        (
            Some(blue_green(30)),
            Complete,
            Duration::from_secs(60),
            None,
            min(31),
        ),
        (
            Some(blue_green(30)),
            Auto,
            Duration::from_secs(60),
            None,
            min(1),
        ),
        // --wait-timeout replaces the whole of it, whatever the configuration.
        (Some(blue_green(30)), Complete, ten, Some(min(3)), min(3)),
        (None, Complete, ten, Some(min(3)), min(3)),
    ];
    for (config, until, margin, overall, expected) in table {
        assert_eq!(
            timeout_for(config.as_ref(), until, margin, overall),
            expected,
            "{config:?} until {until:?} margin {margin:?} overall {overall:?}"
        );
    }
}

#[test]
fn auto_waits_until_traffic_is_shifted_where_ecs_bakes_and_until_complete_for_rolling() {
    let table = [
        ("BLUE_GREEN", WaitUntil::TrafficShifted),
        ("LINEAR", WaitUntil::TrafficShifted),
        ("CANARY", WaitUntil::TrafficShifted),
        ("ROLLING", WaitUntil::Complete),
    ];
    for (strategy, point) in table {
        assert_eq!(WaitUntil::Auto.for_strategy(strategy), point, "{strategy}");
        // The others stand for themselves.
        assert_eq!(WaitUntil::Paused.for_strategy(strategy), WaitUntil::Paused);
    }
    let mut baking = view(&rolled_back());
    baking.status = "IN_PROGRESS".into();
    assert!(reached(&baking, WaitUntil::Auto));
    baking.strategy = "ROLLING".into();
    assert!(!reached(&baking, WaitUntil::Auto));
    // A pause ends auto's wait whatever the strategy: nobody answers it meanwhile.
    baking.pauses.push(Pause {
        hook_id: "h-1".into(),
        expires_at: None,
    });
    assert!(reached(&baking, WaitUntil::Auto));
    assert!(!reached(&baking, WaitUntil::Complete));
}

#[test]
fn a_cut_wait_says_what_is_left() {
    let shifting = |strategy: &str, percent: Option<f64>, bake_left: Option<u64>| DeploymentView {
        strategy: strategy.into(),
        status: "IN_PROGRESS".into(),
        stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
        production_traffic_percent: percent,
        bake_left_secs: bake_left,
        ..DeploymentView::default()
    };
    let config = linear(10, 25.0, 3);
    assert_eq!(
        what_is_left(&shifting("LINEAR", Some(25.0), Some(100)), Some(&config)),
        "at PRODUCTION_TRAFFIC_SHIFT (25% production traffic), bake 1m40s left in it, then 3 more linear step(s), 3m bake each, then the 10m bake"
    );
    assert_eq!(
        what_is_left(&shifting("CANARY", Some(10.0), None), Some(&canary(5, 5))),
        "at PRODUCTION_TRAFFIC_SHIFT (10% production traffic), then the shift from the canary to all production traffic, then the 5m bake"
    );
    let mut baking = shifting("BLUE_GREEN", None, Some(1500));
    baking.stage = Some("BAKE_TIME".into());
    assert_eq!(
        what_is_left(&baking, Some(&blue_green(30))),
        "at BAKE_TIME, bake 25m00s left in it"
    );
    baking.pauses.push(Pause {
        hook_id: "h-1".into(),
        expires_at: None,
    });
    assert_eq!(
        what_is_left(&baking, None),
        "at BAKE_TIME, bake 25m00s left in it, waiting at hook h-1 (answer it with `deploy continue`)"
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
