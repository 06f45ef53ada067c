//! Diagnostics through `tracing` on stderr: `-v`/`-vv` or `RUST_LOG`, nothing by default
//! but warnings. Results go to stdout and progress to stderr elsewhere; secrets never
//! reach any of them.

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "deploy=info",
        (false, 2) => "deploy=debug",
        (false, _) => "deploy=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
