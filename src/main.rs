//! `deploy`: parse the flags, set up diagnostics, run, print the error chain, exit.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory;
use deploy::cli::Cli;
use deploy::commands::complete;
use deploy::error::{self, WritingStdout};
use deploy::request::{CommandRequest, Globals};

fn main() {
    // The completion scripts ask for tfvars files and names this way (see cli::completions).
    if let Some(what) = std::env::var_os(complete::VARIABLE).filter(|what| !what.is_empty()) {
        let repo = std::env::var_os("DEPLOY_REPO")
            .filter(|repo| !repo.is_empty())
            .map(std::path::PathBuf::from);
        complete::print(repo.as_deref(), &what.to_string_lossy());
        return;
    }
    let cli = deploy::cli::parse();
    let globals = Globals::from_cli(&cli);
    deploy::ui::logging::init(globals.verbose, globals.quiet);
    let outcome = match CommandRequest::from_cli(&cli) {
        CommandRequest::Deploy(request) => deploy::deploy::run(&globals, &request),
        CommandRequest::Status(request) => deploy::commands::status::run(&globals, &request),
        CommandRequest::Prune(request) => deploy::commands::prune::run(&globals, &request),
        CommandRequest::Unlock(request) => deploy::commands::unlock::run(&globals, &request),
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
            eprintln!("{}", deploy::ui::style::error_line(&message));
            code
        }
    };
    std::process::exit(code as i32);
}
