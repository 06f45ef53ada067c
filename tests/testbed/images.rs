//! Build and push against the real test bed: Docker (BuildKit through bollard), the
//! registry, and ECR credentials from moto.

use std::process::Command;

use crate::support::{bootstrap_aws, push, DockerUse, Fixture, Testbed, PUSH_API, SERVICES};

/// Runs a command in an image with the docker CLI and returns its stdout.
fn run_in(image: &str, script: &str) -> String {
    let output = Command::new("docker")
        .args(["run", "--rm", image, "sh", "-c", script])
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker run {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn builds_pushes_resumes_and_never_ships_uncommitted_code() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    // A lockfile no other run has seen: the dependency stage cannot come from cache.
    let nonce = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let lock = std::fs::read_to_string(fixture.path("pnpm-lock.yaml")).unwrap();
    fixture.write("pnpm-lock.yaml", &format!("{lock}# run {nonce}\n"));
    let tag = fixture.commit_all("unique lockfile");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    // An uncommitted edit that must never reach an image tagged with the clean SHA.
    let committed = std::fs::read_to_string(fixture.path("services/api/src/index.ts")).unwrap();
    fixture.write("services/api/src/index.ts", "export const DIRTY = true;\n");

    let first = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--skip-tf", "--skip-spas", "--profile", "testbed", "-y"])
        .run();
    first
        .success()
        .stderr_has("uncommitted path(s) are NOT included");
    for service in SERVICES {
        assert!(
            bed.registry_has(service, &tag),
            "{service}:{tag} not in the registry"
        );
        first.stdout_has(&format!("{}/{service}:{tag}", bed.registry));
    }
    assert!(
        !bed.registry_has("slack-agent", &tag),
        "slack-agent is never built"
    );

    // The dependency stage ran once: every image carries the same single marker line.
    let markers: Vec<String> = SERVICES
        .iter()
        .map(|service| {
            run_in(
                &format!("{}/{service}:{tag}", bed.registry),
                "cat /deps-marker",
            )
        })
        .collect();
    assert_eq!(markers[0].lines().count(), 1, "{}", markers[0]);
    assert!(markers.iter().all(|m| m == &markers[0]), "{markers:#?}");
    assert!(markers[0].contains("chromium=skipped"), "{}", markers[0]);

    // The image holds the committed file, not the dirty one.
    let api = format!("{}/api:{tag}", bed.registry);
    assert_eq!(
        run_in(&api, "cat /app/services/api/src/index.ts"),
        committed
    );
    assert_eq!(run_in(&api, "cat /app/SERVICE").trim(), "api");

    // A re-run builds and pushes nothing, and says so per service.
    let second = fixture
        .deploy()
        .aws(&env, &bed)
        .args(["--skip-tf", "--skip-spas", "--profile", "testbed", "-y"])
        .run();
    second.success();
    for service in SERVICES {
        second.stderr_has(&format!(
            "{service}: {}/{service}:{tag} already in the registry",
            bed.registry
        ));
    }
    second.stdout_lacks("built and pushed");
}

#[test]
fn services_limits_the_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args([
            "--skip-tf",
            "--skip-spas",
            "--services",
            "auth",
            "--profile",
            "testbed",
            "-y",
            "--output",
            "json",
        ])
        .run()
        .success();
    assert!(bed.registry_has("auth", &tag));
    assert!(!bed.registry_has("api", &tag));
}

#[test]
fn a_missing_ecr_repository_is_named_and_nothing_is_built() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    fixture.write(
        "deploy.toml",
        &format!(
            "{}\n[registry]\nrepository = \"missing/{{service}}\"\n",
            std::fs::read_to_string(fixture.path("deploy.toml")).unwrap()
        ),
    );
    fixture.commit_all("point at repositories that do not exist");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .run()
        .code(1)
        .stderr_has("ECR repository missing/api does not exist")
        .stderr_has("bootstrap");
}

