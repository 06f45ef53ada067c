//! The network as operators' machines have it (issue 23): an AWS endpoint that accepts
//! connections and never answers, a registry that cannot be reached from here, and a
//! corporate proxy. Each is a real listener or a real proxy (Debian's tinyproxy), and
//! the tests count what reached it, never how long a run took.

use crate::support::{
    bootstrap_applied, set_live_image, Fixture, Listener, OnAccept, Outcome, Testbed, Tinyproxy,
    DEPLOY_API, SERVICES,
};

const SANDBOX: [&str; 4] = [
    "--var-file",
    "tfvars/sandbox.tfvars",
    "--profile",
    "testbed",
];

/// The lines of stderr that report an error (`error: …`).
fn error_lines(outcome: &Outcome) -> Vec<&str> {
    outcome
        .stderr
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect()
}

/// The lines of stderr that warn (tracing's `WARN`, or `warning:`).
fn warning_lines(outcome: &Outcome) -> Vec<&str> {
    outcome
        .stderr
        .lines()
        .filter(|line| line.contains("WARN") || line.starts_with("warning"))
        .collect()
}

#[test]
fn a_stalled_aws_endpoint_ends_each_command_with_one_error_naming_the_call() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let stalled = Listener::start(OnAccept::Stall);
    let run = |args: &[&str]| {
        fixture
            .deploy()
            .aws(&env, &bed)
            .env("AWS_ENDPOINT_URL", format!("http://{}", stalled.address))
            // One second a try keeps the test short; the default is 30 s.
            .env("DEPLOY_AWS_TIMEOUT", "1")
            .args(args)
            .run()
    };
    // The call the error names, and how the note names it while waiting (S3 names
    // ListObjectsV2 nowhere on the wire: its method and path).
    let cases: [(&[&str], &str, &str); 4] = [
        (&["status"], "ecs:DescribeServices", "ecs:DescribeServices"),
        (&["unlock"], "s3:GetObject", "s3:GetObject"),
        (&["history"], "s3:ListObjectsV2", "s3:GET /"),
        (
            &DEPLOY_API,
            "sts:GetCallerIdentity",
            "sts:GetCallerIdentity",
        ),
    ];
    for (command, call, waiting) in cases {
        let mut args = command.to_vec();
        if command != DEPLOY_API {
            args.extend(SANDBOX);
        }
        let outcome = run(&args);
        outcome
            .code(1)
            .stderr_has(&format!("AWS did not answer {call} within 1s a try"))
            // While it waited, it said on what.
            .stderr_has(&format!("waiting for AWS: {waiting}"));
        let errors = error_lines(&outcome);
        assert_eq!(errors.len(), 1, "one error for {args:?}:\n{outcome}");
        // A deploy that waited on AWS after starting terraform does not blame terraform.
        assert!(!errors[0].contains("terraform"), "{outcome}");
    }
    assert!(
        stalled.accepted() > 0,
        "the runs never reached the listener"
    );
}

/// Status of nine services whose images are all in `registry`: the JSON digests, and
/// what the run printed.
fn status_with_images_in(
    bed: &Testbed,
    fixture: &Fixture,
    env: &crate::support::AwsEnv,
    registry: &str,
) -> (Outcome, Vec<serde_json::Value>) {
    for service in SERVICES {
        set_live_image(env, service, Some(&format!("{registry}/{service}:abc1234")));
    }
    let outcome = fixture
        .deploy()
        .aws(env, bed)
        .args(["status", "--output", "json"])
        .args(SANDBOX)
        .run();
    outcome.success();
    let status: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let digests = status["digests"].as_array().unwrap().clone();
    (outcome, digests)
}

#[test]
fn status_asks_a_registry_it_cannot_reach_once_and_warns_once() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");

    // A name that does not resolve: not retried, one warning naming host and cause,
    // each digest unknown with the reason.
    let (outcome, digests) = status_with_images_in(&bed, &fixture, &env, "registry.invalid:5000");
    let warnings = warning_lines(&outcome);
    assert_eq!(warnings.len(), 1, "{outcome}");
    assert!(
        warnings[0].contains("registry.invalid:5000")
            && warnings[0].contains("its name does not resolve"),
        "{outcome}"
    );
    assert_eq!(digests.len(), SERVICES.len());
    for digest in &digests {
        assert!(digest["digest"].is_null(), "{digest}");
        let error = digest["error"].as_str().unwrap();
        assert!(
            error.contains("registry registry.invalid:5000 cannot be reached")
                && error.contains("its name does not resolve"),
            "{digest}"
        );
    }

    // A registry whose connections drop: its first image is tried three times, the
    // other eight not at all (before: five tries each, 45 connections).
    let dropping = Listener::start(OnAccept::Drop);
    let (outcome, digests) = status_with_images_in(&bed, &fixture, &env, &dropping.address);
    assert_eq!(dropping.accepted(), 3, "{outcome}");
    let warnings = warning_lines(&outcome);
    assert_eq!(warnings.len(), 1, "{outcome}");
    assert!(warnings[0].contains(&dropping.address), "{outcome}");
    assert!(
        digests
            .iter()
            .all(|d| d["digest"].is_null()
                && d["error"].as_str().unwrap().contains("cannot be reached")),
        "{digests:?}"
    );
}

#[test]
fn the_registry_client_and_the_aws_sdk_go_through_the_proxy_except_no_proxy_hosts() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let proxy = Tinyproxy::start();
    // api in the first registry (plain HTTP: a GET in absolute form through the proxy),
    // auth in the second (excluded by NO_PROXY's host:port form: asked directly),
    // billing on an https host (a CONNECT; the proxy cannot resolve it: asked once).
    set_live_image(&env, "api", Some(&format!("{}/api:abc1234", bed.registry)));
    set_live_image(
        &env,
        "auth",
        Some(&format!("{}/auth:abc1234", bed.registry2)),
    );
    set_live_image(
        &env,
        "billing",
        Some("proxied.invalid:5000/billing:abc1234"),
    );
    let mut run = fixture.deploy().aws(&env, &bed);
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        run = run.env_remove(name);
    }
    let outcome = run
        .env("HTTP_PROXY", &proxy.url)
        .env("https_proxy", &proxy.url)
        .env("no_proxy", &bed.registry2)
        .args(["status", "--output", "json"])
        .args(SANDBOX)
        .run();
    outcome.success();
    let log = proxy.log();
    assert_eq!(
        proxy.requests(
            "GET",
            &format!("http://{}/v2/api/manifests/abc1234", bed.registry)
        ),
        1,
        "{log}\n{outcome}"
    );
    assert_eq!(proxy.requests("GET", &bed.registry2), 0, "{log}");
    assert_eq!(
        proxy.requests("CONNECT", "proxied.invalid:5000"),
        1,
        "{log}"
    );
    // The AWS SDK's calls to moto (plain HTTP) went through it too.
    let moto = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let moto = moto.trim_start_matches("http://").trim_end_matches('/');
    assert!(proxy.requests("POST", moto) > 0, "{log}");
    let status: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let digest = |service: &str| {
        status["digests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["service"] == service)
            .unwrap()
            .clone()
    };
    // The second registry was reached, directly: it answered that it has no such tag.
    assert!(
        digest("auth")["error"]
            .as_str()
            .unwrap()
            .contains("is not in its registry"),
        "{}",
        digest("auth")
    );
    assert!(
        digest("billing")["error"]
            .as_str()
            .unwrap()
            .contains("the proxy could not open a tunnel to it"),
        "{}",
        digest("billing")
    );
}
