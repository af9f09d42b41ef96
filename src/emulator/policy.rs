//! The emulator's policy: who may call, what is allowed, escalated or blocked, what it
//! costs, where credentials come from, and which faults to inject.
//!
//! A policy file is TOML or JSON (chosen by extension); every key is optional:
//!
//! ```toml
//! [[keys]]                      # accepted API keys; none listed: a random tenant key and
//! key = "tnt_local_dev"         # a random approver key per start
//! agent_id = "default"          # the agent an `agent` key is bound to
//! role = "agent"                # agent (default): calls as agent_id only; tenant: may name
//!                               # any agentId; approver: lists and decides reviews, cannot call
//!
//! [credentials.github]          # injected into the downstream request, never seen by agents
//! header = "Authorization"      # default Authorization
//! value = "Bearer ghp_..."      # or env TENET_EMULATOR_CREDENTIAL_GITHUB (the full header value)
//!
//! [[rules]]                     # first match wins, before the method-based default
//! tool = "stripe.refunds.*"     # a glob over tool names, and/or
//! service = "slack"             # a service name
//! action = "block"              # allow | escalate | block
//!
//! [budget]
//! daily_usd_per_agent = 10.0    # cost caps: catalog cost_usd per agent per UTC day
//!
//! [faults]                      # for reliability tests
//! error_rate = 0.0              # fraction of executes answered with error_status
//! error_status = 503
//! drop_rate = 0.0               # fraction of executes whose connection is dropped unanswered
//! delay_ms = 0                  # added before every execute answer
//! job_delay_ms = 0              # how long a job stays running before its downstream call
//! seed = 1                      # makes error_rate/drop_rate draws repeatable
//!
//! downstream_timeout_secs = 30
//! ```
//!
//! Default decisions follow the resolved HTTP method, as Tenet does: GET/HEAD and
//! non-destructive POST/PUT/PATCH are allowed; DELETE and destructive tools are escalated
//! (`RULE_irreversible-escalate`), and blocked when the call's context has
//! `env=production` (`RULE_block-irreversible-on-prod`).

use std::{collections::HashMap, fmt, path::Path};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{catalog::Tool, tenet::decision::Outcome};

/// Reason code of the default escalation of irreversible calls.
pub const RULE_ESCALATE: &str = "RULE_irreversible-escalate";
/// Reason code of irreversible calls blocked in production.
pub const RULE_PROD: &str = "RULE_block-irreversible-on-prod";
/// Reason code of calls that would pass the agent's daily budget.
pub const RULE_COST: &str = "RULE_cost-cap-exceeded";

/// A loaded, validated policy.
#[derive(Default)]
pub struct Policy {
    /// Accepted API keys.
    pub keys: Vec<KeyEntry>,
    credentials: HashMap<String, Credential>,
    rules: Vec<Rule>,
    /// The daily budget per agent, in USD.
    pub daily_usd_per_agent: Option<f64>,
    /// Injected faults.
    pub faults: Faults,
    /// Timeout of each downstream request, in seconds.
    pub downstream_timeout_secs: u64,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("keys", &self.keys.len())
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .field("rules", &self.rules.len())
            .field("daily_usd_per_agent", &self.daily_usd_per_agent)
            .field("faults", &self.faults)
            .finish()
    }
}

/// What a key may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Calls as its own `agent_id` only; reads its own jobs and reviews.
    #[default]
    Agent,
    /// Calls as any agent it names (what the bridge's tenant key does); reads its own
    /// jobs and reviews.
    Tenant,
    /// Lists every review and approves or denies them; cannot call.
    Approver,
}

impl Role {
    /// The role's name in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Tenant => "tenant",
            Self::Approver => "approver",
        }
    }
}

/// An accepted API key, its role and the agent it belongs to.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The key.
    pub key: String,
    /// The agent id bound to the key (an `agent` key may call as this agent only).
    #[serde(default = "default_agent")]
    pub agent_id: String,
    /// What the key may do.
    #[serde(default)]
    pub role: Role,
}

