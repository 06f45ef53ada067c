//! The README as a new user follows it: every command in its `sh` code blocks (then in
//! those of CONTRIBUTING.md and docs/, which the README links to) runs, in order, as
//! written, through `sh -c` with the built `deploy` first on PATH, against a fixture
//! platform bootstrapped with the environments and profiles the commands name
//! (`sandbox`, `prod`). A command without `-y` runs in a real terminal and is answered
//! as an operator would: the profile menu and the typed `y` (the approval of the
//! reviewed plan, which terraform then applies without a prompt of its own).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{bootstrap_prod_and_sandbox, DockerUse, Fixture, Testbed};

/// README commands this test does not run, and where they are exercised instead.
const RUN_ELSEWHERE: &[(&str, &str)] = &[
    (
        "cargo install --path .",
        "a release build (about 17 min on 2 cores); cargo cannot run inside cargo test",
    ),
    (
        "scripts/demo",
        "scripts/check runs it as written, after the tests",
    ),
    ("scripts/check", "the test command itself, which CI runs"),
    (
        "curl -fsSLO https://github.com/your-org/deploy/releases/download/v0.1.0/deploy-v0.1.0-x86_64-unknown-linux-gnu.tar.gz",
        "a published release; scripts/test-action downloads, checks against SHA256SUMS and unpacks archives the same way from a loopback server",
    ),
    (
        "curl -fsSLO https://github.com/your-org/deploy/releases/download/v0.1.0/SHA256SUMS",
        "a published release; scripts/test-action",
    ),
    (
        "sha256sum --ignore-missing -c SHA256SUMS",
        "a published release; scripts/test-action checks archives against SHA256SUMS",
    ),
    (
        "gh attestation verify deploy-v0.1.0-x86_64-unknown-linux-gnu.tar.gz --repo your-org/deploy",
        "a release attested on GitHub (release.yml); GitHub cannot be reached here",
    ),
    (
        "tar -xzf deploy-v0.1.0-x86_64-unknown-linux-gnu.tar.gz && sudo install deploy-v0.1.0-x86_64-unknown-linux-gnu/deploy /usr/local/bin/",
        "a published release; scripts/test-action unpacks and runs the archive's deploy",
    ),
    (
        "cargo install --locked --git https://github.com/your-org/deploy deploy-platform",
        "the repository on GitHub; the same build as cargo install --path .",
    ),
    (
        "scripts/image \"$(scripts/build-release | tail -n 1)\"",
        "a release build (15-25 min on 2 cores); scripts/check runs scripts/image --test on the debug build",
    ),
    (
        "docker run --rm -v \"$PWD:/repo\" -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN deploy-with-terraform status --var-file tfvars/prod.tfvars",
        "an image with terraform added; scripts/image --test runs deploy --version and a dry run in the image",
    ),
    (
        "scripts/check --fast",
        "the first steps of scripts/check, which CI runs in full",
    ),
];

/// The documents whose `sh` blocks are run: the README first (its commands build on one
/// another, in the order a reader meets them), then the pages it links to.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    let mut documents = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    documents.extend(docs);
    documents
}

/// The commands of the documents' `sh` blocks, comments removed, in order.
fn readme_commands() -> Vec<String> {
    let mut commands = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document)
            .unwrap_or_else(|err| panic!("{}: {err}", document.display()));
        commands.extend(sh_commands(&text));
    }
    commands
}

/// The commands of one markdown text's `sh` blocks, comments removed, in order.
fn sh_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if let Some(fence) = line.strip_prefix("```") {
            in_sh = !in_sh && fence.trim() == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // A comment starts at a `#` after whitespace (none of the commands quote one).
        let command = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        let command = command.trim();
        if !command.is_empty() && !command.starts_with('#') {
            commands.push(command.to_owned());
        }
    }
    commands
}

/// The value of `--flag VALUE` in a command line.
fn flag<'a>(command: &'a str, name: &str) -> Option<&'a str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words
        .windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1])
}

