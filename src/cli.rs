//! The command line: `serve`, `catalog check`, and the emulator's commands.
//!
//! Every command returns an [`ExitCode`]-ready result; messages for people go to
//! stderr (stdout belongs to JSON-RPC in stdio mode, and to command output otherwise).

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::{
    catalog::Catalog,
    emulator::cli::{AuditArgs, EmulatorArgs, ReviewsArgs},
    serve::ServeArgs,
};

/// tenet-mcp: an MCP server that puts every AI agent tool call under Tenet's runtime authority.
#[derive(Debug, Parser)]
#[command(name = "tenet-mcp", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log level for stderr: error, warn, info, debug or trace (or a tracing filter).
    #[arg(long, global = true, env = "TENET_MCP_LOG", default_value = "info")]
    pub log_level: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (stdio by default), governing every tool call through Tenet.
    Serve(ServeArgs),
    /// Work with catalog files.
    Catalog {
        /// What to do with the catalog.
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run a local Tenet emulator (same HTTP contract, real policy, approvals and audit log).
    Emulator(EmulatorArgs),
    /// List, approve or deny the emulator's escalated calls.
    Reviews(ReviewsArgs),
    /// Check an emulator audit log.
    Audit(AuditArgs),
}

/// `tenet-mcp catalog ...`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate catalogs and list each tool's MCP name, method and path.
    Check(CheckArgs),
}

/// Arguments of `catalog check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Catalog files or folders; the shipped catalog when none is given.
    pub paths: Vec<PathBuf>,
}

/// Exit code for a configuration error (bad flags, missing key, invalid catalog).
pub const EXIT_CONFIG: u8 = 2;

/// Runs `catalog check`: prints every tool, or every problem.
pub fn catalog_check(args: &CheckArgs) -> ExitCode {
    match Catalog::load_or_embedded(&args.paths) {
        Ok(catalog) => {
            for tool in catalog.tools() {
                println!(
                    "{:<44} {:<7} {}",
                    tool.mcp_name,
                    tool.method.as_str(),
                    tool.path
                );
            }
            eprintln!(
                "ok: {} tool(s) in {} service(s): {}",
                catalog.tools().len(),
                catalog.services().len(),
                catalog.services().join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(1)
        }
    }
}
