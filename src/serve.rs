//! `tenet-mcp serve`: resolve the configuration, build the bridge, serve a transport.
//!
//! Configuration errors (no API key, invalid catalog, bad flag values) are reported
//! before anything is served, with what to set or fix, and exit with code 2.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Args;
use serde_json::{Map, Value};

use crate::{
    bridge::Bridge,
    catalog::Catalog,
    emulator,
    governor::Governor,
    reload,
    tenet::{ApiKey, ClientConfig, TenetClient, client::DEFAULT_API_URL},
    transport,
};

/// Arguments of `tenet-mcp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A catalog file or folder of them (repeatable); default: the catalog shipped in the binary.
    #[arg(long = "catalog", value_name = "PATH")]
    pub catalogs: Vec<PathBuf>,
    /// Tenet's API URL. The API key is read from the TENET_API_KEY environment variable only.
    #[arg(long, env = "TENET_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// The agent id sent with every call.
    #[arg(long, env = "TENET_AGENT_ID", default_value = "default")]
    pub agent_id: String,
    /// A KEY=VALUE pair sent in every execute's `context` (repeatable), e.g. env=production.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_context)]
    pub context: Vec<(String, String)>,
    /// How long to wait for an allowed call's job before answering `pending`, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0, value_parser = parse_seconds)]
    pub poll_timeout: f64,
    /// The timeout of each HTTP request to Tenet, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub request_timeout: f64,
    /// Start a local Tenet emulator in-process and use it instead of Tenet.
    #[arg(long)]
    pub emulator: bool,
    /// Reload the --catalog files when they change (checked every second); SIGHUP always reloads.
    #[arg(long)]
    pub watch: bool,
}

fn parse_context(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{pair}` is not KEY=VALUE (for example env=production)"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "`{text}` is not a number of seconds between 0 and 86400"
        )),
    }
}

/// A configuration problem, reported before serving (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Runs `serve` until the client disconnects or a signal arrives.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let catalog = Arc::new(
        Catalog::load_or_embedded(&args.catalogs).map_err(|e| ConfigError(e.to_string()))?,
    );
    let (api_url, api_key, emulator) = if args.emulator {
        let running = emulator::start(emulator::EmulatorConfig::embedded(catalog.clone()))
            .await
            .map_err(|e| ServeError::Runtime(format!("cannot start the embedded emulator: {e}")))?;
        eprintln!(
            "tenet-mcp: using the local Tenet emulator at {url} (API key {key}); approve escalated calls at {url}/",
            url = running.url(),
            key = running.api_key().expose(),
        );
        (running.url(), running.api_key().clone(), Some(running))
    } else {
        let key = std::env::var("TENET_API_KEY").ok().and_then(ApiKey::new).ok_or_else(|| {
            ConfigError("TENET_API_KEY is not set: export it (your Tenet tenant key, tnt_...) or run with --emulator to try a local Tenet".into())
        })?;
        (args.api_url.clone(), key, None)
    };
    let mut config = ClientConfig::new(&api_url, api_key);
    config.request_timeout = Duration::from_secs_f64(args.request_timeout);
    let client = TenetClient::new(config).map_err(ServeError::Runtime)?;
    let context: Map<String, Value> = args
        .context
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let governor = Governor::new(client, context, Duration::from_secs_f64(args.poll_timeout));
    let bridge = Bridge::new(catalog.clone(), governor, args.agent_id);
    reload::spawn(bridge.clone(), args.catalogs.clone(), args.watch);
    tracing::info!(tools = catalog.tools().len(), api_url = %api_url, "serving MCP over stdio");
    let served = transport::stdio::serve(bridge).await;
    if let Some(running) = emulator {
        running.shutdown().await;
    }
    served.map_err(ServeError::Runtime)
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration: nothing was served.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A failure while serving.
    #[error("{0}")]
    Runtime(String),
}
