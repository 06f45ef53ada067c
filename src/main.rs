//! `deploy`: parse the flags, set up diagnostics, run, print the error chain, exit.
//! With `--output json` a failure is also one JSON document on stdout, when the command
//! wrote none of its own.

use std::ffi::OsString;
use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory;
use deploy::cli::Cli;
use deploy::commands::complete;
use deploy::error::{self, WritingStdout};
use deploy::request::{CommandRequest, Globals};
use deploy::ui::output::{self, Ending, OutputFormat};

fn main() {
    // The completion scripts ask for tfvars files and names this way (see cli::completions).
    if let Some(what) = std::env::var_os(complete::VARIABLE).filter(|what| !what.is_empty()) {
        let repo = std::env::var_os("DEPLOY_REPO")
            .filter(|repo| !repo.is_empty())
            .map(std::path::PathBuf::from);
        complete::print(repo.as_deref(), &what.to_string_lossy());
        return;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = deploy::cli::parse_from(&args).unwrap_or_else(|err| refuse(&args, &err));
    let globals = Globals::from_cli(&cli);
    deploy::ui::logging::init(globals.verbose, globals.quiet);
    let outcome = match CommandRequest::from_cli(&cli) {
        CommandRequest::Deploy(request) => {
            deploy::deploy::run(&globals, &request, &mut deploy::deploy::Document::Stdout)
        }
        CommandRequest::Status(request) => deploy::commands::status::run(&globals, &request),
        CommandRequest::Prune(request) => deploy::commands::prune::run(&globals, &request),
        CommandRequest::Unlock(request) => deploy::commands::unlock::run(&globals, &request),
        CommandRequest::Continue(request) => deploy::deploy::answer_pauses(&globals, &request),
        CommandRequest::History(request) => deploy::commands::history::run(&globals, &request),
        CommandRequest::Completions(shell) => {
            // Rendered first: clap_complete panics when its writer fails (stdout closed).
            let script = deploy::cli::completions::script(shell, &mut Cli::command());
            std::io::stdout().write_all(&script).context(WritingStdout)
        }
        CommandRequest::Man => {
            deploy::cli::man::render(&mut std::io::stdout()).context(WritingStdout)
        }
    };
    let code = match outcome {
        Ok(()) => error::ExitCode::Success,
        Err(err) if error::stdout_closed(&err) => error::ExitCode::Success,
        Err(err) => {
            let code = error::exit_code_for(&err);
            let message = error::render(&err, cli.verbose);
            deploy::ui::progress::settle(&mut std::io::stderr());
            let ending = Ending::failed(message.clone(), code as i32, None);
            output::emit_failure(&ending, globals.output);
            eprintln!("{}", deploy::ui::style::error_line(&message));
            code
        }
    };
    std::process::exit(code as i32);
}

/// A command line clap refused: its error on stderr (with the usage), and with
/// `--output json` (or `DEPLOY_OUTPUT=json`) one JSON document saying so on stdout.
fn refuse(args: &[OsString], err: &clap::Error) -> ! {
    if err.use_stderr() && json_asked(args, std::env::var_os("DEPLOY_OUTPUT")) {
        let rendered = err.to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
        let ending = Ending::failed(message, err.exit_code(), None);
        output::emit_failure(&ending, OutputFormat::Json);
    }
    err.exit()
}

/// Whether a command line clap could not parse asked for JSON: the last `--output`
/// given, else the environment's; never for `man` and `completions`.
fn json_asked(args: &[OsString], env: Option<OsString>) -> bool {
    let mut asked = env.map(|value| value == "json");
    let mut words = args
        .iter()
        .skip(1)
        .map(|arg| arg.to_str().unwrap_or_default());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        // They print text only, and refuse `--output` (cli::parse): never a document.
        if word == "man" || word == "completions" {
            return false;
        }
        if let Some(value) = word.strip_prefix("--output=") {
            asked = Some(value == "json");
        } else if word == "--output" {
            asked = words.next().map(|value| value == "json");
        }
    }
    asked.unwrap_or(false)
}