/// Makes `service`'s build fail with `message` on stderr (a last step of the fixture's
/// Dockerfile; the other services build as before). Uncommitted.
pub(crate) fn fail_the_build_of(fixture: &Fixture, service: &str, message: &str) {
    let dockerfile =
        std::fs::read_to_string(fixture.path("infra/docker/service.Dockerfile")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!(
            "{dockerfile}\n# {:?}\nRUN if [ \"$SERVICE\" = {service} ]; then echo '{message}' >&2; exit 1; fi\n",
            std::time::SystemTime::now()
        ),
    );
}

#[test]
fn a_failed_build_shows_its_log_tail_the_disk_remedy_and_a_rerun_resumes() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    fail_the_build_of(
        &fixture,
        "auth",
        "ERR_PNPM_ENOSPC  ENOSPC: no space left on device, write",
    );
    let tag = fixture.commit_all("auth's build runs out of disk");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let args = push("api,auth");

    let failed = fixture.deploy().aws(&env, &bed).args(args).run();
    failed
        .code(1)
        .stderr_has("the image build of auth failed")
        .stderr_has("ERR_PNPM_ENOSPC")
        .stderr_has("full log: ")
        .stderr_has("docker builder prune -af")
        .stderr_has("never touch volumes")
        .stderr_has("Pushed: api")
        .stderr_has("Not pushed: auth")
        .stderr_has("Nothing was applied")
        .stderr_has("Re-run the same command to resume");
    assert!(bed.registry_has("api", &tag));
    assert!(!bed.registry_has("auth", &tag));
    let log = fixture.path(&format!(".git/deploy/logs/{tag}/auth.log"));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("ERR_PNPM_ENOSPC"),
        "{}",
        log.display()
    );

    // The re-run skips what was pushed and fails on the same build again.
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(args)
        .run()
        .code(1)
        .stderr_has(&format!(
            "api: {}/api:{tag} already in the registry",
            bed.registry
        ))
        .stderr_has("Already in the registry: api");
}

/// The first image builds alone (its dependency stage fills the cache), but the others
/// wait for its build only: they start building while it pushes.
#[test]
fn the_next_images_build_while_the_first_one_pushes() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let run = fixture
        .deploy()
        .aws(&env, &bed)
        .args(push("api,auth,billing"))
        .run();
    run.success();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let position = |needle: &str| {
        lines
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{}", run.stderr))
    };
    let first_pushed = position(": pushed ");
    let first = lines[first_pushed]
        .trim()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let first_built = position(&format!("{first}: built in"));
    let others_building: Vec<usize> = (0..first_pushed)
        .filter(|&i| {
            let line = lines[i].trim();
            line.ends_with(": building") && !line.starts_with(&format!("{first}:"))
        })
        .collect();
    assert!(
        !others_building.is_empty(),
        "no other image started building before {first} was pushed:\n{}",
        run.stderr
    );
    assert!(
        others_building.iter().all(|&i| i > first_built),
        "an image started building before {first}'s build was done:\n{}",
        run.stderr
    );
    for service in ["api", "auth", "billing"] {
        assert!(
            bed.registry_has(service, &tag),
            "{service}:{tag} not pushed"
        );
    }
}

/// One build at a time (`docker.shared_context_mib = 0` makes every context large): the
/// images waiting for the build slot when auth's build fails never start, as none would
/// after a failure when they build side by side.
#[test]
fn after_a_failed_build_the_images_waiting_for_their_turn_never_start() {
    let bed = Testbed::get();
    let fixture = Fixture::new();
    fail_the_build_of(&fixture, "auth", "auth cannot build");
    let config = std::fs::read_to_string(fixture.path("deploy.toml")).unwrap();
    fixture.write(
        "deploy.toml",
        &format!("{config}\n[docker]\nshared_context_mib = 0\n"),
    );
    let tag = fixture.commit_all("auth's build fails; one build at a time");
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(push("api,auth,billing,files"))
        .run()
        .code(1)
        .stderr_has("the others build one at a time")
        .stderr_has("the image build of auth failed");
    assert!(bed.registry_has("api", &tag), "api builds first, alone");
    for service in ["auth", "billing", "files"] {
        assert!(
            !bed.registry_has(service, &tag),
            "{service}:{tag} was pushed after auth's build failed"
        );
    }
}

