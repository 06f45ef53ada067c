//! `deploy`: parse the flags, set up diagnostics, run, print the error chain, exit.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory;
use deploy::cli::Cli;
use deploy::error::{self, WritingStdout};
use deploy::request::{CommandRequest, Globals};

fn main() {
    let cli = deploy::cli::parse();
    let globals = Globals::from_cli(&cli);
    deploy::ui::logging::init(globals.verbose, globals.quiet);
    let outcome = match CommandRequest::from_cli(&cli) {
        CommandRequest::Deploy(request) => deploy::deploy::run(&globals, &request),
        CommandRequest::Status(request) => deploy::commands::status::run(&globals, &request),
        CommandRequest::Prune(request) => deploy::commands::prune::run(&globals, &request),
        CommandRequest::Unlock(request) => deploy::commands::unlock::run(&globals, &request),
        CommandRequest::Continue(request) => deploy::commands::pauses::run(&globals, &request),
        CommandRequest::History(request) => deploy::commands::history::run(&globals, &request),
        CommandRequest::Completions(shell) => {
            // Rendered first: clap_complete panics when its writer fails (stdout closed).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "deploy", &mut script);
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
            eprintln!("{}", deploy::ui::style::error_line(&message));
            code
        }
    };
    std::process::exit(code as i32);
}