fn words_of(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Whether a command is a subcommand rather than a deploy.
fn read_only(command: &str) -> bool {
    ["status", "prune", "unlock", "history", "completions", "man"].contains(&words_of(command)[1])
}

/// Whether a command asks the operator anything: a deploy without `-y` or `--dry-run`
/// (`deploy diff` plans the environment's roll as a deploy does, asking nothing).
fn asks(command: &str) -> bool {
    let words = words_of(command);
    !read_only(command)
        && words[1] != "diff"
        && !words.contains(&"-y")
        && !words.contains(&"--dry-run")
}

struct Operator<'a> {
    bed: &'a Testbed,
    fixture: &'a Fixture,
    /// The fixture's AWS files (both profiles), without AWS_PROFILE: the command says.
    aws: Vec<(String, String)>,
    home: tempfile::TempDir,
    path: String,
}

impl Operator<'_> {
    fn shell(&self, command: &mut Command) {
        command
            .current_dir(self.fixture.root())
            .env("PATH", &self.path)
            .env("HOME", self.home.path())
            .env("DEPLOY_REGISTRY", &self.bed.registry)
            .env("NO_COLOR", "1")
            .env("TERM", "xterm")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("DEPLOY_PROFILE")
            .env_remove("RUST_LOG")
            .envs(self.aws.iter().cloned());
    }

    /// Selects the terraform workspace, as the troubleshooting table tells an operator
    /// whose workspace does not match the environment about to be deployed.
    fn select_workspace(&self, environment: &str) {
        let mut command = Command::new(&self.bed.terraform);
        command.args([
            "-chdir=infra/terraform/aws",
            "workspace",
            "select",
            environment,
        ]);
        self.shell(&mut command);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs one README command; the exit code and everything it printed.
    fn run(&self, line: &str) -> (Option<i32>, String) {
        let mut command = if asks(line) {
            let environment = flag(line, "--var-file")
                .and_then(|file| file.strip_prefix("tfvars/"))
                .and_then(|file| file.strip_suffix(".tfvars"))
                .expect("an interactive README deploy names its --var-file");
            // The menu lists the profiles sorted (prod, sandbox): pick the environment's.
            let down = if environment == "sandbox" {
                "\\x1b[B\\r"
            } else {
                "\\r"
            };
            let mut command = Command::new(&self.bed.python);
            command
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/pty_run.py"))
                .args(["--timeout", "300"])
                .args(["--expect", "AWS profile to deploy with", "--send", down])
                .args(["--expect", "Type y to build and push", "--send", "y\\r"])
                .args(["--", "sh", "-c", line]);
            command
        } else {
            let mut command = Command::new("sh");
            command.args(["-c", line]);
            command
        };
        self.shell(&mut command);
        let output = command.output().unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), printed)
    }
}

