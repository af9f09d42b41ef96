//! The command line: `serve`, `catalog check`, `catalog list`, and the emulator's commands.
//!
//! Every command returns an [`ExitCode`]-ready result; messages for people go to
//! stderr (stdout belongs to JSON-RPC in stdio mode, and to command output otherwise).

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

#[cfg(feature = "emulator")]
use crate::emulator::{
    EmulatorError,
    cli::{AuditArgs, EmulatorArgs, ReviewsArgs, ReviewsError},
};
use crate::{
    catalog::{Catalog, CatalogError, JOB_STATUS_TOOL},
    config::ConfigError,
    error::ServeError,
    openapi::{ImportOptions, MAX_SPEC_BYTES, Naming, import},
    selection::SelectionArgs,
    serve::{ServeArgs, job_refs_for},
    tenet::ApiKey,
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
    #[cfg(feature = "emulator")]
    Emulator(EmulatorArgs),
    /// List, approve or deny the emulator's escalated calls.
    #[cfg(feature = "emulator")]
    Reviews(ReviewsArgs),
    /// Check an emulator audit log.
    #[cfg(feature = "emulator")]
    Audit(AuditArgs),
    /// Not in this build, which has no emulator: `emulator`, `reviews` and `audit` say how
    /// to get one.
    #[cfg(not(feature = "emulator"))]
    #[command(name = "emulator", visible_aliases = ["reviews", "audit"])]
    NoEmulator(NoEmulatorArgs),
    /// Print the `job_ref` an agent passes to `tenet_job_status` to follow a job its call
    /// did not start, such as an escalated call a person approved.
    JobRef(JobRefArgs),
}

/// Arguments of `job-ref`.
#[derive(Debug, Args)]
pub struct JobRefArgs {
    /// The agent the reference is for: its token's agent id over HTTP, else the
    /// server's --agent-id.
    #[arg(long, env = "TENET_AGENT_ID", default_value = "default")]
    pub agent_id: String,
    /// The job id (job_...), as `tenet-mcp reviews approve` or the approval page shows it.
    pub job_id: String,
}

/// The arguments of a command this build leaves out: taken as given, and not used.
#[cfg(not(feature = "emulator"))]
#[derive(Debug, Args)]
pub struct NoEmulatorArgs {
    /// Whatever followed the command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ignored: Vec<String>,
}

/// `tenet-mcp catalog ...`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate catalogs and list each tool's MCP name, method and path.
    Check(CheckArgs),
    /// Print the tools a server with these flags shows (catalog name, method, path).
    List(ListArgs),
    /// Turn an OpenAPI 3.0/3.1 description (JSON or YAML) into a catalog file, one tool
    /// per operation.
    Import(ImportArgs),
}

/// Arguments of `catalog list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// A catalog file or folder of them (repeatable), as `serve --catalog`; default: the shipped catalog.
    #[arg(long = "catalog", value_name = "PATH")]
    pub catalogs: Vec<PathBuf>,
    /// Which tools, as `serve` takes them.
    #[command(flatten)]
    pub selection: SelectionArgs,
}

/// Arguments of `catalog import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The OpenAPI description, a .json, .yaml or .yml file.
    pub spec: PathBuf,
    /// The service name: the catalog's `service` and the first part of every tool name.
    #[arg(long)]
    pub service: String,
    /// The API's base URL; the description's first server when not given.
    #[arg(long)]
    pub base_url: Option<String>,
    /// How tool names are derived.
    #[arg(long, value_enum, default_value_t = Naming::Rest)]
    pub naming: Naming,
    /// Import only tools whose name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out tools whose name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Flag tools whose name matches this glob destructive (repeatable; every DELETE is).
    #[arg(long, value_name = "GLOB")]
    pub destructive: Vec<String>,
    /// Leave this parameter out of every tool, because the credential supplies it
    /// (Slack's `token`); repeatable, case-insensitive.
    #[arg(long, value_name = "NAME")]
    pub omit_param: Vec<String>,
    /// Write the catalog here (replaced whole, never half-written); stdout when not given.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `catalog check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Catalog files or folders; the shipped catalog when none is given.
    pub paths: Vec<PathBuf>,
}

