//! The operator at a terminal (a real pseudo-terminal): the profile menu, the account
//! summary and the typed `y`; `n` aborts with nothing pushed or applied.

use std::process::Command;

use crate::support::{bootstrap_applied, bootstrap_aws, DockerUse, Fixture, Testbed};

#[test]
fn at_a_terminal_the_menu_and_typed_confirmation_gate_the_deploy() {
    let bed = Testbed::get();
    // Its deploys build images, outside the Deploy harness.
    let _docker = DockerUse::shared();
    let fixture = Fixture::unique();
    let tag = fixture.short_sha();
    let env = bootstrap_applied(&bed, &fixture, "sandbox");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/pty_run.py");
    let deploy_api = [
        "--var-file",
        "tfvars/sandbox.tfvars",
        "--skip-spas",
        "--services",
        "api",
    ];
    let drive = |args: &[&str], answers: &[(&str, &str)]| {
        let mut command = Command::new(&bed.python);
        command.arg(&script).args(["--timeout", "120"]);
        for (expect, send) in answers {
            command.args(["--expect", expect, "--send", send]);
        }
        command
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_deploy"))
            .args(args)
            .current_dir(fixture.root())
            .env("DEPLOY_REGISTRY", &bed.registry)
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("AWS_PROFILE");
        env.configure(&mut command);
        // No AWS_PROFILE: the menu is the only way to choose.
        command.env_remove("AWS_PROFILE");
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };

    // `n` at the confirmation: exit 2, nothing pushed, nothing applied.
    let (code, screen) = drive(
        &deploy_api,
        &[
            ("AWS profile to deploy with", "\r"),
            ("Type y to build and push", "n\r"),
        ],
    );
    assert_eq!(code, Some(2), "{screen}");
    assert!(
        screen.contains("testbed"),
        "the menu lists the profile: {screen}"
    );
    assert!(
        screen.contains("AWS account"),
        "the account summary comes first: {screen}"
    );
    assert!(
        screen.contains("not confirmed: nothing was built or pushed"),
        "{screen}"
    );
    assert!(!bed.registry_has("api", &tag));

    // `y` after the review of the roll's plan: deployed. The typed `y` is the
    // approval: terraform applies the saved plan that was reviewed, without a prompt
    // of its own.
    let (code, screen) = drive(
        &deploy_api,
        &[
            ("AWS profile to deploy with", "\r"),
            ("Type y to build and push", "y\r"),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    let reviewed = screen.find("terraform plan, reviewed:");
    assert!(
        reviewed.is_some() && reviewed < screen.find("Type y to build and push"),
        "the review comes before the question: {screen}"
    );
    assert!(!screen.contains("Enter a value"), "{screen}");
    assert!(bed.registry_has("api", &tag));
    assert!(
        screen.contains("\x1b[32mDEPLOY"),
        "at a terminal the plan is coloured: {screen}"
    );
    assert!(screen.contains(&format!("yes (:{tag})")), "{screen}");

    // A rollback asks too, in its own words; `n` leaves everything as it is.
    let (code, screen) = drive(
        &[
            "rollback",
            &tag,
            "--var-file",
            "tfvars/sandbox.tfvars",
            "--services",
            "api",
        ],
        &[
            ("AWS profile to deploy with", "\r"),
            ("Type y to roll back", "n\r"),
        ],
    );
    assert_eq!(code, Some(2), "{screen}");
    assert!(screen.contains("rollback   to"), "{screen}");
    assert!(
        screen.contains("not confirmed: nothing was rolled back"),
        "{screen}"
    );
}

/// At a terminal, the error after live progress lines starts a line of its own, also
/// when the results went elsewhere (stdout redirected, so nothing printed below the
/// lines ends them): here the build of an image fails while its line is drawn.
#[test]
fn at_a_terminal_the_error_starts_a_line_of_its_own_after_the_progress_lines() {
    let bed = Testbed::get();
    let _docker = DockerUse::shared();
    let fixture = Fixture::unique();
    let env = bootstrap_aws(&bed, &fixture, "sandbox");
    let dockerfile = "infra/docker/service.Dockerfile";
    let text = std::fs::read_to_string(fixture.path(dockerfile)).unwrap();
    let failing = text.replacen(
        "RUN --mount=type=cache,target=/pnpm-store \\\n",
        "RUN --mount=type=cache,target=/pnpm-store \\\n    sleep 1; echo failing on purpose >&2; exit 7; \\\n",
        1,
    );
    assert_ne!(failing, text, "the deps stage's RUN is where it was");
    fixture.write(dockerfile, &failing);
    fixture.commit_all("a build that fails");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/pty_run.py");
    let deploy = format!(
        "exec '{}' --skip-tf --skip-spas --services api -y >/dev/null",
        env!("CARGO_BIN_EXE_deploy")
    );
    let mut command = Command::new(&bed.python);
    command
        .arg(&script)
        .args(["--timeout", "120", "--", "sh", "-c", &deploy])
        .current_dir(fixture.root())
        .env("DEPLOY_REGISTRY", &bed.registry)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    env.configure(&mut command);
    let output = command.output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{screen}");
    let at = screen
        .find("\x1b[1;31merror:")
        .expect("a coloured error line");
    let before = &screen[..at];
    // The live line was drawn (its state), and the error is not appended to it.
    assert!(before.contains("build FAILED"), "{screen:?}");
    let line_start = before.rfind('\n').map_or(0, |end| end + 1);
    let prefix = before[line_start..].replace('\r', "");
    assert!(
        prefix.is_empty(),
        "the error line starts after {prefix:?}: {screen:?}"
    );
}
