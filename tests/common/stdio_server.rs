//! The server binary over stdio against a scripted Tenet, with the test catalog and
//! key, driven by rmcp's client; for tests that need only its MCP face.

use std::process::Stdio;

use rmcp::{RoleClient, ServiceExt, service::RunningService, transport::TokioChildProcess};

// The in-process harness's helpers work on any client: these tests use them as well.
#[allow(unused_imports)]
pub use super::harness::{call, tool_names};
use super::{
    harness::{KEY, fixture},
    scripted::ScriptedTenet,
};

/// Starts `serve --catalog <fixture>` over stdio with `extra` flags, and initializes.
pub async fn start(tenet: &ScriptedTenet, extra: &[&str]) -> RunningService<RoleClient, ()> {
    start_with_env(tenet, extra, &[]).await
}

/// [`start`] with `env` added to the server's environment.
pub async fn start_with_env(
    tenet: &ScriptedTenet,
    extra: &[&str],
    env: &[(&str, &str)],
) -> RunningService<RoleClient, ()> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
    command
        .args(["serve", "--catalog", &fixture(), "--poll-timeout", "3"])
        .args(extra)
        .env("TENET_API_KEY", KEY)
        .env("TENET_API_URL", tenet.url())
        .env_remove("TENET_AGENT_ID")
        .env_remove("TENET_MCP_MAX_RESULT_BYTES")
        .envs(env.iter().copied());
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport)
        .await
        .expect("the server answers initialize")
}
