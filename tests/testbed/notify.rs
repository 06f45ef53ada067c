//! Notifications (`[notify] webhook_env`): a webhook on the loopback hears the start
//! and the end of a run, with who, where, what and how it ended; its URL, a secret,
//! is printed nowhere, even at `-vv` with every library tracing; a webhook that
//! refuses, fails or hangs is one warning and never fails the deploy.

use crate::support::webhook::{field, refused_url, Answer, Webhook};
use crate::support::{bootstrap_applied, unique_marker, Fixture, Outcome, Testbed, DEPLOY_API};

/// The fixture with `[notify]` in its deploy.toml (and `extra` keys of that table),
/// committed.
fn notifying_fixture(extra: &str) -> Fixture {
    let fixture = Fixture::unique();
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[notify]\nwebhook_env = \"DEPLOY_WEBHOOK_URL\"\n{extra}"),
    );
    fixture.commit_all("notifications");
    fixture
}

/// Panics if `secret` (the webhook URL's last path segment), or the URL's path,
/// appears anywhere in what the run printed.
#[track_caller]
fn assert_never_printed(out: &Outcome, secret: &str) {
    for (channel, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        for needle in [secret, "/services/T0TEST/B0TEST"] {
            if let Some(line) = text.lines().find(|line| line.contains(needle)) {
                panic!("the webhook URL appears in {channel}: {line}");
            }
        }
    }
}

fn warnings(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect()
}

#[test]
fn the_webhook_hears_the_start_and_the_end_and_its_url_is_never_printed() {
    let bed = Testbed::get();
    let hook = Webhook::start(Answer::Ok);
    let secret = unique_marker("hooksecret");
    let fixture = notifying_fixture("");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let tag = fixture.short_sha();

    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_WEBHOOK_URL", hook.url(&secret))
        .env("RUST_LOG", "trace")
        .args(DEPLOY_API)
        .args(["-vv"])
        .run();
    out.success();
    assert_never_printed(&out, &secret);
    assert!(warnings(&out).is_empty(), "{out}");
    let received = hook.received();
    assert_eq!(
        received.len(),
        2,
        "a start and an end message: {received:?}"
    );
    for message in &received {
        assert_eq!(message.path, format!("/services/T0TEST/B0TEST/{secret}"));
        assert_eq!(field(&message.body, "environment"), Some("sandbox"));
        assert_eq!(
            field(&message.body, "mode"),
            Some("partial deploy (--services)")
        );
        assert_eq!(field(&message.body, "services"), Some("api"));
        assert_eq!(field(&message.body, "sha"), Some(tag.as_str()));
        let who = field(&message.body, "who").unwrap();
        assert!(who.contains('@') && who.contains("arn:aws:"), "{who}");
    }
    let (start, end) = (&received[0].body, &received[1].body);
    assert!(
        start["text"].as_str().unwrap().contains("started"),
        "{start}"
    );
    assert_eq!(field(start, "duration"), None);
    assert!(end["text"].as_str().unwrap().contains("succeeded"), "{end}");
    assert!(field(end, "duration").is_some(), "{end}");
    assert_eq!(field(end, "failed step"), None);

    // A run that fails after it started says where: here its image build.
    let dockerfile =
        std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("{dockerfile}\nRUN echo the build breaks && exit 3\n"),
    );
    let broken = fixture.commit_all("a broken build");
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env("DEPLOY_WEBHOOK_URL", hook.url(&secret))
        .env("RUST_LOG", "trace")
        .args(DEPLOY_API)
        .args(["-vv"])
        .run();
    out.code(1).stderr_has("the image build of api failed");
    assert_never_printed(&out, &secret);
    let received = hook.received();
    assert_eq!(received.len(), 4, "{received:?}");
    let (start, end) = (&received[2].body, &received[3].body);
    assert!(
        start["text"].as_str().unwrap().contains("started"),
        "{start}"
    );
    assert_eq!(field(end, "sha"), Some(broken.as_str()));
    assert!(end["text"].as_str().unwrap().contains("FAILED"), "{end}");
    assert_eq!(field(end, "failed step"), Some("build and push"), "{end}");
    assert!(
        field(end, "error").is_some_and(|e| e.contains("api")),
        "{end}"
    );
}

#[test]
fn a_dead_webhook_is_one_warning_and_never_fails_the_deploy() {
    let bed = Testbed::get();
    let secret = unique_marker("hooksecret");
    let fixture = notifying_fixture("timeout_secs = 1\nattempts = 3\n");
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let run = |url: &str| {
        fixture
            .deploy()
            .aws(&env, &bed)
            .env("DEPLOY_WEBHOOK_URL", url)
            .env("RUST_LOG", "trace")
            .args(DEPLOY_API)
            .args(["-vv"])
            .run()
    };
    let one_warning = |out: &Outcome, about: &str| {
        out.success();
        assert_never_printed(out, &secret);
        let warned = warnings(out);
        assert_eq!(warned.len(), 1, "one warning: {out}");
        assert!(
            warned[0].contains(
                "the notification webhook ($DEPLOY_WEBHOOK_URL) did not take the start message"
            ) && warned[0].to_lowercase().contains(about),
            "{}",
            warned[0]
        );
    };

    // Nothing listens: connection refused.
    one_warning(&run(&refused_url(&secret)), "connection refused");

    // Every request answered 500: the start message is tried 3 times, then the end
    // message once, and there is still one warning.
    let failing = Webhook::start(Answer::Status(500));
    one_warning(
        &run(&failing.url(&secret)),
        "answered http 500 (3 attempts)",
    );
    assert_eq!(failing.received().len(), 4, "{:?}", failing.received());

    // A server that never answers: each attempt gives up after notify.timeout_secs.
    let hanging = Webhook::start(Answer::Hang);
    one_warning(&run(&hanging.url(&secret)), "no answer within 1s");

    // A 404 (a webhook revoked) is not retried.
    let gone = Webhook::start(Answer::Status(404));
    one_warning(&run(&gone.url(&secret)), "answered http 404 (1 attempt)");
    assert_eq!(gone.received().len(), 2, "{:?}", gone.received());

    // The variable unset: one warning, before anything is done.
    let out = fixture
        .deploy()
        .aws(&env, &bed)
        .env_remove("DEPLOY_WEBHOOK_URL")
        .args(DEPLOY_API)
        .run();
    out.success();
    assert_eq!(
        warnings(&out),
        ["warning: notify.webhook_env names $DEPLOY_WEBHOOK_URL, which is not set: this run sends no notifications"]
    );
}
