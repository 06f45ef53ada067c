//! `deploy completions <SHELL>`: clap_complete's script, plus what it cannot know. The
//! tfvars files `--var-file` (`--compare`, `--from`, `--to`) takes are relative to the
//! terraform directory, not to the shell's, and `--services`/`--spas` take names, not
//! files: for those the bash, zsh and fish scripts ask `deploy` itself
//! (`DEPLOY_COMPLETE=var-files|services|spas deploy`, with `DEPLOY_REPO` for a `-C`
//! typed on the line; see `commands::complete`). Elvish and PowerShell get clap's
//! script as it is.

use clap_complete::Shell;

/// The options whose value is a tfvars file, by long name.
const TFVARS_OPTIONS: [&str; 4] = ["var-file", "compare", "from", "to"];

/// The completion script of `shell` for `command`.
pub fn script(shell: Shell, command: &mut clap::Command) -> Vec<u8> {
    let mut generated = Vec::new();
    clap_complete::generate(shell, command, "deploy", &mut generated);
    let generated = String::from_utf8_lossy(&generated).into_owned();
    match shell {
        Shell::Bash => format!("{generated}{BASH}"),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => {
            let commands: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
            fish(&generated, &commands)
        }
        _ => generated,
    }
    .into_bytes()
}

/// Bash: a function in front of clap's `_deploy` answers for the values it knows, and
/// hands every other word to `_deploy`.
const BASH: &str = r#"
# The values clap's script cannot know, asked of deploy itself.
_deploy_ask() {
    local i repo=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -C|--repo) repo="${COMP_WORDS[i+1]}" ;;
        esac
    done
    if [[ -n "$repo" ]]; then
        DEPLOY_COMPLETE="$1" DEPLOY_REPO="$repo" "${COMP_WORDS[0]}" 2>/dev/null
    else
        DEPLOY_COMPLETE="$1" "${COMP_WORDS[0]}" 2>/dev/null
    fi
}
_deploy_values() {
    local cur="${COMP_WORDS[COMP_CWORD]}" option="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ "$option" == "=" && $COMP_CWORD -gt 1 ]]; then
        option="${COMP_WORDS[COMP_CWORD-2]}"
    fi
    case "$option" in
        --var-file|--compare|--from|--to)
            COMPREPLY=($(compgen -W "$(_deploy_ask var-files)" -- "$cur"))
            # None that matches: the shell's own file names (a path from here works too).
            return 0
            ;;
        --services|--spas)
            local kind=services
            [[ "$option" == "--spas" ]] && kind=spas
            local before="" last="$cur"
            if [[ "$cur" == *,* ]]; then
                before="${cur%,*},"
                last="${cur##*,}"
            fi
            compopt +o default +o bashdefault 2>/dev/null
            COMPREPLY=($(compgen -P "$before" -W "$(_deploy_ask "$kind")" -- "$last"))
            return 0
            ;;
    esac
    _deploy "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _deploy_values -o nosort -o bashdefault -o default deploy
else
    complete -F _deploy_values -o bashdefault -o default deploy
fi
"#;

/// Zsh: clap's `_arguments` specs name `_files` for a tfvars option and nothing for a
/// list of names; they name these functions instead.
const ZSH: &str = r#"
# The values clap's script cannot know, asked of deploy itself.
_deploy_ask() {
    local repo=${opt_args[-C]:-${opt_args[--repo]}}
    if [[ -n $repo ]]; then
        DEPLOY_COMPLETE=$1 DEPLOY_REPO=$repo ${words[1]} 2>/dev/null
    else
        DEPLOY_COMPLETE=$1 ${words[1]} 2>/dev/null
    fi
}
_deploy_tfvars() {
    local -a found
    found=(${(f)"$(_deploy_ask var-files)"})
    if (( ${#found} )); then
        compadd -a found
    else
        _files
    fi
}
_deploy_services() {
    local -a found
    found=(${(f)"$(_deploy_ask services)"})
    _sequence compadd -a found
}
_deploy_spas() {
    local -a found
    found=(${(f)"$(_deploy_ask spas)"})
    _sequence compadd -a found
}
"#;

fn zsh(generated: &str) -> String {
    let mut out = String::new();
    for (index, line) in generated.lines().enumerate() {
        out.push_str(&zsh_line(line));
        out.push('\n');
        // After `#compdef deploy`: the functions the specs name.
        if index == 0 {
            out.push_str(ZSH);
        }
    }
    out
}

/// One line of clap's zsh script with the action of a tfvars or names option replaced.
fn zsh_line(line: &str) -> String {
    // `'--var-file=[…`, `'*--services=[…` (repeatable), `'(--skip-spas)*--spas=[…`.
    let option = |long: &str| {
        let spec = format!("--{long}=[");
        line.match_indices(&spec)
            .any(|(at, _)| at > 0 && matches!(line.as_bytes()[at - 1], b'\'' | b'*' | b')'))
    };
    let Some(colon) = line.rfind(':') else {
        return line.to_owned();
    };
    let action = if TFVARS_OPTIONS.iter().any(|long| option(long)) {
        "_deploy_tfvars"
    } else if option("services") {
        "_deploy_services"
    } else if option("spas") {
        "_deploy_spas"
    } else {
        return line.to_owned();
    };
    let end = line[colon..].find('\'').map_or(line.len(), |at| colon + at);
    format!("{}:{action}{}", &line[..colon], &line[end..])
}

/// Fish: the tfvars and names options get their candidates from deploy, not files.
const FISH: &str = r#"
# The values clap's script cannot know, asked of deploy itself.
function __deploy_ask
    set -l words (commandline -opc)
    set -l repo
    for i in (seq (count $words))
        if contains -- $words[$i] -C --repo
            set repo $words[(math $i + 1)]
        end
    end
    set -l before (string replace -r '[^,]*$' '' -- (commandline -ct))
    if test "$argv[1]" = var-files
        set before ''
    end
    set -l env DEPLOY_COMPLETE=$argv[1]
    if test -n "$repo"
        set -a env DEPLOY_REPO=$repo
    end
    for candidate in (env $env $words[1] 2>/dev/null)
        echo $before$candidate
    end
end
"#;

/// `commands`: the subcommands' names. A deploy's own option is offered while no
/// command is typed: clap's `__fish_deploy_needs_command` says so by parsing the line,
/// which fails while the option waits for its value, so its value would get no
/// candidates; `__fish_seen_subcommand_from` does not parse.
fn fish(generated: &str, commands: &[&str]) -> String {
    let no_command = format!(
        "-n \"not __fish_seen_subcommand_from {}\"",
        commands.join(" ")
    );
    let mut out = String::from(FISH);
    for line in generated.lines() {
        let option = |long: &str| line.contains(&format!(" -l {long} "));
        let kind = if TFVARS_OPTIONS.iter().any(|long| option(long)) {
            Some("var-files")
        } else if option("services") {
            Some("services")
        } else if option("spas") {
            Some("spas")
        } else {
            None
        };
        match kind {
            Some(kind) => {
                let line = line
                    .replace(" -r -F", " -r")
                    .replace("-n \"__fish_deploy_needs_command\"", &no_command)
                    .trim_end()
                    .to_owned();
                out.push_str(&format!("{line} -f -a \"(__deploy_ask {kind})\"\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}
