//! The `tenet-mcp` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
#[cfg(feature = "emulator")]
use tenet_mcp::{cli::ExitStatus, emulator};
use tenet_mcp::{
    cli::{
        CatalogCommand, Cli, Command, EXIT_CONFIG, EXIT_FAILURE, catalog_check, catalog_import,
        catalog_list, exit_code, job_ref,
    },
    serve,
    telemetry::{self, Exporter},
};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

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
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(telemetry::without_call_spans(filter));
    let otlp_endpoint = match &cli.command {
        Command::Serve(args) => args.otlp_endpoint.as_deref(),
        _ => None,
    };
    let (exporter, traces) = match otlp_endpoint.map(Exporter::start) {
        Some(Ok((exporter, layer))) => (Some(exporter), Some(layer)),
        Some(Err(error)) => {
            eprintln!("tenet-mcp: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    let code = run(cli);
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    code
}

/// Runs the parsed command.
fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Catalog {
            command: CatalogCommand::Check(args),
        } => catalog_check(&args),
        Command::Catalog {
            command: CatalogCommand::List(args),
        } => catalog_list(&args),
        Command::Catalog {
            command: CatalogCommand::Import(args),
        } => catalog_import(&args),
        Command::JobRef(args) => job_ref(&args),
        #[cfg(feature = "emulator")]
        Command::Audit(args) => emulator::cli::run_audit(&args),
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => block_on(emulator::cli::run_emulator(args)),
        #[cfg(feature = "emulator")]
        Command::Reviews(args) => block_on(emulator::cli::run_reviews(args)),
        #[cfg(not(feature = "emulator"))]
        Command::NoEmulator(_) => tenet_mcp::cli::no_emulator(),
        Command::Serve(args) => {
            // One stdio client is served best on one thread: no cross-thread wake-ups per call.
            let runtime = runtime(if args.transport == serve::Transport::Stdio {
                tokio::runtime::Builder::new_current_thread()
            } else {
                multi_thread(args.http.threads.map(usize::from))
            });
            let Some(runtime) = runtime else {
                return ExitCode::from(EXIT_FAILURE);
            };
            exit_code(runtime.block_on(serve::run(args, tenet_mcp::shutdown_signal())))
        }
    }
}

/// The multi-thread runtime's builder, with `threads` workers (default: one per CPU core).
fn multi_thread(threads: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder
}

/// `builder`'s runtime with I/O and timers, or `None` once it said why it cannot start.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|error| eprintln!("tenet-mcp: cannot start the async runtime: {error}"))
        .ok()
}

/// Runs a command's future; its error is printed and mapped to its exit code.
#[cfg(feature = "emulator")]
fn block_on(command: impl Future<Output = Result<(), impl ExitStatus>>) -> ExitCode {
    match runtime(multi_thread(None)) {
        Some(runtime) => exit_code(runtime.block_on(command)),
        None => ExitCode::from(EXIT_FAILURE),
    }
}
