//! The README's code examples, run. Every fenced block of README.md is read from the file as
//! it is now and matched, in order, to an entry of [`EXPECTED`] by its section and language
//! tag; a block added, moved or removed fails `every_block_is_checked_or_skipped_by_name`
//! until that list says how to check it. The checks:
//!
//! - `json` client configs (Claude Desktop, VS Code): the binary is started over stdio with
//!   the config's `args` and `env` (a `${input:...}` resolved from `inputs`, the API URL
//!   pointed at a scripted Tenet), must answer `initialize`, list the default toolset and
//!   run a call with the config's key.
//! - `json` catalog (Catalog format): `tenet-mcp catalog check FILE` accepts it.
//! - `toml` tokens (Remote agents): `serve --transport http --auth-tokens FILE` (with the
//!   repository's catalogs and the HTTP tests' fixture) starts, and each token sees the
//!   tools its `tools` list allows.
//! - `python` agent (the `mcp` SDK): run by `tests/interop/run_snippet.py` in the project's
//!   venv (`tests/interop/setup.sh`) against that server, with only its URL replaced and
//!   `token` set; it must print `executed`.
//! - `toml` policy (emulator): `tenet-mcp emulator --policy FILE` loads it and listens.
//! - `sh`: every line is a `tenet-mcp` command (`cargo run --release -- ARGS` counts as
//!   `tenet-mcp ARGS`) run by `sh` with `<placeholders>` filled in: `catalog list`,
//!   `catalog check` and `--help` lines as written, every other line with `--help` appended,
//!   so clap parses each subcommand, flag and value. Other lines are in [`SKIPPED_LINES`].
//!
//! Skipped by design (named in [`EXPECTED`]): the diagram, third-party CLIs and configs
//! (`claude mcp add`, Caddy, nginx) and the LangGraph snippet (needs a model provider).
//!
//! The README's Layout table and docs/ARCHITECTURE.md must name every module under `src/`,
//! and ARCHITECTURE.md's layer table must match the `crate::` imports of `src/`.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use common::{
    http_server::{Logged, Server, within},
    scripted::{Canned, ScriptedTenet},
    stdio_server::tool_names,
};
use rmcp::{ServiceExt, model::CallToolRequestParams, transport::TokioChildProcess};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, process::Command};

/// How a block is checked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Check {
    /// Not run here, for the reason given.
    Skip(&'static str),
    /// Every line a `tenet-mcp` command line that must parse.
    Shell,
    /// An MCP client's JSON config that starts `tenet-mcp serve` over stdio.
    ClientConfig,
    /// A catalog file.
    Catalog,
    /// An `--auth-tokens` file.
    Tokens,
    /// The Python `mcp` SDK agent.
    PythonAgent,
    /// An emulator `--policy` file.
    Policy,
}

/// Every fenced block of README.md, in order: its section (the heading above it), its
/// language tag and how it is checked.
const EXPECTED: &[(&str, &str, Check)] = &[
    ("tenet-mcp", "", Check::Skip("the data-flow diagram")),
    ("Quickstart", "sh", Check::Shell),
    ("Quickstart", "sh", Check::Shell),
    ("Install", "sh", Check::Shell),
    (
        "Register it with your MCP client",
        "json",
        Check::ClientConfig,
    ),
    (
        "Register it with your MCP client",
        "sh",
        Check::Skip("`claude mcp add`: Claude Code's CLI"),
    ),
    (
        "Register it with your MCP client",
        "sh",
        Check::Skip("`codex mcp add`: Codex's CLI"),
    ),
    (
        "Register it with your MCP client",
        "sh",
        Check::Skip("`gemini mcp add`: Gemini CLI"),
    ),
    (
        "Register it with your MCP client",
        "json",
        Check::ClientConfig,
    ),
    ("Catalog format", "json", Check::Catalog),
    (
        "Catalog format",
        "json",
        Check::Skip(
            "a fragment of a tool entry (argument placements); the import tests load such tools",
        ),
    ),
    ("Choosing tools", "sh", Check::Shell),
    ("Remote agents (HTTP)", "sh", Check::Shell),
    ("Remote agents (HTTP)", "toml", Check::Tokens),
    ("Remote agents (HTTP)", "sh", Check::Shell),
    (
        "Remote agents (HTTP)",
        "caddyfile",
        Check::Skip("Caddy's config"),
    ),
    (
        "Remote agents (HTTP)",
        "nginx",
        Check::Skip("nginx's config"),
    ),
    (
        "Remote agents (HTTP)",
        "sh",
        Check::Skip("`claude mcp add`: Claude Code's CLI"),
    ),
    (
        "Remote agents (HTTP)",
        "sh",
        Check::Skip("`codex mcp add`: Codex's CLI"),
    ),
    (
        "Remote agents (HTTP)",
        "sh",
        Check::Skip("`gemini mcp add`: Gemini CLI"),
    ),
    ("Remote agents (HTTP)", "python", Check::PythonAgent),
    (
        "Remote agents (HTTP)",
        "python",
        Check::Skip("LangGraph: needs langgraph and a model provider"),
    ),
    ("OAuth 2.1 (hosted agent platforms)", "sh", Check::Shell),
    (
        "OAuth 2.1 (hosted agent platforms)",
        "toml",
        Check::Skip(
            "the scopes map: loaded over the repository's catalogs by oauth::the_readme_scopes_map_loads",
        ),
    ),
    ("The local Tenet emulator", "sh", Check::Shell),
    ("The local Tenet emulator", "toml", Check::Policy),
    ("The local Tenet emulator", "sh", Check::Shell),
];

