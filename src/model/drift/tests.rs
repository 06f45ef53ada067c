use serde_json::json;

use super::*;

/// A closed record of run `id` rolling `changes` (service, previous tag, new tag).
fn record(id: &str, state: &str, changes: serde_json::Value) -> Record {
    serde_json::from_value(json!({
        "format": 1, "run_id": id, "environment": "sandbox", "started": 100,
        "finished": 200, "state": state,
        "who": {"caller_arn": "arn:aws:iam::1:user/a", "user": "a", "host": "h", "pid": 1},
        "command": "deploy", "mode": "changed", "head": "a".repeat(40),
        "image_tag": "aaaaaaa", "services": changes,
    }))
    .unwrap()
}

fn change(service: &str, previous: &str, new: &str) -> serde_json::Value {
    json!({"service": service, "previous": {"tag": previous, "digest": null},
           "new": {"tag": new, "digest": "sha256:1111111111111111"}, "rolled": true,
           "settled": true})
}

fn running(tag: &str, digest: Option<&str>) -> Running {
    Running {
        task_definition: "arn:aws:ecs:us-east-1:1:task-definition/auth:7".into(),
        tag: Some(tag.into()),
        digest: digest.map(str::to_owned),
    }
}

#[test]
fn the_newest_closed_run_that_rolled_the_service_is_what_deploy_recorded() {
    let records = vec![
        record("r3", "running", json!([change("auth", "b", "c")])),
        record("r2", "succeeded", json!([change("api", "x", "y")])),
        record("r1", "succeeded", json!([change("auth", "a", "b")])),
    ];
    let roll = last_recorded(&records, "auth").unwrap();
    assert_eq!((roll.tag.as_str(), roll.run_id.as_str()), ("b", "r1"));
    assert_eq!(roll.how, "deploy");
    assert!(last_recorded(&records, "web").is_none());
}

#[test]
fn an_ecs_rollback_records_the_previous_tag_and_a_reconcile_its_own() {
    let mut ended = change("auth", "a", "b");
    ended["ecs_ended"] = json!("rolled back by ECS (alarm auth-5xx)");
    let records = vec![record("r1", "failed", json!([ended.clone()]))];
    assert_eq!(last_recorded(&records, "auth").unwrap().tag, "a");
    ended["reconciled"] = json!("a0");
    let records = vec![record("r1", "failed", json!([ended]))];
    let roll = last_recorded(&records, "auth").unwrap();
    assert_eq!(roll.tag, "a0");
    assert_eq!(roll.how, "reconciled after ECS's rollback");
}

#[test]
fn another_tag_than_history_or_terraform_is_drift_and_says_both() {
    let records = vec![record("r1", "succeeded", json!([change("auth", "a", "b")]))];
    let drift = verdict(
        "auth",
        running("zz", None),
        last_recorded(&records, "auth"),
        Some("b".into()),
    );
    assert!(drift.drifted);
    assert_eq!(drift.differences.len(), 2, "{drift:?}");
    assert!(
        drift.summary().contains(
            "runs :zz (task definition auth:7) but deploy's last roll (run r1, deploy) put :b"
        ),
        "{}",
        drift.summary()
    );
    assert!(drift.summary().contains("terraform's image_tags say :b"));
    assert_eq!(drift.restore_tag(), Some("b"));
}

#[test]
fn the_recorded_tag_with_its_digest_is_no_drift_and_another_digest_is() {
    let records = vec![record("r1", "succeeded", json!([change("auth", "a", "b")]))];
    let same = verdict(
        "auth",
        running("b", Some("sha256:1111111111111111")),
        last_recorded(&records, "auth"),
        Some("b".into()),
    );
    assert!(!same.drifted, "{same:?}");
    let pushed_again = verdict(
        "auth",
        running("b", Some("sha256:2222222222222222")),
        last_recorded(&records, "auth"),
        None,
    );
    assert!(pushed_again.drifted);
    assert!(pushed_again.summary().contains("pushed again"));
}

#[test]
fn nothing_recorded_is_no_verdict() {
    let drift = verdict("auth", running("b", None), None, None);
    assert!(!drift.drifted);
    assert_eq!(drift.restore_tag(), None);
}

#[test]
fn the_refusal_names_each_service_what_runs_what_was_recorded_and_both_flags() {
    let drift = verdict("auth", running("zz", None), None, Some("b".into()));
    let text = refusal(&[&drift]);
    assert!(text.starts_with("auth changed outside deploy"), "{text}");
    assert!(text.contains("auth: runs :zz"), "{text}");
    assert!(text.contains("--adopt-drift") && text.contains("--restore-drift"));
}

#[test]
fn restore_drift_puts_the_recorded_image_back_unless_the_service_changed_since() {
    let recorded = last_recorded(
        &[record(
            "r1",
            "succeeded",
            json!([change("auth", "a0", "a1")]),
        )],
        "auth",
    );
    let by_history = verdict("auth", running("zz", None), recorded, Some("a1".into()));
    let by_terraform = verdict("auth", running("zz", None), None, Some("t1".into()));
    let unrecorded = ServiceDrift {
        drifted: true,
        ..verdict("auth", running("zz", None), None, None)
    };
    // drift, (changed since the recorded roll, the diff's words), restored tag or None
    // (built), words in the reason
    let table = [
        (&by_history, Some((false, "no change since")), Some("a1"), "drifted (runs :zz): restoring recorded :a1, not rebuilt (no change since)"),
        (&by_terraform, Some((false, "no change since")), Some("t1"), "restoring recorded :t1"),
        (&by_history, Some((true, "services/auth changed")), None, "drifted (runs :zz, recorded :a1): changed since the recorded roll (services/auth changed); the new image supersedes both"),
        (&by_history, None, None, "cannot tell what changed since"),
        (&unrecorded, Some((false, "no change since")), None, "no recorded image to restore"),
    ];
    for (drift, since, restored, words) in table {
        let decided = restoration(drift, since);
        let (tag, reason) = match &decided {
            Restoration::Recorded { tag, reason } => (Some(tag.as_str()), reason),
            Restoration::Build { reason } => (None, reason),
        };
        assert_eq!(tag, restored, "{decided:?}");
        assert!(reason.contains(words), "{reason}");
    }
}
