//! `deploy`: parse the flags, set up diagnostics, run, print the error chain, exit.

use clap::Parser;
use deploy::{cli::Cli, error};

fn main() {
    let cli = Cli::parse();
    deploy::logging::init(cli.verbose, cli.quiet);
    let code = match deploy::deploy::run(&cli) {
        Ok(()) => error::ExitCode::Success,
        Err(err) => {
            let code = error::exit_code_for(&err);
            eprintln!("error: {err:#}");
            code
        }
    };
    std::process::exit(code as i32);
}