/// Lines of `sh` blocks that are not `tenet-mcp` commands, each with why it is not run.
const SKIPPED_LINES: &[(&str, &str)] = &[
    ("tests/run.sh", "the whole test suite, this test included"),
    (
        "cargo install --path .",
        "installs into the user's cargo bin",
    ),
    ("export TENET_API_KEY=tnt_...", "sets the environment only"),
    (
        "export TENET_APPROVER_KEY=<the emulator's approver key>",
        "sets the environment only",
    ),
];

/// A fenced block of README.md.
#[derive(Debug)]
struct Block {
    section: String,
    lang: String,
    /// The README line of its opening fence (1-based).
    line: usize,
    text: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The fenced blocks of `markdown`, with the heading each one is under.
fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        match open.as_mut() {
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(open.take()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            None => {
                if let Some(lang) = line.strip_prefix("```") {
                    open = Some(Block {
                        section: section.clone(),
                        lang: lang.trim().to_owned(),
                        line: n + 1,
                        text: String::new(),
                    });
                } else if line.starts_with('#') {
                    section = line.trim_start_matches('#').trim().to_owned();
                }
            }
        }
    }
    assert!(open.is_none(), "README.md ends inside a fenced block");
    blocks
}

/// The README's blocks that [`EXPECTED`] checks with `check`, at their expected places.
fn blocks_checked_by(check: Check) -> Vec<Block> {
    let blocks: Vec<Block> = fenced_blocks(&read("README.md"))
        .into_iter()
        .zip(EXPECTED)
        .filter(|(block, (section, lang, expected))| {
            *expected == check && block.section == *section && block.lang == *lang
        })
        .map(|(block, _)| block)
        .collect();
    assert!(
        !blocks.is_empty(),
        "README.md has no block checked as {check:?}"
    );
    blocks
}

#[test]
fn every_block_is_checked_or_skipped_by_name() {
    let blocks = fenced_blocks(&read("README.md"));
    let found: Vec<(&str, &str)> = blocks
        .iter()
        .map(|b| (b.section.as_str(), b.lang.as_str()))
        .collect();
    let expected: Vec<(&str, &str)> = EXPECTED.iter().map(|(s, l, _)| (*s, *l)).collect();
    let listing: Vec<String> = blocks
        .iter()
        .map(|b| {
            let first = b.text.lines().next().unwrap_or_default();
            format!("  line {}: [{}] `{}` {first}", b.line, b.section, b.lang)
        })
        .collect();
    assert_eq!(
        found,
        expected,
        "README.md's fenced blocks changed: say in tests/readme.rs EXPECTED how each is checked \
         (or why it is skipped). The README now has:\n{}",
        listing.join("\n")
    );
}

/// `sh`, with the binary under test first on `PATH` as `tenet-mcp`, in a scratch folder.
struct Shell {
    /// Holds the `tenet-mcp` link; also the working directory.
    dir: tempfile::TempDir,
    path: String,
}