/// Every directory (with a trailing `/`) and file under `/ctx` in an image, sorted.
fn context_in(image: &str) -> Vec<String> {
    let listing = run_in(
        image,
        r#"cd /ctx && find . -type d | sed 's|$|/|'; find . ! -type d"#,
    );
    let mut paths: Vec<String> = listing.lines().map(str::to_owned).collect();
    paths.sort();
    paths
}

/// The docker CLI whose `build` has BuildKit built in (Docker 20.10, as the test bed's
/// daemon), as bench/images.sh uses it.
const BUILDKIT_CLI: &str = "/usr/bin/docker";

/// The image the docker CLI builds from the fixture's HEAD (its committed tree, as deploy
/// builds), and what `/ctx` holds in it, with BuildKit (`buildkit: true`, the CLI's own
/// session file sync, which deploy's served context follows) or the classic builder.
fn context_by_docker_cli(fixture: &Fixture, name: &str, buildkit: bool) -> Vec<String> {
    let tree = tempfile::tempdir().unwrap();
    let export = format!(
        "git -C '{}' archive --format=tar HEAD | tar -x -C '{}'",
        fixture.root().display(),
        tree.path().display()
    );
    let exported = Command::new("sh").args(["-c", &export]).status().unwrap();
    assert!(exported.success(), "{export}");
    let image = format!("deploy-dockerignore-parity:{name}-{}", fixture.short_sha());
    let _docker = DockerUse::shared();
    // Debian's 20.10 CLI has BuildKit built in; a newer `docker` on PATH may lack buildx.
    let cli = if buildkit && std::path::Path::new(BUILDKIT_CLI).exists() {
        BUILDKIT_CLI
    } else {
        "docker"
    };
    let build = Command::new(cli)
        .args([
            "build",
            "--quiet",
            "--file",
            "infra/docker/service.Dockerfile",
            "--tag",
        ])
        .arg(&image)
        .arg(".")
        .current_dir(tree.path())
        .env("DOCKER_BUILDKIT", if buildkit { "1" } else { "0" })
        .output()
        .expect("the docker CLI runs");
    assert!(
        build.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let paths = context_in(&image);
    let _ = Command::new("docker").args(["rmi", &image]).output();
    paths
}

/// `.dockerignore` parity (field report: with a `!` exception, excluded directories such as
/// `services/api/dist/` reached the image empty, where the docker CLI's image has none).
/// For each `.dockerignore`, the same commit is built by deploy and by the docker CLI, with
/// a Dockerfile copying the whole context, and the two images must hold the same paths.
#[test]
fn each_dockerignore_gives_the_image_the_docker_cli_builds() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let field_rules = std::fs::read_to_string(fixture.path(".dockerignore")).unwrap();
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("FROM {}\nCOPY . /ctx\n", bed.base_image),
    );
    for path in [
        "services/api/dist/index.js",
        "services/api/dist/keep.js",
        "services/api/dist/assets/app.css",
        "services/auth/dist/index.js",
        "docs/guide.md",
        "docs/internal/notes.txt",
        "docs/keep/a.txt",
        "docs/keep/b.txt",
        "tmp/deep/scratch.txt",
    ] {
        fixture.write(path, "x\n");
    }
    // dist/ is gitignored in the platform; these builds are committed anyway.
    fixture.git(&["add", "--force", "services/api/dist", "services/auth/dist"]);
    // (name, .dockerignore). Each commit is built by deploy and by the docker CLI, with
    // BuildKit and with the classic builder; the images must hold the same paths, but for
    // the two differences listed below.
    let cases: [(&str, &str); 7] = [
        // The platform's own: `**/dist` and `**/*.md`, with an exception elsewhere.
        ("field", field_rules.as_str()),
        (
            "plain-and-directory-excludes",
            "tmp\ndocs/internal\n*.json\n",
        ),
        (
            "exceptions-inside-excluded-dirs",
            "services/api/dist\n!services/api/dist/keep.js\ndocs\n!docs/keep\n",
        ),
        (
            "double-star",
            "**/dist\n!services/api/dist/assets\ndocs/**/*.txt\n**/index.ts\n",
        ),
        (
            "excluded-dir-exception-elsewhere",
            "docs\nservices/*/dist\n!README.md\n",
        ),
        (
            "reincluded-dir-emptied-again",
            "docs\n!docs/keep\ndocs/keep/*.txt\n",
        ),
        ("build-files-excluded", "infra\n.dockerignore\n**/*.md\n"),
    ];
    let mut mismatches = Vec::new();
    for (name, rules) in cases {
        fixture.write(".dockerignore", rules);
        let tag = fixture.commit_all(name);
        fixture
            .deploy()
            .aws(&env, &bed)
            .args(PUSH_API)
            .run()
            .success();
        let ours = context_in(&format!("{}/api:{tag}", bed.registry));
        for buildkit in [true, false] {
            let docker_cli = context_by_docker_cli(&fixture, name, buildkit);
            let only = |these: &[String], not: &[String]| -> Vec<String> {
                these.iter().filter(|p| !not.contains(p)).cloned().collect()
            };
            let (only_ours, only_docker_cli) = (only(&ours, &docker_cli), only(&docker_cli, &ours));
            if !only_ours.is_empty() || !only_docker_cli.is_empty() {
                mismatches.push(format!("{name} buildkit={buildkit}: only in deploy's image {only_ours:?}, only in the docker CLI's {only_docker_cli:?}"));
            }
        }
    }
    let known = [
        // Docker 20.10's BuildKit CLI (its fsutil) walks `services/api/dist` for the
        // exception and then checks `**/dist` against the wrong parent of the files inside,
        // so it ships them; deploy follows current docker (patternmatcher), as the classic
        // builder does.
        r#"double-star buildkit=true: only in deploy's image [], only in the docker CLI's ["./services/api/dist/index.js", "./services/api/dist/keep.js"]"#,
        // The classic builder needs the Dockerfile in the context; it removes it after
        // reading it and leaves its directories behind. BuildKit serves it apart.
        r#"build-files-excluded buildkit=false: only in deploy's image [], only in the docker CLI's ["./infra/", "./infra/docker/"]"#,
    ];
    assert_eq!(mismatches, known, "{mismatches:#?}");
}