/// Exit code for a failure while running.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a configuration error (bad flags, missing key, invalid catalog).
pub const EXIT_CONFIG: u8 = 2;

/// The exit code of each error a command can end with: the one place codes are chosen.
pub trait ExitStatus: std::fmt::Display {
    /// [`EXIT_CONFIG`] when the command was given something it cannot use, else
    /// [`EXIT_FAILURE`].
    fn exit_code(&self) -> u8;
}

impl ExitStatus for ConfigError {
    fn exit_code(&self) -> u8 {
        EXIT_CONFIG
    }
}

impl ExitStatus for CatalogError {
    fn exit_code(&self) -> u8 {
        EXIT_CONFIG
    }
}

impl ExitStatus for ServeError {
    fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_) => EXIT_CONFIG,
            #[cfg(feature = "emulator")]
            ServeError::Emulator(_) => EXIT_FAILURE,
            ServeError::Initialize(_) | ServeError::Metrics(_) | ServeError::ServerTask(_) => {
                EXIT_FAILURE
            }
        }
    }
}

#[cfg(feature = "emulator")]
impl ExitStatus for EmulatorError {
    fn exit_code(&self) -> u8 {
        EXIT_FAILURE
    }
}

#[cfg(feature = "emulator")]
impl ExitStatus for ReviewsError {
    fn exit_code(&self) -> u8 {
        EXIT_FAILURE
    }
}