impl Shell {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_tenet-mcp"),
            dir.path().join("tenet-mcp"),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Self { dir, path }
    }

    /// Runs `command` with `sh -c`, stdin closed.
    fn run(&self, command: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// `line` without a trailing `# comment` (a `#` at the start or after a blank, unquoted).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '<' => quote = Some('>'),
            None if c == '#' && previous.is_whitespace() => return line[..i].trim_end(),
            None => {}
        }
        previous = c;
    }
    line.trim_end()
}

/// `line` with each `<placeholder>` replaced by a word, so `sh` does not read it as a redirect.
fn fill_placeholders(line: &str) -> String {
    let mut filled = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        filled.push_str(&rest[..start]);
        filled.push_str("placeholder");
        rest = &rest[start + len + 1..];
    }
    filled.push_str(rest);
    filled
}

/// The `tenet-mcp` command `line` runs, as `sh` should run it here; `None` when it runs none.
fn tenet_command(line: &str) -> Option<String> {
    let line = fill_placeholders(line);
    let line = match line.strip_prefix("cargo run --release -- ") {
        Some(args) => format!("tenet-mcp {args}"),
        None => line,
    };
    let mut words = line.split_whitespace().skip_while(|w| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
    });
    if words.next() != Some("tenet-mcp") {
        return None;
    }
    let args: Vec<&str> = words.collect();
    let runs_as_written = args.last() == Some(&"--help")
        || args.starts_with(&["catalog", "list"])
        || args.starts_with(&["catalog", "check"]);
    Some(if runs_as_written {
        line
    } else {
        format!("{line} --help")
    })
}

