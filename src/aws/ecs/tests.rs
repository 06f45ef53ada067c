use super::*;
use aws_sdk_ecs::types::DeploymentRolloutState;

#[test]
fn tags_are_read_from_every_reference_shape() {
    assert_eq!(image_tag_of("127.0.0.1:5000/api:abc1234"), Some("abc1234"));
    assert_eq!(
        image_tag_of("1234.dkr.ecr.us-east-1.amazonaws.com/team/api:abc1234@sha256:00ff"),
        Some("abc1234")
    );
    assert_eq!(
        image_tag_of("1234.dkr.ecr.us-east-1.amazonaws.com/api@sha256:00ff"),
        None
    );
    assert_eq!(image_tag_of("api"), None);
    assert_eq!(image_tag_of("127.0.0.1:5000/api"), None);
    assert_eq!(image_tag_of("api:latest"), Some("latest"));
}

use aws_sdk_ecs::types::Deployment;

fn deployment(status: &str, running: i32, desired: i32, pending: i32) -> Deployment {
    Deployment::builder()
        .status(status)
        .running_count(running)
        .desired_count(desired)
        .pending_count(pending)
        .build()
}

fn service(deployments: Vec<Deployment>) -> Service {
    Service::builder()
        .set_deployments(Some(deployments))
        .build()
}

#[test]
fn one_full_primary_on_the_expected_tag_is_steady() {
    let primary = deployment("PRIMARY", 2, 2, 0);
    assert_eq!(
        settle_state(&service(vec![primary.clone()]), Some("abc1234"), "abc1234"),
        SettleState::Steady
    );
    let completed = Deployment::builder()
        .rollout_state(DeploymentRolloutState::Completed)
        .status("PRIMARY")
        .build();
    assert_eq!(
        settle_state(&service(vec![completed]), Some("abc1234"), "abc1234"),
        SettleState::Steady
    );
}

#[test]
fn starting_draining_or_pending_tasks_are_in_progress() {
    let cases = [
        // The old task set still runs beside the new one.
        vec![
            deployment("PRIMARY", 2, 2, 0),
            deployment("ACTIVE", 1, 0, 0),
        ],
        vec![deployment("PRIMARY", 1, 2, 0)],
        vec![deployment("PRIMARY", 2, 2, 1)],
        // No PRIMARY deployment yet.
        vec![deployment("ACTIVE", 2, 2, 0)],
        vec![],
    ];
    for deployments in cases {
        let described = service(deployments);
        assert_eq!(
            settle_state(&described, Some("abc1234"), "abc1234"),
            SettleState::InProgress,
            "{described:?}"
        );
    }
    let rolling = Deployment::builder()
        .status("PRIMARY")
        .rollout_state(DeploymentRolloutState::InProgress)
        .build();
    assert_eq!(
        settle_state(&service(vec![rolling]), Some("abc1234"), "abc1234"),
        SettleState::InProgress
    );
}

#[test]
fn a_failed_rollout_fails_with_its_reason_even_before_settling() {
    let failed = |reason: Option<&str>| {
        Deployment::builder()
            .status("PRIMARY")
            .running_count(0)
            .desired_count(2)
            .rollout_state(DeploymentRolloutState::Failed)
            .set_rollout_state_reason(reason.map(str::to_owned))
            .build()
    };
    assert_eq!(
        settle_state(
            &service(vec![
                failed(Some("tasks failed to start")),
                deployment("ACTIVE", 2, 2, 0)
            ]),
            Some("old1234"),
            "abc1234"
        ),
        SettleState::Failed {
            reason: "tasks failed to start".into()
        }
    );
    assert_eq!(
        settle_state(&service(vec![failed(None)]), None, "abc1234"),
        SettleState::Failed {
            reason: "no reason given".into()
        }
    );
}

#[test]
fn settling_on_another_tag_is_a_rollback() {
    let primary = deployment("PRIMARY", 2, 2, 0);
    assert_eq!(
        settle_state(&service(vec![primary.clone()]), Some("old1234"), "abc1234"),
        SettleState::RolledBack
    );
    assert_eq!(
        settle_state(&service(vec![primary]), None, "abc1234"),
        SettleState::RolledBack
    );
}
