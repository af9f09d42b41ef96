//! The server binary as a user starts it for remote clients: `tenet-mcp serve --transport
//! http --emulator` (the shipped catalog, the in-process Tenet emulator) on a free loopback
//! port, for the conformance suite and the agent CLIs; and the `PATH` those clients get, with
//! the pinned Node 22 and `tenet-mcp` itself on it.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

/// The bearer token the HTTP server takes (from a `--auth-tokens` file, as the README says).
pub const TOKEN: &str = "token-for-the-agent-cli-0123456789";

/// `tests/interop/node_modules/.bin/NAME`, installed by `tests/interop/setup.sh`; panics
/// (never skips) when it is missing.
pub fn interop_bin(name: &str) -> PathBuf {
    let bin = repo().join("tests/interop/node_modules/.bin").join(name);
    assert!(
        bin.exists(),
        "{} is not installed: run tests/interop/setup.sh (tests/run.sh does it)",
        bin.display()
    );
    bin
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `PATH` for a client: the pinned npm binaries first (so `#!/usr/bin/env node` finds Node
/// 22 whatever the machine has), then the directory of the `tenet-mcp` under test (so a
/// client starts it as `tenet-mcp serve`, as the README registers it), then the rest.
pub fn client_path() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_tenet-mcp"));
    let dirs = [
        repo().join("tests/interop/node_modules/.bin"),
        bin.parent()
            .expect("the binary has a directory")
            .to_path_buf(),
    ];
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(dirs.iter().cloned().chain(std::env::split_paths(&rest)))
        .expect("PATH entries without separators")
        .to_string_lossy()
        .into_owned()
}

/// `tenet-mcp serve --transport http --emulator`, killed when dropped.
pub struct EmulatedServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: Arc<Mutex<String>>,
    _tokens: Option<tempfile::NamedTempFile>,
}

impl EmulatedServer {
    /// Starts the server; with `token`, behind a tokens file giving [`TOKEN`] to agent `cli`.
    pub fn start(token: bool) -> Self {
        let tokens = token.then(|| {
            let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
            let text = format!("[[tokens]]\ntoken = \"{TOKEN}\"\nagent_id = \"cli\"\n");
            std::fs::write(file.path(), text).unwrap();
            file
        });
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        command.args([
            "serve",
            "--transport",
            "http",
            "--bind",
            "127.0.0.1:0",
            "--emulator",
        ]);
        if let Some(file) = &tokens {
            command.arg("--auth-tokens").arg(file.path());
        }
        let mut child = command
            .env_remove("TENET_API_KEY")
            .env_remove("TENET_API_URL")
            .env("TENET_MCP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tenet-mcp");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("tenet-mcp: listening on ") {
                    let _ = url_tx.send(url.trim().to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(base) = url_rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!(
                "the server did not say where it listens:\n{}",
                log.lock().unwrap()
            );
        };
        Self {
            child,
            base,
            log,
            _tokens: tokens,
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for EmulatedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