#[test]
fn shell_lines_are_tenet_mcp_commands_that_parse() {
    let shell = Shell::new();
    let mut ran = 0;
    for block in blocks_checked_by(Check::Shell) {
        for line in block
            .text
            .lines()
            .map(without_comment)
            .filter(|l| !l.is_empty())
        {
            if SKIPPED_LINES.iter().any(|(skipped, _)| *skipped == line) {
                continue;
            }
            let Some(command) = tenet_command(line) else {
                panic!(
                    "README.md line {} ([{}]): `{line}` is not a tenet-mcp command; check it, or \
                     add it to SKIPPED_LINES in tests/readme.rs with the reason",
                    block.line, block.section
                )
            };
            let output = shell.run(&command);
            assert!(
                output.status.success(),
                "README.md [{}]: `{line}` (run as `{command}`) exits {:?}:\n{}",
                block.section,
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} README command lines ran");
}

#[test]
fn unknown_flags_and_bad_values_fail_the_shell_check() {
    // The `--help` form catches what it is meant to: clap reads every argument before it.
    let shell = Shell::new();
    for line in [
        "tenet-mcp serve --no-such-flag",
        "cargo run --release -- serve --poll-timeout soon",
    ] {
        let command = tenet_command(line).unwrap();
        let output = shell.run(&command);
        assert_eq!(
            output.status.code(),
            Some(2),
            "`{command}` should be refused"
        );
    }
    assert_eq!(
        tenet_command("claude mcp add tenet -- tenet-mcp serve"),
        None
    );
    assert_eq!(
        tenet_command("TENET_API_KEY=<printed API key> tenet-mcp serve").as_deref(),
        Some("TENET_API_KEY=placeholder tenet-mcp serve --help")
    );
    assert_eq!(
        without_comment("tenet-mcp x '#a' # note"),
        "tenet-mcp x '#a'"
    );
}

/// Scripts `github.repos.get` to run and complete.
fn script_repos_get(tenet: &ScriptedTenet) {
    tenet.on_execute("github.repos.get", vec![Canned::allow("job_readme")]);
    tenet.on_job(
        "job_readme",
        vec![Canned::completed(
            "job_readme",
            200,
            json!({"full_name": "acme/api"}),
        )],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_configs_start_the_server_over_stdio() {
    for block in blocks_checked_by(Check::ClientConfig) {
        let config: Value = serde_json::from_str(&block.text)
            .unwrap_or_else(|e| panic!("README.md line {}: not JSON: {e}", block.line));
        let server = config
            .get("mcpServers")
            .or_else(|| config.get("servers"))
            .and_then(|servers| servers.get("tenet"))
            .unwrap_or_else(|| panic!("README.md line {}: no `tenet` server", block.line));
        assert_eq!(server["command"], "tenet-mcp", "line {}", block.line);
        if let Some(kind) = server.get("type") {
            assert_eq!(kind, "stdio", "line {}", block.line);
        }
        let args: Vec<&str> = server["args"]
            .as_array()
            .unwrap_or_else(|| panic!("README.md line {}: no args", block.line))
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args.first(), Some(&"serve"), "line {}", block.line);

        let tenet = ScriptedTenet::start().await;
        script_repos_get(&tenet);
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        command
            .args(&args)
            .env_remove("TENET_AGENT_ID")
            .env_remove("TENET_MCP_JOB_SECRET");
        let mut key = String::new();
        for (name, value) in server["env"].as_object().into_iter().flatten() {
            let mut value = value.as_str().unwrap().to_owned();
            if let Some(input) = value
                .strip_prefix("${input:")
                .and_then(|v| v.strip_suffix('}'))
            {
                let declared = config["inputs"]
                    .as_array()
                    .is_some_and(|inputs| inputs.iter().any(|i| i["id"] == input));
                assert!(
                    declared,
                    "line {}: `{value}` names no declared input",
                    block.line
                );
                value = "tnt_typed_into_the_prompt".to_owned();
            }
            if name == "TENET_API_KEY" {
                key.clone_from(&value);
            }
            command.env(name, value);
        }
        assert!(
            !key.is_empty(),
            "line {}: no TENET_API_KEY in env",
            block.line
        );
        command.env("TENET_API_URL", tenet.url());
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client = within(
            "initialize over stdio",
            Duration::from_secs(15),
            ().serve(transport),
        )
        .await
        .unwrap_or_else(|e| panic!("line {}: initialize failed: {e}", block.line));
        let names = tool_names(&client).await;
        assert!(
            names.contains(&"github_repos_get".to_owned()),
            "line {}: {names:?}",
            block.line
        );
        let arguments = json!({"owner": "acme", "repo": "api"});
        let result = client
            .call_tool(
                CallToolRequestParams::new("github_repos_get")
                    .with_arguments(arguments.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        let structured = result.structured_content.unwrap_or_default();
        assert_eq!(
            structured["status"], "executed",
            "line {}: {structured}",
            block.line
        );
        let executes = tenet.executes_of("github.repos.get");
        assert_eq!(
            executes[0].headers.get("authorization"),
            Some(&format!("Bearer {key}")),
            "line {}: the config's key reaches Tenet",
            block.line
        );
        client.cancel().await.unwrap();
    }
}

#[test]
fn catalog_example_passes_catalog_check() {
    let dir = tempfile::tempdir().unwrap();
    for (n, block) in blocks_checked_by(Check::Catalog).iter().enumerate() {
        let path = dir.path().join(format!("example{n}.json"));
        std::fs::write(&path, &block.text).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["catalog", "check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "README.md line {}: `catalog check` refuses the example:\n{}{}",
            block.line,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn policy_example_starts_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    for block in blocks_checked_by(Check::Policy) {
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, &block.text).unwrap();
        let (emulator, started) = Logged::spawn(
            Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
                .args(["emulator", "--bind", "127.0.0.1:0", "--policy"])
                .arg(&policy),
            "listening on",
        )
        .await;
        let line = started.unwrap_or_else(|| {
            panic!(
                "README.md line {}: the emulator refuses the policy:\n{}",
                block.line,
                emulator.log()
            )
        });
        assert!(
            line.contains("API key tnt_local_dev_key"),
            "the policy's key is the one in use: {line}"
        );
        drop(emulator);
    }
}

/// The README's tokens file, written to `dir`, and its tokens with their agents, in order.
fn tokens_example(dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let [block] = &blocks_checked_by(Check::Tokens)[..] else {
        panic!("one tokens example expected")
    };
    let path = dir.join("tokens.toml");
    std::fs::write(&path, &block.text).unwrap();
    let document: toml::Table = toml::from_str(&block.text).unwrap();
    let tokens = document["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["token"].as_str().unwrap().to_owned(),
                entry["agent_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (path, tokens)
}

/// `serve --transport http --auth-tokens FILE` over the repository's catalogs.
async fn serve_with_tokens(tenet: &ScriptedTenet, tokens: &Path) -> Server {
    let catalogs = repo().join("catalog");
    Server::start_with(
        tenet,
        &["--transport", "http", "--bind", "127.0.0.1:0"],
        &[
            "--catalog",
            catalogs.to_str().unwrap(),
            "--auth-tokens",
            tokens.to_str().unwrap(),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_example_serves_each_agent_its_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (path, tokens) = tokens_example(dir.path());
    let tenet = ScriptedTenet::start().await;
    let server = serve_with_tokens(&tenet, &path).await;
    let [(all, _), (limited, _)] = &tokens[..] else {
        panic!("two tokens expected: {tokens:?}")
    };
    let names = |client: rmcp::service::RunningService<rmcp::RoleClient, ()>| async move {
        let names = tool_names(&client).await;
        client.cancel().await.unwrap();
        names
    };
    let everything = names(server.client(Some(all)).await).await;
    assert!(
        everything.contains(&"github_repos_delete".to_owned()),
        "{everything:?}"
    );
    let some = names(server.client(Some(limited)).await).await;
    assert!(
        some.contains(&"github_issues_create".to_owned()),
        "{some:?}"
    );
    assert!(some.contains(&"github_pulls_list".to_owned()), "{some:?}");
    for hidden in [
        "github_issues_update",
        "github_repos_delete",
        "stripe_customers_list",
    ] {
        assert!(
            !some.contains(&hidden.to_owned()),
            "{hidden} shown: {some:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_agent_snippet_runs_against_the_server() {
    let python = repo().join(".interop/venv/bin/python");
    assert!(
        python.exists(),
        "the Python MCP client is not installed: run tests/interop/setup.sh (tests/run.sh does it)"
    );
    let [block] = &blocks_checked_by(Check::PythonAgent)[..] else {
        panic!("one Python agent snippet expected")
    };
    let example_url = "https://mcp.example.com/mcp";
    assert_eq!(
        block.text.matches(example_url).count(),
        1,
        "the snippet names {example_url} once"
    );

    let dir = tempfile::tempdir().unwrap();
    let (path, tokens) = tokens_example(dir.path());
    let (token, agent) = &tokens[0];
    let tenet = ScriptedTenet::start().await;
    script_repos_get(&tenet);
    let server = serve_with_tokens(&tenet, &path).await;
    let snippet = block.text.replace(example_url, &server.url("/mcp"));

    let mut child = Command::new(python)
        .arg(repo().join("tests/interop/run_snippet.py"))
        .arg(token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(snippet.as_bytes()).await.unwrap();
    drop(stdin);
    let output = within(
        "the Python snippet",
        Duration::from_secs(60),
        child.wait_with_output(),
    )
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "README.md line {}: the Python snippet fails:\n{}",
        block.line,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "executed");
    let executes = tenet.executes_of("github.repos.get");
    assert_eq!(executes.len(), 1);
    assert_eq!(
        executes[0].body["agent"]["agentId"],
        agent.as_str(),
        "the call is made as the token's agent"
    );
}

/// The `src/` modules (`src/name.rs` files and `src/name/` folders; not `lib.rs`, `main.rs`)
/// that `text` does not name in backquotes.
fn modules_missing_from(text: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(repo().join("src")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if entry.file_type().unwrap().is_dir() {
            format!("src/{name}/")
        } else if name.ends_with(".rs") && name != "lib.rs" && name != "main.rs" {
            format!("src/{name}")
        } else {
            continue;
        };
        if !text.contains(&format!("`{path}`")) {
            missing.push(path);
        }
    }
    missing.sort();
    missing
}

/// The README's `## Layout` section.
fn layout_section() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Layout\n")
        .expect("README.md has a ## Layout section");
    let section = &readme[start + 1..];
    let end = section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3);
    section[..end].to_owned()
}

#[test]
fn layout_table_names_every_module_and_only_real_paths() {
    let layout = layout_section();
    assert_eq!(
        modules_missing_from(&layout),
        Vec::<String>::new(),
        "missing from README ## Layout"
    );
    for row in layout.lines().filter(|l| l.starts_with("| `")) {
        let path = row[3..].split('`').next().unwrap();
        assert!(
            repo().join(path).exists(),
            "README ## Layout names `{path}`, which does not exist"
        );
    }
}

#[test]
fn architecture_names_every_module() {
    let architecture = read("docs/ARCHITECTURE.md");
    assert_eq!(
        modules_missing_from(&architecture),
        Vec::<String>::new(),
        "missing from docs/ARCHITECTURE.md"
    );
}

/// The crate modules `source` names through `prefix::` (`crate`, or `tenet_mcp` in the
/// binary), in code outside comments and its `mod tests`.
fn crate_imports(source: &str, prefix: &str) -> BTreeSet<String> {
    let code: Vec<&str> = source
        .lines()
        .take_while(|line| *line != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect();
    let code = code.join("\n");
    let needle = format!("{prefix}::");
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(&needle) {
        let rest = &code[at + needle.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // `use crate::{a::b, c, d::{e, f}}`: the first name of each path at depth 1.
        let (mut depth, mut path_start) = (1, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => path_start = true,
                c if depth == 1 && path_start && (c.is_ascii_alphabetic() || c == '_') => {
                    found.insert(ident(&group[i..]));
                    path_start = false;
                }
                _ => {}
            }
        }
    }
    found
}

/// The module a file under `src/` belongs to: `src/x.rs` and `src/x/...` are `x`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// One row of ARCHITECTURE.md's layer table: its modules, and what they may import
/// (`None`: everything below).
struct Layer {
    modules: Vec<String>,
    imports: Option<BTreeSet<String>>,
}

fn layers() -> Vec<Layer> {
    let text = read("docs/ARCHITECTURE.md");
    let start = text
        .find("## Layers")
        .expect("docs/ARCHITECTURE.md has a ## Layers section");
    let backquoted = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let rows: Vec<(Vec<String>, String)> = text[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let modules = backquoted(cells[2])
                .iter()
                .map(|path| module_of(Path::new(path.trim_start_matches("src/"))))
                .collect();
            (modules, cells[3].to_owned())
        })
        .collect();
    let known: BTreeSet<String> = rows.iter().flat_map(|(m, _)| m.clone()).collect();
    rows.into_iter()
        .map(|(modules, imports)| Layer {
            modules,
            imports: (!imports.contains("everything below")).then(|| {
                backquoted(&imports)
                    .into_iter()
                    .filter(|name| known.contains(name))
                    .collect()
            }),
        })
        .collect()
}

#[test]
fn layers_in_architecture_match_the_imports() {
    let layers = layers();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    // Items of the crate root (`shutdown_signal` in lib.rs) are open to every module.
    let modules: BTreeSet<String> = files
        .iter()
        .map(|file| module_of(file.strip_prefix(repo().join("src")).unwrap()))
        .collect();
    for file in files {
        let relative = file.strip_prefix(repo().join("src")).unwrap();
        let module = module_of(relative);
        if module == "lib" {
            continue;
        }
        let prefix = if module == "main" {
            "tenet_mcp"
        } else {
            "crate"
        };
        let used = crate_imports(&std::fs::read_to_string(&file).unwrap(), prefix);
        imports.entry(module.clone()).or_default().extend(
            used.into_iter()
                .filter(|name| *name != module && modules.contains(name)),
        );
    }
    let mut problems = Vec::new();
    for (module, used) in &imports {
        let Some(row) = layers.iter().position(|l| l.modules.contains(module)) else {
            problems.push(format!("`{module}` is in no row"));
            continue;
        };
        let allowed: BTreeSet<String> = match &layers[row].imports {
            Some(named) => named.clone(),
            None => layers[row + 1..]
                .iter()
                .flat_map(|l| l.modules.clone())
                .collect(),
        };
        for name in used.difference(&allowed) {
            problems.push(format!(
                "`{module}` imports `{name}`, which its row does not allow"
            ));
        }
    }
    for layer in &layers {
        let Some(named) = &layer.imports else {
            continue;
        };
        let used: BTreeSet<String> = layer
            .modules
            .iter()
            .flat_map(|m| imports.get(m).cloned().unwrap_or_default())
            .collect();
        for name in named.difference(&used) {
            problems.push(format!(
                "the row of {:?} names `{name}`, which none of them imports",
                layer.modules
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/ARCHITECTURE.md's layer table and the code disagree (move the code, or update \
         the table and say why):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn crate_imports_reads_grouped_paths() {
    let source = "//! [`crate::cli::exit_code`]\nuse crate::{config::ConfigError, emulator::{cli, EmulatorError},\n    web};\nfn f() { crate::metrics::record(); }\n#[cfg(test)]\nmod tests { use crate::tenet; }\n";
    let found: Vec<String> = crate_imports(source, "crate").into_iter().collect();
    assert_eq!(found, ["config", "emulator", "metrics", "web"]);
}