fn default_agent() -> String {
    "default".into()
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("key", &"<redacted>")
            .field("agent_id", &self.agent_id)
            .field("role", &self.role)
            .finish()
    }
}

/// A credential the emulator injects as a header.
#[derive(Clone, Deserialize)]
pub struct Credential {
    /// The header name.
    #[serde(default = "default_header")]
    pub header: String,
    /// The full header value.
    pub value: String,
}

fn default_header() -> String {
    "Authorization".into()
}

/// Fault injection knobs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Fraction of executes answered with `error_status`.
    #[serde(default)]
    pub error_rate: f64,
    /// The status of injected errors (5xx).
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    /// Fraction of executes whose connection is closed without an answer.
    #[serde(default)]
    pub drop_rate: f64,
    /// Delay before every execute answer, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// How long a job stays running before its downstream call, in milliseconds.
    #[serde(default)]
    pub job_delay_ms: u64,
    /// Seed of the fault draws.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_error_status() -> u16 {
    503
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_status: default_error_status(),
            drop_rate: 0.0,
            delay_ms: 0,
            job_delay_ms: 0,
            seed: None,
        }
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Allow the call.
    Allow,
    /// Hold it for approval.
    Escalate,
    /// Refuse it.
    Block,
}

struct Rule {
    tool: Option<GlobMatcher>,
    service: Option<String>,
    action: Action,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    service: Option<String>,
    action: Action,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BudgetFile {
    daily_usd_per_agent: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
    #[serde(default)]
    credentials: HashMap<String, Credential>,
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    budget: BudgetFile,
    #[serde(default)]
    faults: Faults,
    #[serde(default)]
    downstream_timeout_secs: Option<u64>,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, and where.
        problem: String,
    },
}

/// The default downstream timeout.
pub const DEFAULT_DOWNSTREAM_TIMEOUT_SECS: u64 = 30;

impl Policy {
    /// The built-in default: method-based risk, no budget, no faults, credentials from env.
    pub fn builtin() -> Self {
        Self {
            downstream_timeout_secs: DEFAULT_DOWNSTREAM_TIMEOUT_SECS,
            ..Self::default()
        }
    }

