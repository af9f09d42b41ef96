//! The `--auth-tokens` file: each static bearer token names the agent id its calls
//! carry to Tenet, and may limit the tools that agent sees and calls (a `tools` list).
//!
//! Only SHA-256 digests of the tokens are kept, compared in constant time; tokens never
//! reach logs, `Debug` output, or Tenet.

use std::{fmt, path::Path};

use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::{
    config::ConfigError,
    selection::{AgentScopes, Rules},
};

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The bearer tokens of `--auth-tokens`: token → agent id, and each agent's tool list.
#[derive(Clone)]
pub struct Tokens {
    /// SHA-256 of each token and its agent id.
    entries: Vec<([u8; 32], String)>,
    /// The `tools` lists, by agent id.
    scopes: AgentScopes,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .field("agents", &self.agents())
            .finish()
    }
}

/// One entry of the `tokens` list.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    token: String,
    #[serde(alias = "agentId")]
    agent_id: String,
    /// Globs limiting the tools the agent sees and calls; none: every shown tool.
    #[serde(default)]
    tools: Option<Vec<String>>,
}

impl Tokens {
    /// Reads a tokens file, TOML or JSON (by extension, else by content), in either shape:
    ///
    /// ```toml
    /// [[tokens]]
    /// token = "a long random secret"
    /// agent_id = "langgraph-prod"
    /// tools = ["github.issues.*", "!github.repos.delete"]   # optional
    /// ```
    ///
    /// or a plain mapping of token to agent id (`"a long random secret" = "langgraph-prod"`,
    /// or `{"a long random secret": "langgraph-prod"}`). Warns when the file is readable
    /// by group or others.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let tokens = Self::read(path)?;
        warn_if_readable_by_others(path);
        Ok(tokens)
    }

    /// Reads a tokens file like [`Tokens::load`], without the permissions warning.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let document = read_config_file(path, "--auth-tokens")?;
        Self::from_document(&document)
            .map_err(|problem| ConfigError(format!("{}: {problem}", path.display())))
    }

    /// Reads the parsed file (either shape) and checks every entry.
    fn from_document(document: &Value) -> Result<Self, String> {
        let Value::Object(top) = document else {
            return Err("expected a `tokens` list or a table of token = agent id".into());
        };
        let entries: Vec<Entry> = match top.get("tokens") {
            Some(list @ Value::Array(_)) => serde_json::from_value(list.clone()).map_err(|error| {
                format!("each [[tokens]] entry needs `token` and `agent_id` (strings), may have `tools` (a list of globs), and nothing else: {error}")
            })?,
            _ => top
                .iter()
                .enumerate()
                .map(|(i, (token, agent))| match agent {
                    Value::String(agent) => Ok(Entry {
                        token: token.clone(),
                        agent_id: agent.clone(),
                        tools: None,
                    }),
                    _ => Err(format!(
                        "entry {}: the agent id must be a string (a mapping is token = \"agent id\"), or use a `tokens` list",
                        i + 1
                    )),
                })
                .collect::<Result<_, _>>()?,
        };
        if entries.is_empty() {
            return Err("no tokens: add at least one token = agent id".into());
        }
        let mut digests: Vec<([u8; 32], String)> = Vec::with_capacity(entries.len());
        let mut lists = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let n = i + 1;
            let token = entry.token.as_str();
            if token.is_empty() {
                return Err(format!("entry {n} has an empty token"));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "entry {n}: a token may hold only printable ASCII without spaces (it travels in an HTTP header)"
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "entry {n}: the token is {} characters; use at least {MIN_TOKEN_LEN} random ones (e.g. `openssl rand -hex 32`)",
                    token.len()
                ));
            }
            let agent = entry.agent_id.trim();
            if agent.is_empty() {
                return Err(format!("entry {n} has an empty agent_id"));
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if let Some(first) = digests.iter().position(|(seen, _)| *seen == digest) {
                return Err(format!(
                    "entries {} and {n} have the same token; every token must be unique",
                    first + 1
                ));
            }
            let rules = entry
                .tools
                .as_deref()
                .map(|globs| match Rules::parse(globs) {
                    Ok(rules) if rules.is_empty() => Err(format!(
                        "entry {n}: `tools` is empty, which would show nothing: list globs such as \"github.issues.*\", or drop `tools` to show every tool"
                    )),
                    Ok(rules) => Ok(rules),
                    Err(problem) => Err(format!("entry {n}: tools: {problem}")),
                })
                .transpose()?;
            digests.push((digest, agent.to_owned()));
            lists.push((agent.to_owned(), rules));
        }
        Ok(Self {
            entries: digests,
            scopes: AgentScopes::new(lists)?,
        })
    }

    /// What each agent may see and call.
    pub fn scopes(&self) -> AgentScopes {
        self.scopes.clone()
    }

    /// The agent of `token`, compared against every entry in constant time.
    pub fn agent_for(&self, token: &str) -> Option<&str> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = u64::MAX;
        for (i, (digest, _)) in self.entries.iter().enumerate() {
            let i = i as u64;
            found = u64::conditional_select(&found, &i, digest.ct_eq(&presented));
        }
        usize::try_from(found)
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, agent)| agent.as_str())
    }

    /// The distinct agent ids, sorted.
    pub fn agents(&self) -> Vec<&str> {
        let mut agents: Vec<&str> = self
            .entries
            .iter()
            .map(|(_, agent)| agent.as_str())
            .collect();
        agents.sort_unstable();
        agents.dedup();
        agents
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads the configuration file of `flag`, TOML or JSON (by extension, else by
/// content), as JSON; an error names the file and what is wrong.
pub(crate) fn read_config_file(path: &Path, flag: &str) -> Result<Value, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError(format!("cannot read the {flag} file {shown}: {error}")))?;
    let json = match path.extension().and_then(|ext| ext.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        serde_json::from_str(&text).map_err(|error| {
            ConfigError(format!(
                "{shown}: not valid JSON ({error}); see `tenet-mcp serve --help` for the format"
            ))
        })
    } else {
        let parsed: toml::Value = toml::from_str(&text).map_err(|error| {
            ConfigError(format!(
                "{shown}: not valid TOML ({error}); see `tenet-mcp serve --help` for the format"
            ))
        })?;
        serde_json::to_value(parsed).map_err(|error| ConfigError(format!("{shown}: {error}")))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "tenet-mcp: warning: the --auth-tokens file {} is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_both_shapes_and_formats() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("tokens.toml");
        std::fs::write(
            &toml_path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"agent-one\"\n\n[[tokens]]\ntoken = \"0123456789abcdef-two\"\nagentId = \"agent-two\"\n",
        )
        .unwrap();
        let tokens = Tokens::load(&toml_path).unwrap();
        assert_eq!(tokens.agent_for("0123456789abcdef-one"), Some("agent-one"));
        assert_eq!(tokens.agent_for("0123456789abcdef-two"), Some("agent-two"));
        assert_eq!(tokens.agent_for("0123456789abcdef-thr"), None);
        assert_eq!(tokens.agent_for(""), None);
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");

        let json_path = dir.path().join("tokens");
        std::fs::write(&json_path, r#"{"0123456789abcdef-map": "mapped"}"#).unwrap();
        assert_eq!(
            Tokens::load(&json_path)
                .unwrap()
                .agent_for("0123456789abcdef-map"),
            Some("mapped")
        );
    }

    #[test]
    fn bad_token_files_name_the_file_and_never_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let cases = [
            ("", "no tokens"),
            (
                "[[tokens]]\ntoken = \"\"\nagent_id = \"a\"\n",
                "entry 1 has an empty token",
            ),
            (
                "[[tokens]]\ntoken = \"short-secret\"\nagent_id = \"a\"\n",
                "at least 16",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-dup\"\nagent_id = \"a\"\n[[tokens]]\ntoken = \"0123456789abcdef-dup\"\nagent_id = \"b\"\n",
                "entries 1 and 2 have the same token",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-x\"\nagent_id = \" \"\n",
                "empty agent_id",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef x\"\nagent_id = \"a\"\n",
                "without spaces",
            ),
            (
                "[[tokens]]\ntoken = \"0123456789abcdef-y\"\nagent = \"a\"\n",
                "nothing else",
            ),
            ("tokens = [", "not valid TOML"),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let error = Tokens::load(&path).unwrap_err().0;
            assert!(
                error.contains("t.toml") && error.contains(needle),
                "{text:?}: {error}"
            );
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
        let missing = Tokens::load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .0;
        assert!(
            missing.contains("cannot read the --auth-tokens file"),
            "{missing}"
        );
    }

    #[test]
    fn tools_lists_limit_their_agent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"one\"\ntools = [\"github.issues.*\", \"!github.issues.delete\"]\n\n\
             [[tokens]]\ntoken = \"0123456789abcdef-two\"\nagent_id = \"two\"\n",
        )
        .unwrap();
        let scopes = Tokens::load(&path).unwrap().scopes();
        assert!(scopes.allows("one", "github.issues.get"));
        assert!(!scopes.allows("one", "github.issues.delete"));
        assert!(!scopes.allows("one", "github.repos.get"));
        assert!(scopes.allows("two", "github.repos.get"));

        std::fs::write(
            &path,
            "[[tokens]]\ntoken = \"0123456789abcdef-one\"\nagent_id = \"same\"\ntools = [\"a.*\"]\n\n\
             [[tokens]]\ntoken = \"0123456789abcdef-two\"\nagent_id = \"same\"\n",
        )
        .unwrap();
        let error = Tokens::load(&path).unwrap_err().0;
        assert!(
            error.contains("the tokens of agent `same` have different `tools` lists"),
            "{error}"
        );
        assert!(!error.contains("0123456789abcdef"), "{error}");
    }
}
