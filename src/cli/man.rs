//! The man page: clap_mangen's sections for the flags, then what `--help` cannot hold:
//! the commands (each described by `deploy <command> --help`, no page of its own), the
//! environment variables deploy reads, the files it reads, and its exit status.

use std::io::Write;

use clap::CommandFactory;

use super::Cli;

/// Environment variables deploy reads, with what each does.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DEPLOY_VAR_FILE",
        "the --var-file of every command that takes one",
    ),
    ("DEPLOY_PROFILE", "--profile"),
    ("DEPLOY_PROFILE_FROM", "the --profile-from of promote"),
    ("DEPLOY_OUTPUT", "--output (text or json)"),
    ("DEPLOY_REPO", "-C/--repo"),
    ("DEPLOY_LOCK_WAIT", "--lock-wait"),
    (
        "DEPLOY_COMPLETE",
        "set by the completion scripts (var-files, services or spas): deploy prints those candidates and exits",
    ),
    (
        "DEPLOY_REGISTRY, DEPLOY_REGISTRY_<ENV>",
        "the image registry instead of the account's ECR (for one environment with the suffix)",
    ),
    ("DEPLOY_REGISTRY_TIMEOUT", "seconds per registry request"),
    (
        "DEPLOY_AWS_TIMEOUT",
        "seconds per AWS request attempt (default 30)",
    ),
    (
        "the variable notify.webhook_env names (e.g. DEPLOY_WEBHOOK_URL)",
        "the URL of the webhook told of each run",
    ),
    (
        "AWS_PROFILE, AWS_REGION, AWS_DEFAULT_REGION",
        "the AWS profile and region when --profile and the profile do not say",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "static AWS credentials",
    ),
    (
        "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE",
        "where the AWS profiles are (default ~/.aws/config, ~/.aws/credentials)",
    ),
    (
        "AWS_ENDPOINT_URL",
        "another AWS endpoint (a local emulator)",
    ),
    (
        "DOCKER_HOST, DOCKER_CONTEXT, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH",
        "the Docker daemon to build with",
    ),
    (
        "DOCKER_CONFIG",
        "where the Docker registry credentials are (default ~/.docker)",
    ),
    (
        "NO_COLOR, CLICOLOR_FORCE",
        "no colour, or colour even when not at a terminal",
    ),
    ("RUST_LOG", "diagnostics on stderr, overriding -v"),
    (
        "GITHUB_ACTIONS, GITHUB_STEP_SUMMARY",
        "on a GitHub runner: annotations, and the result appended to the step summary",
    ),
];

/// Files deploy reads.
const FILES: &[(&str, &str)] = &[
    (
        "deploy.toml",
        "the repository's configuration, at its root (optional)",
    ),
    (
        "<terraform dir>/tfvars/<workspace>.tfvars",
        "an environment's variables; its name is the terraform workspace",
    ),
    ("~/.aws/config, ~/.aws/credentials", "the AWS profiles"),
    (
        "~/.docker/config.json",
        "the Docker registry credentials and helpers",
    ),
];

/// Exit status: the classes of `error::ExitCode`, as `--help` and the README say them.
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "done, or nothing to do"),
    (
        "1",
        "failed: AWS, Docker, terraform, a registry or a health check failed or refused, another run holds the lock, or the roll needs --allow-infra-changes; the message says what was and was not done",
    ),
    (
        "2",
        "usage or setup error, nothing changed: flags, files, deploy.toml, the repository, an unknown --profile, or a setting neither deploy.toml nor the terraform outputs give (the ECS cluster, a bucket), a Dockerfile missing from the commit",
    ),
    (
        "3",
        "deploy diff: the roll would need --allow-infra-changes",
    ),
    (
        "4",
        "drift: a service runs what deploy did not roll (status --check; --changed without --adopt-drift or --restore-drift)",
    ),
    (
        "129, 130, 143",
        "hung up (SIGHUP), interrupted (SIGINT), terminated (SIGTERM)",
    ),
];

/// Writes the man page (roff) of `deploy`.
pub fn render(out: &mut dyn Write) -> std::io::Result<()> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let commands: Vec<(String, String)> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            let name = sub.get_name();
            (
                format!("deploy {name}"),
                format!("{about}. Its flags: deploy {name} --help"),
            )
        })
        .collect();
    let commands: Vec<(&str, &str)> = commands
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    section(out, "COMMANDS", &commands)?;
    section(out, "ENVIRONMENT", ENVIRONMENT)?;
    section(out, "FILES", FILES)?;
    section(out, "EXIT STATUS", EXIT_STATUS)?;
    man.render_extra_section(out)?;
    man.render_version_section(out)
}

fn section(out: &mut dyn Write, heading: &str, entries: &[(&str, &str)]) -> std::io::Result<()> {
    writeln!(out, ".SH \"{heading}\"")?;
    for (term, text) in entries {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(term), escape(text))?;
    }
    Ok(())
}

/// Text as roff prints it: backslashes and hyphens escaped, no line read as a request.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|line| {
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