/// `.dockerignore` as current Docker reads it (moby/patternmatcher, Docker 23 and later):
/// `**.pem` is a suffix match, so no `.pem` file at any depth reaches the image deploy
/// builds, as none reaches the one the docker CLI on PATH builds (28.x: current
/// patternmatcher; Docker 20.10 shipped them). A pattern Docker refuses stops the build,
/// naming the file, the line and the pattern, before anything is pushed.
#[test]
fn a_leading_double_star_suffix_keeps_pem_files_out_and_a_malformed_pattern_stops_the_build() {
    let bed = Testbed::get();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    fixture.write(
        "infra/docker/service.Dockerfile",
        &format!("FROM {}\nCOPY . /ctx\n", bed.base_image),
    );
    for path in [
        "certs/server.pem",
        "services/api/dev.pem",
        "certs/README.txt",
    ] {
        fixture.write(path, "x\n");
    }
    fixture.write(".dockerignore", "**.pem\n");
    let tag = fixture.commit_all("keys stay out");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .run()
        .success();
    let ours = context_in(&format!("{}/api:{tag}", bed.registry));
    assert!(ours.contains(&"./certs/README.txt".to_owned()), "{ours:#?}");
    let keys: Vec<&String> = ours.iter().filter(|p| p.ends_with(".pem")).collect();
    assert!(keys.is_empty(), "key files in the image: {keys:?}");
    assert_eq!(ours, context_by_docker_cli(&fixture, "suffix", false));

    fixture.write(".dockerignore", "**.pem\n# keys\ncerts/[a-\n");
    let tag = fixture.commit_all("a malformed pattern");
    fixture
        .deploy()
        .aws(&env, &bed)
        .args(PUSH_API)
        .run()
        .code(1)
        .stderr_has(&format!(
            ".dockerignore (commit {tag}) line 3: the pattern `certs/[a-` has a `[` that is never closed"
        ));
    assert!(!bed.registry_has("api", &tag));
}