    /// Reads a TOML (`.toml`) or JSON policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let syntax = |problem: String| PolicyError::Invalid {
            path: path.to_owned(),
            problem: format!("not a valid policy: {problem}"),
        };
        let file: PolicyFile = if path.extension().is_some_and(|ext| ext == "json") {
            serde_json::from_str(&text).map_err(|e| syntax(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| syntax(e.to_string()))?
        };
        Self::from_file(file, path)
    }

    /// The policy `file` (read from `path`) describes, or what is wrong with it.
    fn from_file(file: PolicyFile, path: &Path) -> Result<Self, PolicyError> {
        let invalid = |problem: String| {
            Err(PolicyError::Invalid {
                path: path.to_owned(),
                problem,
            })
        };
        let mut rules = Vec::new();
        for (i, rule) in file.rules.into_iter().enumerate() {
            if rule.tool.is_none() && rule.service.is_none() {
                return invalid(format!("rule {} names neither `tool` nor `service`", i + 1));
            }
            let tool = match &rule.tool {
                Some(pattern) => Some(match Glob::new(pattern) {
                    Ok(glob) => glob.compile_matcher(),
                    Err(e) => return invalid(format!("rule {}: bad glob `{pattern}`: {e}", i + 1)),
                }),
                None => None,
            };
            let subject = rule
                .tool
                .clone()
                .or(rule.service.clone())
                .unwrap_or_default();
            let verb = match rule.action {
                Action::Allow => "allow",
                Action::Escalate => "escalate",
                Action::Block => "block",
            };
            rules.push(Rule {
                tool,
                service: rule.service,
                action: rule.action,
                code: format!("RULE_{verb}:{subject}"),
            });
        }
        for (i, key) in file.keys.iter().enumerate() {
            if key.key.trim().len() < 8 {
                return invalid("every [[keys]] key must have at least 8 characters".into());
            }
            if file.keys[..i].iter().any(|other| other.key == key.key) {
                return invalid(format!(
                    "[[keys]] entry {} repeats an earlier key: give every key one role",
                    i + 1
                ));
            }
        }
        if !file.keys.is_empty() && file.keys.iter().all(|k| k.role == Role::Approver) {
            return invalid(
                "[[keys]] lists only approver keys: add an agent or tenant key to call with".into(),
            );
        }
        let faults = file.faults;
        for (name, rate) in [
            ("error_rate", faults.error_rate),
            ("drop_rate", faults.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return invalid(format!("faults.{name} must be between 0 and 1"));
            }
        }
        if !(500..=599).contains(&faults.error_status) {
            return invalid("faults.error_status must be a 5xx status".into());
        }
        Ok(Self {
            keys: file.keys,
            credentials: file.credentials,
            rules,
            daily_usd_per_agent: file.budget.daily_usd_per_agent,
            faults,
            downstream_timeout_secs: file
                .downstream_timeout_secs
                .unwrap_or(DEFAULT_DOWNSTREAM_TIMEOUT_SECS),
        })
    }

    /// The credential injected for `service`: the policy file's, else the environment's.
    pub fn credential(&self, service: &str) -> Option<Credential> {
        if let Some(credential) = self.credentials.get(service) {
            return Some(credential.clone());
        }
        let name = format!(
            "TENET_EMULATOR_CREDENTIAL_{}",
            service.to_ascii_uppercase().replace(['-', '.'], "_")
        );
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|value| Credential {
                header: default_header(),
                value,
            })
    }

    /// Decides a call: rules first, then the method-based default, then the budget.
    /// `spent_today` is what the agent has spent today, before this call.
    pub fn decide(
        &self,
        tool: &Tool,
        context: &Map<String, Value>,
        spent_today: f64,
    ) -> (Outcome, Vec<String>) {
        let production = context.get("env").and_then(Value::as_str) == Some("production");
        let rule = self.rules.iter().find(|rule| {
            rule.tool
                .as_ref()
                .is_none_or(|glob| glob.is_match(&tool.name))
                && rule
                    .service
                    .as_deref()
                    .is_none_or(|service| service == &*tool.service)
        });
        let (outcome, codes) = match rule {
            Some(rule) => match rule.action {
                Action::Allow => (Outcome::Allow, vec![rule.code.clone()]),
                Action::Escalate => (Outcome::Escalate, vec![rule.code.clone()]),
                Action::Block => (Outcome::Block, vec![rule.code.clone()]),
            },
            None if tool.is_irreversible() && production => {
                (Outcome::Block, vec![RULE_PROD.to_owned()])
            }
            None if tool.is_irreversible() => (Outcome::Escalate, vec![RULE_ESCALATE.to_owned()]),
            None => (Outcome::Allow, Vec::new()),
        };
        if outcome != Outcome::Block
            && let Some(cap) = self.daily_usd_per_agent
            && spent_today + tool.cost_usd > cap + 1e-9
        {
            return (Outcome::Block, vec![RULE_COST.to_owned()]);
        }
        (outcome, codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Source};
    use serde_json::json;

    fn catalog() -> Catalog {
        let tools = json!([
            {"name": "gh.repos.get", "description": "d", "method": "GET", "path": "/r", "input_schema": {"type": "object"}},
            {"name": "gh.repos.delete", "description": "d", "method": "DELETE", "path": "/r", "input_schema": {"type": "object"}},
            {"name": "gh.issues.create", "description": "d", "method": "POST", "path": "/i", "cost_usd": 4.0, "input_schema": {"type": "object"}},
            {"name": "gh.pulls.merge", "description": "d", "method": "PUT", "path": "/m", "destructive": true, "input_schema": {"type": "object"}}
        ]);
        Catalog::from_sources(vec![Source {
            origin: "t".into(),
            text: json!({"service": "gh", "tools": tools}).to_string(),
        }])
        .unwrap()
    }

    fn policy(toml_text: &str) -> Policy {
        Policy::from_file(toml::from_str(toml_text).unwrap(), Path::new("test.toml")).unwrap()
    }

    #[test]
    fn default_risk_follows_the_method() {
        let (c, p) = (catalog(), Policy::builtin());
        let decide = |name: &str, ctx: Value| {
            p.decide(c.by_name(name).unwrap(), ctx.as_object().unwrap(), 0.0)
        };
        assert_eq!(decide("gh.repos.get", json!({})), (Outcome::Allow, vec![]));
        assert_eq!(decide("gh.issues.create", json!({})).0, Outcome::Allow);
        assert_eq!(
            decide("gh.repos.delete", json!({})),
            (Outcome::Escalate, vec![RULE_ESCALATE.to_owned()])
        );
        assert_eq!(decide("gh.pulls.merge", json!({})).0, Outcome::Escalate);
        assert_eq!(
            decide("gh.repos.delete", json!({"env": "production"})),
            (Outcome::Block, vec![RULE_PROD.to_owned()])
        );
        assert_eq!(
            decide("gh.repos.get", json!({"env": "production"})).0,
            Outcome::Allow
        );
    }

    #[test]
    fn rules_match_by_glob_and_service_first_match_wins() {
        let c = catalog();
        let p = policy(
            "[[rules]]\ntool = \"gh.repos.*\"\naction = \"block\"\n[[rules]]\nservice = \"gh\"\naction = \"escalate\"\n",
        );
        let decide = |name: &str| p.decide(c.by_name(name).unwrap(), &Map::new(), 0.0);
        assert_eq!(
            decide("gh.repos.get"),
            (Outcome::Block, vec!["RULE_block:gh.repos.*".to_owned()])
        );
        assert_eq!(
            decide("gh.issues.create"),
            (Outcome::Escalate, vec!["RULE_escalate:gh".to_owned()])
        );
    }

    #[test]
    fn cost_cap_blocks_the_call_that_would_pass_it() {
        let c = catalog();
        let p = policy("[budget]\ndaily_usd_per_agent = 10.0\n");
        let tool = c.by_name("gh.issues.create").unwrap();
        assert_eq!(p.decide(tool, &Map::new(), 6.0).0, Outcome::Allow);
        assert_eq!(
            p.decide(tool, &Map::new(), 6.5),
            (Outcome::Block, vec![RULE_COST.to_owned()])
        );
    }

    #[test]
    fn bad_policies_are_explained() {
        let bad = |text: &str| {
            Policy::from_file(toml::from_str(text).unwrap(), Path::new("test.toml"))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("[[rules]]\naction = \"block\"").contains("neither"));
        assert!(bad("[faults]\nerror_rate = 2.0").contains("error_rate"));
        assert!(bad("[[keys]]\nkey = \"x\"").contains("8 characters"));
        assert!(
            bad("[[keys]]\nkey = \"tnt_key_one\"\n[[keys]]\nkey = \"tnt_key_one\"\nrole = \"approver\"")
                .contains("repeats an earlier key")
        );
        assert!(
            bad("[[keys]]\nkey = \"tnt_key_one\"\nrole = \"approver\"")
                .contains("only approver keys")
        );
        let debug = format!(
            "{:?}",
            policy(
                "[[keys]]\nkey = \"tnt_secret_key\"\n[credentials.gh]\nvalue = \"Bearer s3cr3t\""
            )
        );
        assert!(
            !debug.contains("tnt_secret_key") && !debug.contains("s3cr3t"),
            "{debug}"
        );
    }
}
