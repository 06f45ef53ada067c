//! Shell completions that know the repository: `--var-file` (and `--compare`, `--from`,
//! `--to`) completes the tfvars files by the path it takes, relative to the terraform
//! directory, from wherever the shell is; `--services` and `--spas` complete names, one
//! after another in a comma list. The scripts ask the binary (`DEPLOY_COMPLETE`).

use std::path::Path;
use std::process::Command;

use crate::support::{Deploy, Fixture};

/// The completion script of `shell`, written to a file in `dir`.
fn script(shell: &str, dir: &Path) -> std::path::PathBuf {
    let out = Deploy::new().args(["completions", shell]).run();
    out.success();
    let path = dir.join(format!("deploy.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// What bash completes for `words` (the last one is completed), run in `cwd`: the
/// function called as bash calls it (the command, the word, the word before).
fn bash_complete(script: &Path, cwd: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_deploy"))
        .chain(words.iter().copied())
        .map(|word| format!("'{word}'"))
        .collect();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _deploy_values \"${{COMP_WORDS[0]}}\" \"${{COMP_WORDS[{cword}]}}\" \"${{COMP_WORDS[{cword}-1]}}\" 2>/dev/null; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            cword = words.len()
        ))
        .current_dir(cwd)
        .env_remove("DEPLOY_REPO")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_tfvars_files_from_the_terraform_directory_and_service_names() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox").write_tfvars("prod");
    let scripts = tempfile::tempdir().unwrap();
    let bash = script("bash", scripts.path());
    let root = fixture.root();
    // From the repository root, where `tfvars/` is not: the terraform directory's.
    assert_eq!(
        bash_complete(&bash, root, &["--var-file", ""]),
        [
            "tfvars/example.tfvars",
            "tfvars/prod.tfvars",
            "tfvars/sandbox.tfvars"
        ]
    );
    assert_eq!(
        bash_complete(&bash, root, &["status", "--compare", "tfvars/s"]),
        ["tfvars/sandbox.tfvars"]
    );
    assert_eq!(
        bash_complete(
            &bash,
            root,
            &["promote", "--from", "tfvars/sandbox.tfvars", "--to", ""]
        ),
        [
            "tfvars/example.tfvars",
            "tfvars/prod.tfvars",
            "tfvars/sandbox.tfvars"
        ]
    );
    // Names, not files; the next one of a comma list.
    assert_eq!(
        bash_complete(&bash, root, &["--skip-tf", "--services", "a"]),
        ["api", "auth"]
    );
    assert_eq!(
        bash_complete(&bash, root, &["status", "--services", "api,b"]),
        ["api,billing"]
    );
    let spas = bash_complete(&bash, root, &["rollback", "HEAD", "--spas", ""]);
    assert!(
        !spas.is_empty() && spas.iter().all(|spa| !spa.contains('/')),
        "{spas:?}"
    );
    // From elsewhere, with -C naming the repository.
    let elsewhere = tempfile::tempdir().unwrap();
    let root_arg = root.display().to_string();
    assert_eq!(
        bash_complete(
            &bash,
            elsewhere.path(),
            &["-C", &root_arg, "history", "--var-file", "tfvars/p"]
        ),
        ["tfvars/prod.tfvars"]
    );
    // Outside a repository: nothing to offer, and no error printed into the line.
    assert!(bash_complete(&bash, elsewhere.path(), &["--services", ""]).is_empty());
    // Flags are still clap's.
    let flags = bash_complete(&bash, root, &["--sk"]);
    assert!(flags.contains(&"--skip-tf".to_owned()), "{flags:?}");
}

#[test]
fn the_binary_answers_the_scripts_questions_quietly() {
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let ask = |what: &str, cwd: &Path| {
        Command::new(env!("CARGO_BIN_EXE_deploy"))
            .env("DEPLOY_COMPLETE", what)
            .env_remove("DEPLOY_REPO")
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    let out = ask("services", fixture.root());
    assert!(out.status.success());
    let services = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(services.lines().any(|line| line == "api"), "{services}");
    assert!(!services.contains("slack-agent"), "excluded: {services}");
    let out = ask("var-files", fixture.root());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tfvars/example.tfvars\ntfvars/sandbox.tfvars\n"
    );
    let outside = tempfile::tempdir().unwrap();
    for what in ["services", "nonsense"] {
        let out = ask(what, outside.path());
        assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty());
    }
}

/// zsh and fish: the options name the functions that ask deploy; each script parses
/// (checked when the shell is installed).
#[test]
fn zsh_and_fish_ask_deploy_for_tfvars_and_names() {
    let scripts = tempfile::tempdir().unwrap();
    let zsh = std::fs::read_to_string(script("zsh", scripts.path())).unwrap();
    for line in zsh.lines() {
        if line.contains("--var-file=[") || line.contains("--to=[") {
            assert!(line.contains(":_deploy_tfvars'"), "{line}");
        }
        if line.contains("--services=[") {
            assert!(line.contains(":_deploy_services'"), "{line}");
        }
    }
    let fish = std::fs::read_to_string(script("fish", scripts.path())).unwrap();
    for line in fish.lines().filter(|line| line.starts_with("complete ")) {
        if line.contains(" -l var-file ") {
            assert!(
                line.ends_with("-r -f -a \"(__deploy_ask var-files)\""),
                "{line}"
            );
        }
        if line.contains(" -l services ") {
            assert!(
                line.ends_with("-r -f -a \"(__deploy_ask services)\""),
                "{line}"
            );
        }
    }
    for (shell, path) in [("zsh", "deploy.zsh"), ("fish", "deploy.fish")] {
        let checked = Command::new(shell)
            .arg("-n")
            .arg(scripts.path().join(path))
            .output();
        match checked {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => eprintln!("{shell} is not installed: its script's syntax is not checked"),
        }
    }
}

/// Fish completes a command line itself (`complete -C`): checked when it is installed.
#[test]
fn fish_completes_tfvars_files_and_service_names() {
    if Command::new("fish").arg("--version").output().is_err() {
        eprintln!("fish is not installed: skipped");
        return;
    }
    let fixture = Fixture::new();
    fixture.write_tfvars("sandbox");
    let scripts = tempfile::tempdir().unwrap();
    let fish = script("fish", scripts.path());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deploy")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .arg("-c")
            .arg(format!("source '{}'; complete -C '{line}'", fish.display()))
            .current_dir(fixture.root())
            .env("PATH", &path)
            .env_remove("DEPLOY_REPO")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        complete("deploy --var-file "),
        ["tfvars/example.tfvars", "tfvars/sandbox.tfvars"]
    );
    assert_eq!(complete("deploy undo --services api,bi"), ["api,billing"]);
    assert_eq!(
        complete("deploy status --compare tfvars/s"),
        ["tfvars/sandbox.tfvars"]
    );
}
