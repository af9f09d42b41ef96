//! Which catalog tools a server shows: `--toolsets`, `--tools` globs, `--read-only`,
//! and the per-token `tools` lists of an `--auth-tokens` file.
//!
//! One glob language serves every list: `*` matches any run of characters (dots
//! included), `?` one character, anything else itself; a leading `!` excludes. Globs
//! match catalog names (`github.issues.*`). A [`Selector`] turns a loaded catalog into
//! a [`Selection`]; [`Rules`] further limit what one agent sees and may call.

use std::collections::{BTreeSet, HashMap};

use clap::Args;

use crate::{
    catalog::{Catalog, Tool},
    config::ConfigError,
};

/// The `default` toolset: one catalog name per line, `#` comments.
static DEFAULT_TOOLSET: &str = include_str!("../catalog/default.toolset");

/// The catalog names of the `default` toolset.
pub fn default_toolset() -> impl Iterator<Item = &'static str> {
    DEFAULT_TOOLSET
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(name, _)| name).trim())
        .filter(|name| !name.is_empty())
}

/// The flags that choose the tools a server shows (`serve`, `catalog list`).
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Tool selection")]
pub struct SelectionArgs {
    /// The tools to show: a comma list of services and `service.resource` groups
    /// (`github.repos,github.issues,stripe`), `all`, or `default` (the everyday set of the
    /// shipped catalog) [default: `default` for the shipped catalog, `all` for --catalog;
    /// with --tools globs that include and no --toolsets, only what they match].
    #[arg(long, value_name = "LIST")]
    pub toolsets: Option<String>,
    /// A glob on catalog names, applied after --toolsets in order (repeatable): adds
    /// the tools it matches, or with a leading `!` removes them (`github.issues.*`,
    /// `!github.repos.delete`). A glob matching no tool is an error.
    #[arg(long = "tools", value_name = "GLOB", allow_hyphen_values = true)]
    pub tools: Vec<String>,
    /// Show only read-only (GET and HEAD) tools.
    #[arg(long)]
    pub read_only: bool,
}

impl SelectionArgs {
    /// The selector these flags describe; `custom_catalog` when `--catalog` was given.
    pub fn selector(&self, custom_catalog: bool) -> Result<Selector, ConfigError> {
        Selector::new(
            self.toolsets.as_deref(),
            &self.tools,
            self.read_only,
            custom_catalog,
        )
    }
}

/// Why a list of tool globs, or the lists of an `--auth-tokens` file, were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A glob that is empty or holds whitespace or an inner `!`.
    #[error(
        "`{0}` is not a tool glob: write a catalog name where `*` matches any characters, \
         with a leading `!` to exclude (e.g. `github.issues.*` or `!github.repos.delete`)"
    )]
    NotAGlob(String),
    /// Tokens of one agent with different `tools` lists.
    #[error(
        "the tokens of agent `{0}` have different `tools` lists: give them the same list, \
         or give each token its own agent_id"
    )]
    DifferentLists(String),
}

/// The refusal's text, for callers that report in words.
impl From<SelectionError> for String {
    fn from(error: SelectionError) -> Self {
        error.to_string()
    }
}

/// One glob of a list, including or (`!`) excluding the names it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    glob: String,
    exclude: bool,
}

