//! Reading the command line into a [`Cli`], with what clap alone does not say: global
//! options before a command, `--changed graph`, a bare `deploy`, `deploy help --help`.

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, ValueEnum};

use super::{ChangedMode, Cli};

/// The commands, named in the error of a bare `deploy`.
const COMMANDS: &str = "status, diff, rollback, undo, promote, history, unlock, prune";

/// Parses the process's command line, or exits 2 with clap's usage error.
pub fn parse() -> Cli {
    parse_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
}

/// Parses a command line (the program name first). On top of clap: the global options
/// (`-C`, `--profile`, `--output`, `-v`, `-q`) are accepted before a command as well as
/// after it, while a deploy's own flags are refused with a command; `--changed graph`
/// is told to write `--changed=graph`; a bare `deploy` names the commands too.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Cli::command();
    if let Some(mode) = changed_mode_after_a_space(&args) {
        return Err(command.error(
            ErrorKind::InvalidValue,
            format!("--changed takes its mode after an equals sign: use '--changed={mode}'"),
        ));
    }
    // `deploy help --help`: clap's help command takes no flags; it means `deploy --help`.
    let args = match args.get(1..) {
        Some([help, flag]) if help == "help" && (flag == "--help" || flag == "-h") => {
            vec![args[0].clone(), flag.clone()]
        }
        _ => args,
    };
    let bare = args.len() == 1;
    let matches = command.try_get_matches_from_mut(args).map_err(|err| {
        if bare && err.kind() == ErrorKind::MissingRequiredArgument {
            Cli::command().error(
                ErrorKind::MissingRequiredArgument,
                format!(
                    "a deploy needs --var-file <PATH> (or --skip-tf); or run a command: \
                     {COMMANDS} (see 'deploy --help')"
                ),
            )
        } else {
            err
        }
    })?;
    if let Some((name, sub)) = matches.subcommand() {
        if let Some(err) = global_option_of_a_printer(&mut command, name, &matches, sub) {
            return Err(err);
        }
        let deploy_only = command
            .get_arguments()
            .filter(|arg| !arg.is_global_set())
            .find(|arg| {
                matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            });
        if let Some(arg) = deploy_only {
            let flag = arg
                .get_long()
                .map(|long| format!("--{long}"))
                .unwrap_or_else(|| arg.get_id().to_string());
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                format!("{flag} is a flag of a deploy, not of 'deploy {name}'"),
            ));
        }
    }
    Cli::from_arg_matches(&matches)
}

/// `deploy man` and `deploy completions` print a document and read nothing: a global
/// option typed with them (`deploy man --output json`) is refused, where clap, for
/// which the globals belong to every command, would ignore it. An option set in the
/// environment (`DEPLOY_OUTPUT`) is not typed, and not refused.
fn global_option_of_a_printer(
    command: &mut clap::Command,
    name: &str,
    matches: &clap::ArgMatches,
    sub: &clap::ArgMatches,
) -> Option<clap::Error> {
    let usage = match name {
        "man" => "deploy man > deploy.1",
        "completions" => "deploy completions <SHELL>",
        _ => return None,
    };
    let typed = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .find(|arg| {
            let id = arg.get_id().as_str();
            [matches, sub]
                .iter()
                .any(|m| m.value_source(id) == Some(ValueSource::CommandLine))
        })?;
    let flag = match (typed.get_short(), typed.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        _ => typed.get_id().to_string(),
    };
    Some(command.error(
        ErrorKind::ArgumentConflict,
        format!("{flag} is not an option of 'deploy {name}', which only prints: {usage}"),
    ))
}

/// `--changed graph`: the mode written after a space, where clap would read a command.
fn changed_mode_after_a_space(args: &[OsString]) -> Option<String> {
    let end = args
        .iter()
        .position(|arg| arg == "--")
        .unwrap_or(args.len());
    args[..end].windows(2).find_map(|pair| {
        let mode = pair[1].to_str()?;
        let is_mode = ChangedMode::value_variants().iter().any(|variant| {
            variant
                .to_possible_value()
                .is_some_and(|v| v.matches(mode, false))
        });
        (pair[0] == "--changed" && is_mode).then(|| mode.to_string())
    })
}
