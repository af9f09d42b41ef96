//! The `tenet-mcp` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use tenet_mcp::{
    cli::{CatalogCommand, Cli, Command, EXIT_CONFIG, catalog_check},
    serve::{self, ServeError},
};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log_level) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!(
                "tenet-mcp: --log-level `{}` is not a level or filter ({error}); use error, warn, info, debug or trace",
                cli.log_level
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Logs go to stderr only: in stdio mode stdout carries JSON-RPC.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    match cli.command {
        Command::Catalog {
            command: CatalogCommand::Check(args),
        } => catalog_check(&args),
        Command::Serve(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("tenet-mcp: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(ServeError::Config(error)) => {
                    eprintln!("tenet-mcp: {error}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(error) => {
                    eprintln!("tenet-mcp: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