/// An ordered list of globs: a name's fate is decided by the last glob matching it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Parses globs such as `github.issues.*` and `!github.repos.delete`.
    pub fn parse<S: AsRef<str>>(globs: &[S]) -> Result<Self, SelectionError> {
        globs
            .iter()
            .map(|text| {
                let text = text.as_ref().trim();
                let (exclude, glob) = match text.strip_prefix('!') {
                    Some(glob) => (true, glob),
                    None => (false, text),
                };
                if glob.is_empty() || glob.chars().any(|c| c.is_whitespace() || c == '!') {
                    return Err(SelectionError::NotAGlob(text.to_owned()));
                }
                Ok(Rule {
                    glob: glob.to_owned(),
                    exclude,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether there are no globs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn has_includes(&self) -> bool {
        self.0.iter().any(|rule| !rule.exclude)
    }

    /// Whether `name` passes starting from `selected`: each matching glob in turn includes or excludes it.
    fn apply(&self, name: &str, selected: bool) -> bool {
        self.0.iter().fold(selected, |selected, rule| {
            if glob_matches(&rule.glob, name) {
                !rule.exclude
            } else {
                selected
            }
        })
    }

    /// Whether a list limits `name` to pass: with any including glob, only what one
    /// includes (and no later one excludes); with only excluding globs, all but those.
    pub fn allows(&self, name: &str) -> bool {
        self.apply(name, !self.has_includes())
    }

    /// The globs (as written) that match no tool of `catalog`.
    pub fn unmatched(&self, catalog: &Catalog) -> Vec<String> {
        self.0
            .iter()
            .filter(|rule| {
                !catalog
                    .tools()
                    .iter()
                    .any(|tool| glob_matches(&rule.glob, &tool.name))
            })
            .map(|rule| format!("{}{}", if rule.exclude { "!" } else { "" }, rule.glob))
            .collect()
    }
}

/// Whether `glob` (`*` any run, `?` one character) matches all of `text`.
fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut g, mut t) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    g = star_g + 1;
                    t = star_t + 1;
                    star = Some((star_g, star_t + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// One item of `--toolsets`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Toolset {
    /// The everyday set of [`default_toolset`].
    Default,
    /// Every tool of the catalog.
    All,
    /// A service (`github`) or a `service.resource` group (`github.issues`).
    Named(String),
}

impl Toolset {
    fn contains(&self, tool: &Tool, default: &BTreeSet<&str>) -> bool {
        match self {
            Self::Default => default.contains(tool.name.as_str()),
            Self::All => true,
            Self::Named(name) => {
                *tool.service == **name
                    || tool
                        .name
                        .strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            }
        }
    }
}

/// The `--toolsets`, `--tools` and `--read-only` of a server, ready to apply to any catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// `None`: start from nothing (only `--tools` globs given).
    toolsets: Option<Vec<Toolset>>,
    tools: Rules,
    read_only: bool,
}

impl Selector {
    /// Reads the flags. Without `--toolsets`, a server starts from `default` for the shipped
    /// catalog and from `all` for a `--catalog` of its own (`custom_catalog`); when `--tools`
    /// has an including glob, it starts from nothing instead, so `--tools 'github.issues.*'`
    /// alone shows just those tools.
    pub fn new(
        toolsets: Option<&str>,
        tools: &[String],
        read_only: bool,
        custom_catalog: bool,
    ) -> Result<Self, ConfigError> {
        let tools =
            Rules::parse(tools).map_err(|problem| ConfigError(format!("--tools: {problem}")))?;
        let toolsets = match toolsets {
            Some(list) => Some(parse_toolsets(list)?),
            None if tools.has_includes() => None,
            None if custom_catalog => Some(vec![Toolset::All]),
            None => Some(vec![Toolset::Default]),
        };
        Ok(Self {
            toolsets,
            tools,
            read_only,
        })
    }

    /// Everything in the catalog (what a bridge shows unless told otherwise).
    pub fn all() -> Self {
        Self {
            toolsets: Some(vec![Toolset::All]),
            tools: Rules::default(),
            read_only: false,
        }
    }

    /// The tools of `catalog` this selector shows. A toolset naming no service or group of
    /// the catalog, or a `--tools` glob matching none of its tools, is an error naming it.
    pub fn select(&self, catalog: &Catalog) -> Result<Selection, ConfigError> {
        let default: BTreeSet<&str> = default_toolset().collect();
        let toolsets = self.toolsets.as_deref().unwrap_or_default();
        let mut problems = Vec::new();
        for toolset in toolsets {
            if let Toolset::Named(name) = toolset
                && !catalog
                    .tools()
                    .iter()
                    .any(|tool| toolset.contains(tool, &default))
            {
                problems.push(format!(
                    "--toolsets: `{name}` names no service or service.resource group of the catalog \
                     (services: {}); run `tenet-mcp catalog list --toolsets all` to see every tool",
                    catalog.services().join(", ")
                ));
            }
        }
        if toolsets.contains(&Toolset::Default) {
            for name in &default {
                if catalog.by_name(name).is_none() {
                    tracing::debug!(
                        tool = name,
                        "a tool of the default toolset is not in the catalog; skipped"
                    );
                }
            }
        }
        let unmatched = self.tools.unmatched(catalog);
        if !unmatched.is_empty() {
            problems.push(format!(
                "--tools: {} match{} no tool of the catalog; fix or drop {} (`tenet-mcp catalog list --toolsets all` lists every name)",
                unmatched.iter().map(|glob| format!("`{glob}`")).collect::<Vec<_>>().join(", "),
                if unmatched.len() == 1 { "es" } else { "" },
                if unmatched.len() == 1 { "it" } else { "them" },
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems.join("\n")));
        }
        let shown = catalog
            .tools()
            .iter()
            .enumerate()
            .filter(|(_, tool)| {
                let in_toolsets = toolsets
                    .iter()
                    .any(|toolset| toolset.contains(tool, &default));
                self.tools.apply(&tool.name, in_toolsets)
                    && (!self.read_only || tool.method.is_read_only())
            })
            .map(|(index, _)| index)
            .collect::<Vec<_>>();
        if shown.is_empty() {
            tracing::warn!(
                "no catalog tool is selected, so only tenet_job_status is shown: check --toolsets, --tools and --read-only"
            );
        }
        Ok(Selection { shown })
    }
}

/// Parses `--toolsets`: a comma list of `default`, `all`, services and `service.resource` groups.
fn parse_toolsets(list: &str) -> Result<Vec<Toolset>, ConfigError> {
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(ConfigError(format!(
            "--toolsets `{list}` has an empty item: write a comma list such as `github.repos,github.issues,stripe`, `default` or `all`"
        )));
    }
    items
        .into_iter()
        .map(|item| match item {
            "default" => Ok(Toolset::Default),
            "all" => Ok(Toolset::All),
            name if name.split('.').count() <= 2
                && name.split('.').all(|part| !part.is_empty() && !part.contains(['*', '?', '!'])) =>
            {
                Ok(Toolset::Named(name.to_owned()))
            }
            name => Err(ConfigError(format!(
                "--toolsets: `{name}` is not a service (`github`) or a service.resource group (`github.issues`); \
                 to pick single tools or use globs, use --tools"
            ))),
        })
        .collect()
}

/// The tools a selector picked from one catalog: indexes into its tools, in catalog order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    shown: Vec<usize>,
}

impl Selection {
    /// Every tool of `catalog`.
    pub fn everything(catalog: &Catalog) -> Self {
        Self {
            shown: (0..catalog.tools().len()).collect(),
        }
    }

    /// The picked tools of `catalog` (the catalog this selection was made from).
    pub fn tools<'a>(&'a self, catalog: &'a Catalog) -> impl Iterator<Item = &'a Tool> + 'a {
        self.indexed(catalog).map(|(_, tool)| tool)
    }

    /// The picked tools of `catalog`, each with its index in the catalog's tools.
    pub fn indexed<'a>(
        &'a self,
        catalog: &'a Catalog,
    ) -> impl Iterator<Item = (usize, &'a Tool)> + 'a {
        self.shown
            .iter()
            .filter_map(|&index| Some((index, catalog.tools().get(index)?)))
    }

    /// How many tools were picked.
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

/// The `tools` lists of an `--auth-tokens` file, by agent id: what each agent may see
/// and call, within what the server shows. An agent without a list is not limited; an
/// agent the file does not name gets nothing, unless [`AgentScopes::unlisted_unlimited`].
#[derive(Clone, Debug, Default)]
pub struct AgentScopes {
    by_agent: HashMap<String, Option<Rules>>,
    /// Agents without an entry are not limited (see [`AgentScopes::unlisted_unlimited`]).
    unlisted_unlimited: bool,
}

impl AgentScopes {
    /// Scopes from `(agent id, tools list)` pairs; every pair of one agent must agree.
    pub fn new(
        entries: impl IntoIterator<Item = (String, Option<Rules>)>,
    ) -> Result<Self, SelectionError> {
        let mut by_agent: HashMap<String, Option<Rules>> = HashMap::new();
        for (agent, rules) in entries {
            match by_agent.get(&agent) {
                Some(seen) if *seen != rules => return Err(SelectionError::DifferentLists(agent)),
                Some(_) => {}
                None => {
                    by_agent.insert(agent, rules);
                }
            }
        }
        Ok(Self {
            by_agent,
            unlisted_unlimited: false,
        })
    }

    /// The same lists, leaving agents they do not name unlimited instead of showing
    /// them nothing: for agents authenticated otherwise (OAuth), whose tools are checked
    /// where they are authenticated.
    pub fn unlisted_unlimited(mut self) -> Self {
        self.unlisted_unlimited = true;
        self
    }

    /// Whether `agent` may see and call the tool named `name`.
    pub fn allows(&self, agent: &str, name: &str) -> bool {
        match self.by_agent.get(agent) {
            Some(Some(rules)) => rules.allows(name),
            Some(None) => true,
            None => self.unlisted_unlimited,
        }
    }

    /// Whether `agent` has a list (and so sees a tool list of its own).
    pub fn limits(&self, agent: &str) -> bool {
        match self.by_agent.get(agent) {
            Some(rules) => rules.is_some(),
            None => !self.unlisted_unlimited,
        }
    }

    /// Each list's globs that match no tool of `catalog`, as `agent: glob` lines.
    pub fn unmatched(&self, catalog: &Catalog) -> Vec<String> {
        let mut lines: Vec<String> = self
            .by_agent
            .iter()
            .filter_map(|(agent, rules)| Some((agent, rules.as_ref()?)))
            .flat_map(|(agent, rules)| {
                rules
                    .unmatched(catalog)
                    .into_iter()
                    .map(move |glob| format!("agent `{agent}`: `{glob}`"))
            })
            .collect();
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Source;
    use serde_json::json;

    fn catalog() -> Catalog {
        let tool = |name: &str, method: &str| json!({"name": name, "description": "d", "method": method, "path": "/x", "input_schema": {"type": "object"}});
        let github = json!({"service": "github", "tools": [
            tool("github.repos.get", "GET"),
            tool("github.repos.delete", "DELETE"),
            tool("github.issues.get", "GET"),
            tool("github.issues.create", "POST"),
            tool("github.issues.lock", "PUT"),
        ]});
        let stripe = json!({"service": "stripe", "tools": [tool("stripe.customers.list", "GET")]});
        Catalog::from_sources(vec![
            Source {
                origin: "github.json".into(),
                text: github.to_string(),
            },
            Source {
                origin: "stripe.json".into(),
                text: stripe.to_string(),
            },
        ])
        .unwrap()
    }

    fn names(selector: &Selector) -> Vec<String> {
        let catalog = catalog();
        let selection = selector.select(&catalog).unwrap();
        selection
            .tools(&catalog)
            .map(|tool| tool.name.clone())
            .collect()
    }

    #[test]
    fn globs() {
        assert!(glob_matches("github.issues.*", "github.issues.get"));
        assert!(glob_matches("*", "anything.at.all"));
        assert!(glob_matches("github.*.get", "github.repos.get"));
        assert!(glob_matches("*.list*", "stripe.customers.listForX"));
        assert!(glob_matches("github.repos.ge?", "github.repos.get"));
        assert!(!glob_matches("github.repos.ge?", "github.repos.getx"));
        assert!(!glob_matches("github.issues.*", "github.issuesX.get"));
        assert!(!glob_matches("github.repos", "github.repos.get"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-b-b-d"));
    }

    #[test]
    fn rules_keep_order_and_only_excludes_mean_all_but() {
        let rules = Rules::parse(&["github.*", "!github.repos.delete"]).unwrap();
        assert!(rules.allows("github.repos.get"));
        assert!(!rules.allows("github.repos.delete"));
        assert!(!rules.allows("stripe.customers.list"));
        let rules = Rules::parse(&["!github.repos.delete"]).unwrap();
        assert!(rules.allows("stripe.customers.list"));
        assert!(!rules.allows("github.repos.delete"));
        for bad in ["", "!", "a b", "!!x"] {
            assert!(Rules::parse(&[bad]).is_err(), "{bad:?}");
        }
        assert_eq!(
            Rules::parse(&["ok.*", " a b "]),
            Err(SelectionError::NotAGlob("a b".into()))
        );
    }

    #[test]
    fn toolsets_tools_and_read_only() {
        let select = |toolsets: Option<&str>, tools: &[&str], read_only: bool| {
            let tools: Vec<String> = tools.iter().map(|s| s.to_string()).collect();
            names(&Selector::new(toolsets, &tools, read_only, true).unwrap())
        };
        assert_eq!(
            select(Some("github.issues,stripe"), &[], false),
            [
                "github.issues.get",
                "github.issues.create",
                "github.issues.lock",
                "stripe.customers.list"
            ]
        );
        assert_eq!(
            select(None, &[], false).len(),
            6,
            "a custom catalog shows all"
        );
        assert_eq!(
            select(None, &["github.repos.*"], false),
            ["github.repos.get", "github.repos.delete"]
        );
        assert_eq!(
            select(Some("stripe"), &["github.repos.get"], false),
            ["github.repos.get", "stripe.customers.list"]
        );
        assert_eq!(
            select(Some("all"), &["!github.*"], false),
            ["stripe.customers.list"]
        );
        assert_eq!(
            select(Some("github"), &[], true),
            ["github.repos.get", "github.issues.get"]
        );
    }

    #[test]
    fn unknown_toolsets_and_globs_matching_nothing_are_named() {
        let catalog = catalog();
        let error = Selector::new(Some("github.gists,stripe"), &[], false, false)
            .unwrap()
            .select(&catalog)
            .unwrap_err()
            .0;
        assert!(
            error.contains("`github.gists`") && error.contains("services: github, stripe"),
            "{error}"
        );
        let error = Selector::new(
            None,
            &["github.isues.*".into(), "!nope".into()],
            false,
            false,
        )
        .unwrap()
        .select(&catalog)
        .unwrap_err()
        .0;
        assert!(
            error.contains("`github.isues.*`, `!nope` match no tool"),
            "{error}"
        );
        for bad in ["github,", "github.issues.get", "git*"] {
            assert!(
                Selector::new(Some(bad), &[], false, false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_toolset_skips_missing_names() {
        let default: Vec<&str> = default_toolset().collect();
        assert_eq!(default.len(), 46);
        assert!(default.contains(&"github.repos.createForAuthenticatedUser"));
        assert!(default.contains(&"github.issues.listForRepo"));
        let selected = names(&Selector::new(None, &[], false, false).unwrap());
        assert_eq!(
            selected,
            [
                "github.repos.get",
                "github.repos.delete",
                "github.issues.get",
                "github.issues.create",
                "stripe.customers.list"
            ],
            "github.issues.lock is not in the default toolset"
        );
    }

    #[test]
    fn agent_scopes() {
        let limited = Rules::parse(&["github.issues.*"]).unwrap();
        let scopes = AgentScopes::new([
            ("a".to_owned(), Some(limited.clone())),
            ("b".to_owned(), None),
        ])
        .unwrap();
        assert!(scopes.allows("a", "github.issues.get") && !scopes.allows("a", "github.repos.get"));
        assert!(scopes.allows("b", "github.repos.get"));
        assert!(
            !scopes.allows("stranger", "github.repos.get"),
            "unknown agents get nothing"
        );
        let refused = AgentScopes::new([("a".to_owned(), Some(limited)), ("a".to_owned(), None)])
            .unwrap_err();
        assert_eq!(refused, SelectionError::DifferentLists("a".into()));
        assert!(
            String::from(refused)
                .starts_with("the tokens of agent `a` have different `tools` lists"),
        );
        let scopes = AgentScopes::new([(
            "a".to_owned(),
            Some(Rules::parse(&["github.nope*"]).unwrap()),
        )])
        .unwrap();
        assert_eq!(scopes.unmatched(&catalog()), ["agent `a`: `github.nope*`"]);
    }
}
