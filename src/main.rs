//! `deploy`: parse the flags, set up diagnostics, run, print the error chain, exit.

use std::io::Write as _;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};
use deploy::cli::{Cli, Command};
use deploy::error::{self, WritingStdout};

fn main() {
    let cli = Cli::parse();
    deploy::ui::logging::init(cli.verbose, cli.quiet);
    let outcome = match cli.command {
        Some(Command::Status { ref var_file }) => {
            deploy::commands::status::run(&cli, var_file.as_deref())
        }
        Some(Command::Completions { shell }) => {
            // Rendered first: clap_complete panics when its writer fails (stdout closed).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "deploy", &mut script);
            std::io::stdout().write_all(&script).context(WritingStdout)
        }
        Some(Command::Prune {
            keep,
            dry_run,
            skip_live_check,
            ref var_file,
        }) => {
            deploy::commands::prune::run(&cli, keep, dry_run, skip_live_check, var_file.as_deref())
        }
        Some(Command::Man) => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .context(WritingStdout),
        Some(Command::Unlock { ref var_file }) => deploy::commands::status::unlock(&cli, var_file),
        Some(Command::Rollback {
            ref revision,
            ref var_file,
            ref services,
            yes,
            dry_run,
            allow_infra_changes,
        }) => deploy::deploy::run_request(
            &cli,
            deploy::request::Request::rollback(
                &cli,
                revision,
                var_file,
                services.as_deref(),
                yes,
                dry_run,
                allow_infra_changes,
            ),
        ),
        Some(Command::Diff {
            ref var_file,
            changed,
            ref services,
        }) => deploy::deploy::run_request(
            &cli,
            deploy::request::Request::diff(&cli, var_file, changed, services.as_deref()),
        ),
        None => deploy::deploy::run(&cli),
    };
    let code = match outcome {
        Ok(()) => error::ExitCode::Success,
        Err(err) if error::stdout_closed(&err) => error::ExitCode::Success,
        Err(err) => {
            let code = error::exit_code_for(&err);
            let message = error::render(&err, cli.verbose);
            eprintln!("{} {message}", deploy::ui::style::error_label());
            code
        }
    };
    std::process::exit(code as i32);
}