/// The exit code of `result`; an error is printed to stderr first.
pub fn exit_code(result: Result<(), impl ExitStatus>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tenet-mcp: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs `catalog check`: prints every tool, or every problem.
pub fn catalog_check(args: &CheckArgs) -> ExitCode {
    let checked = if args.paths.is_empty() {
        Catalog::embedded_fully_checked()
    } else {
        Catalog::load(&args.paths)
    };
    match checked {
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
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs `catalog list`: prints the tools `serve` would show with the same flags.
pub fn catalog_list(args: &ListArgs) -> ExitCode {
    let catalog = match Catalog::load_or_embedded(&args.catalogs) {
        Ok(catalog) => catalog,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let selection = args
        .selection
        .selector(!args.catalogs.is_empty())
        .and_then(|selector| selector.select(&catalog));
    match selection {
        Ok(selection) => {
            for tool in selection.tools(&catalog) {
                println!(
                    "{:<48} {:<7} {}",
                    tool.name,
                    tool.method.as_str(),
                    tool.path
                );
            }
            eprintln!(
                "{} of {} tool(s) shown, and the built-in {JOB_STATUS_TOOL}",
                selection.len(),
                catalog.tools().len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tenet-mcp: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Runs `catalog import`: writes the catalog, lists every operation it could not import
/// with the reason, and prints the counts (stderr).
pub fn catalog_import(args: &ImportArgs) -> ExitCode {
    let origin = args.spec.display();
    let text = match std::fs::metadata(&args.spec) {
        Ok(meta) if meta.len() > MAX_SPEC_BYTES => {
            Err(format!("the file is larger than {MAX_SPEC_BYTES} bytes"))
        }
        Ok(_) => std::fs::read_to_string(&args.spec).map_err(|e| format!("cannot read it: {e}")),
        Err(e) => Err(format!("cannot read it: {e}")),
    };
    let options = ImportOptions {
        service: args.service.clone(),
        base_url: args.base_url.clone(),
        naming: args.naming,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        destructive: args.destructive.clone(),
        omit_params: args.omit_param.clone(),
    };
    let imported = match text.and_then(|text| import(&text, &options).map_err(|e| e.to_string())) {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("tenet-mcp: {origin}: {error}; nothing was written");
            return ExitCode::from(1);
        }
    };
    for (operation, why) in &imported.skipped {
        eprintln!("not imported: {operation}: {why}");
    }
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    let written = match &args.output {
        None => {
            print!("{}", imported.text);
            Ok(())
        }
        Some(path) => write_whole(path, &imported.text),
    };
    if let Err(error) = written {
        eprintln!("tenet-mcp: {error}");
        return ExitCode::from(1);
    }
    eprintln!(
        "imported {} tool(s) for service {}; {} operation(s) not imported{}",
        imported.tools,
        args.service,
        imported.skipped.len(),
        args.output
            .as_ref()
            .map(|p| format!("; wrote {}", p.display()))
            .unwrap_or_default()
    );
    ExitCode::SUCCESS
}

/// Writes a file whole: a temporary file beside it, renamed over it.
fn write_whole(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            format!("cannot write {}: {e}", path.display())
        })
}

/// Runs `emulator`, `reviews` or `audit` in a build without the emulator: says so,
/// and how to get a build with it (exit 2).
#[cfg(not(feature = "emulator"))]
pub fn no_emulator() -> ExitCode {
    exit_code(Err(ConfigError(crate::serve::NO_EMULATOR.into())))
}

/// Runs `job-ref`: prints the reference, keyed as the server keys it (by
/// `TENET_MCP_JOB_SECRET`, else by `TENET_API_KEY`).
pub fn job_ref(args: &JobRefArgs) -> ExitCode {
    let key = std::env::var("TENET_API_KEY").ok().and_then(ApiKey::new);
    let minted = job_refs_for(key.as_ref()).map_err(|e| e.to_string()).and_then(|refs| {
        refs.mint(&args.agent_id, &args.job_id).ok_or_else(|| {
            format!(
                "`{}` is not a job id Tenet could have issued (1 to 128 of A-Z a-z 0-9 - . _ ~, not . or ..): pass the id `reviews approve` printed",
                args.job_id.chars().take(200).collect::<String>()
            )
        })
    });
    match minted {
        Ok(job_ref) => {
            println!("{job_ref}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tenet-mcp: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_exit_2_and_failures_exit_1() {
        let config = || ConfigError("bad flag".into());
        assert_eq!(config().exit_code(), EXIT_CONFIG);
        assert_eq!(ServeError::from(config()).exit_code(), EXIT_CONFIG);
        let invalid = Catalog::load(&["/nonexistent/catalog.json".into()]).unwrap_err();
        assert_eq!(invalid.exit_code(), EXIT_CONFIG);
        #[cfg(feature = "emulator")]
        {
            let emulator = ServeError::Emulator(EmulatorError::NoCallerKey);
            assert_eq!(emulator.exit_code(), EXIT_FAILURE);
            assert_eq!(
                ReviewsError::NoKey("TENET_APPROVER_KEY".into()).exit_code(),
                EXIT_FAILURE
            );
        }
    }

    /// A build without the emulator still knows its commands, and says why it cannot
    /// run them instead of calling them unknown.
    #[cfg(not(feature = "emulator"))]
    #[tokio::test]
    async fn without_the_emulator_its_commands_say_how_to_get_it() {
        for argv in [
            &["tenet-mcp", "emulator", "--bind", "127.0.0.1:0"][..],
            &["tenet-mcp", "reviews", "approve", "rev_1"],
            &[
                "tenet-mcp",
                "audit",
                "verify",
                "audit.jsonl",
                "--expect-head",
                "1:ab",
            ],
        ] {
            let cli = Cli::try_parse_from(argv).expect("the command parses");
            assert!(
                matches!(cli.command, Command::NoEmulator(_)),
                "{argv:?}: {:?}",
                cli.command
            );
        }
        assert!(crate::serve::NO_EMULATOR.contains("`emulator` cargo feature"));
        let serve = Cli::try_parse_from(["tenet-mcp", "serve", "--emulator"]).unwrap();
        let Command::Serve(args) = serve.command else {
            panic!("serve parses as serve")
        };
        let refused = crate::serve::run(args, std::future::pending())
            .await
            .expect_err("no emulator to start");
        assert_eq!(refused.exit_code(), EXIT_CONFIG);
        assert_eq!(refused.to_string(), crate::serve::NO_EMULATOR);
    }
}
