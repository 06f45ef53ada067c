use super::report::*;
use super::*;
use crate::aws::ecs::native::Pause;

fn record() -> Record {
    let service = |name: &str, rolled: bool| {
        serde_json::json!({"service": name, "previous": {"tag": "old"},
            "new": {"tag": "abc1234"}, "rolled": rolled, "settled": true})
    };
    serde_json::from_value(serde_json::json!({
        "format": 1, "run_id": "r1", "environment": "sandbox", "started": 1_700_000_000,
        "finished": 1_700_000_100, "state": "succeeded",
        "who": {"caller_arn": "arn", "user": "ana", "host": "laptop", "pid": 7},
        "command": "deploy", "mode": "services", "head": "abc1234", "image_tag": "abc1234",
        "services": [service("api", true), service("auth", true), service("web", false)]
    }))
    .unwrap()
}

#[test]
fn the_services_answered_are_those_the_run_rolled_or_those_named_among_them() {
    let record = record();
    assert_eq!(chosen(&record, None).unwrap(), ["api", "auth"]);
    assert_eq!(
        chosen(&record, Some(&["auth".to_owned()])).unwrap(),
        ["auth"]
    );
    // web was planned but not rolled; billing not at all: usage errors naming the run's.
    for stranger in ["web", "billing"] {
        let err = chosen(&record, Some(&[stranger.to_owned()])).unwrap_err();
        assert!(err.is::<UsageError>(), "{err:#}");
        assert_eq!(
            err.to_string(),
            format!(
                "--services {stranger}: the last run (r1) did not roll it (it rolled: api, auth)"
            )
        );
    }
}

#[test]
fn the_report_lists_each_hook_answered_or_says_none_waited() {
    let deployment = DeploymentView {
        arn: "arn:aws:ecs:us-east-1:1:service-deployment/c/auth/x".into(),
        strategy: "BLUE_GREEN".into(),
        status: "IN_PROGRESS".into(),
        stage: Some("POST_PRODUCTION_TRAFFIC_SHIFT".into()),
        pauses: vec![Pause {
            hook_id: "hook-auth".into(),
            expires_at: Some(crate::timestamp::now_unix() as i64 + 3600),
        }],
        ..DeploymentView::default()
    };
    let mut report = ContinueReport {
        environment: "sandbox".into(),
        run_id: "r1".into(),
        action: "CONTINUE",
        answered: Vec::new(),
        followed: Vec::new(),
        reconcile: None,
    };
    assert_eq!(
        report.to_string(),
        "no pause of the last run (r1) of sandbox waits for an answer: nothing to do\n"
    );
    report
        .answered
        .push(Answered::new("auth", &deployment, &deployment.pauses[0]));
    let text = report.to_string();
    assert!(
        text.starts_with("answered 1 pause(s) of run r1 in sandbox with CONTINUE:\n  auth: hook hook-auth of its BLUE_GREEN deployment at POST_PRODUCTION_TRAFFIC_SHIFT (arn:aws:ecs:us-east-1:1:service-deployment/c/auth/x)\n"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["answered"][0]["hook_id"], "hook-auth");
    assert_eq!(json["action"], "CONTINUE");
    let pending = [Pending {
        service: "auth".into(),
        deployment,
    }];
    let listing = listing(&record(), &pending, Answer::Continue);
    assert!(
        listing.contains(
            "  auth: BLUE_GREEN at POST_PRODUCTION_TRAFFIC_SHIFT, hook hook-auth, expires in "
        ),
        "{listing}"
    );
}