#[test]
fn every_command_in_the_readme_runs_as_documented() {
    let bed = Testbed::get();
    // Its deploys build images, outside the Deploy harness.
    let _docker = DockerUse::shared();
    let fixture = Fixture::unique();
    let (prod, sandbox) = bootstrap_prod_and_sandbox(&bed, &fixture);
    assert_ne!(prod.summary["account_id"], sandbox.summary["account_id"]);
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_deploy"))
        .parent()
        .unwrap()
        .to_owned();
    let operator = Operator {
        bed: &bed,
        fixture: &fixture,
        aws: sandbox
            .vars()
            .into_iter()
            .filter(|(key, _)| key != "AWS_PROFILE")
            .collect(),
        home: tempfile::tempdir().unwrap(),
        path: format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    };

    let commands = readme_commands();
    assert!(commands.len() >= 10, "README commands found: {commands:?}");
    // Every command said to run elsewhere is still documented: the list stays honest.
    for (known, _) in RUN_ELSEWHERE {
        assert!(
            commands.iter().any(|line| line == known),
            "RUN_ELSEWHERE lists {known:?}, which no document's sh block holds any more"
        );
    }
    let mut ran = Vec::new();
    for line in &commands {
        if let Some((_, elsewhere)) = RUN_ELSEWHERE.iter().find(|(known, _)| known == line) {
            eprintln!("README: not run here: {line} ({elsewhere})");
            continue;
        }
        assert!(
            line.starts_with("deploy "),
            "a README command this test does not know how to run: {line:?}; run it here or list it in RUN_ELSEWHERE"
        );
        // The environment: the tfvars file's, else the profile's (profiles are named
        // after environments here).
        let named = flag(line, "--var-file")
            .and_then(|file| file.strip_prefix("tfvars/"))
            .and_then(|file| file.strip_suffix(".tfvars"));
        let environment = named
            .or_else(|| flag(line, "--profile"))
            .unwrap_or("sandbox");
        // A deploy needs its workspace selected, as the troubleshooting table says; a
        // read-only command reads the one its --var-file names, else the selected one.
        if !read_only(line) || named.is_none() {
            operator.select_workspace(environment);
        }
        if line.contains("--changed") && !line.contains("--dry-run") {
            // Something to roll: one service changes, as in the runbook's example (and
            // then sandbox runs a billing that prod does not: the promotion copies it).
            // A new content each time: the README deploys with --changed more than once.
            fixture.write(
                "services/billing/src/readme.ts",
                &format!("export const readme = {};\n", ran.len()),
            );
            fixture.commit_all("billing: a change");
        }
        let (code, printed) = operator.run(line);
        assert_eq!(code, Some(0), "README command `{line}` failed:\n{printed}");
        check(line, &printed, &fixture, operator.home.path());
        if asks(line) || words_of(line).contains(&"-y") {
            // A deploy reached the account of the environment it named, and rolled.
            let account = if environment == "prod" {
                &prod
            } else {
                &sandbox
            }
            .summary["account_id"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                printed.contains(&format!("AWS account {account}")),
                "`{line}` deployed to {account}:\n{printed}"
            );
            assert!(printed.contains("yes (:"), "`{line}` rolled:\n{printed}");
        }
        ran.push(line.clone());
    }
    eprintln!("README: ran {} commands: {ran:#?}", ran.len());
}

/// What each kind of README command must have shown, beyond exiting 0.
fn check(line: &str, printed: &str, fixture: &Fixture, home: &Path) {
    let has = |needle: &str| {
        assert!(
            printed.contains(needle),
            "`{line}` did not print {needle:?}:\n{printed}"
        )
    };
    let words = words_of(line);
    match words[1] {
        "status" if line.contains("--output json") => {
            let json: serde_json::Value = serde_json::from_str(printed.trim())
                .unwrap_or_else(|err| panic!("`{line}` is not JSON ({err}):\n{printed}"));
            if let Some(file) = flag(line, "--var-file") {
                let environment = file
                    .trim_start_matches("tfvars/")
                    .trim_end_matches(".tfvars");
                assert_eq!(json["cluster"], format!("platform-{environment}"), "{json}");
            }
            assert!(json["services"].is_array(), "{json}");
        }
        "status" => has("billing"),
        "prune" => has("dry run"),
        "diff" => {
            has("terraform plan, reviewed:");
            has("no other infrastructure changes");
        }
        "unlock" => has("deploy lock"),
        // Run after the README's `rollback … -y`: the newest record is that rollback.
        "history" => {
            has("SERVICES (OLD → NEW)");
            has("rollback");
        }
        "completions" => {
            let script = std::fs::read_to_string(home.join(".deploy.bash")).unwrap();
            assert!(script.contains("complete -F"), "{script}");
        }
        "man" => {
            let page = std::fs::read_to_string(fixture.path("deploy.1")).unwrap();
            assert!(page.contains(".TH"), "{page}");
        }
        _ if words.contains(&"--dry-run") => has("Plan:"),
        _ if line.contains("--changed") => {
            has("billing");
            has("Summary");
        }
        _ => has("Summary"),
    }
}
