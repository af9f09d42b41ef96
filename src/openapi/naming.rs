//! Tool names from operations: `octokit` (GitHub's `operationId` `repos/list-for-org`
//! → `repos.listForOrg`), `rest` (by path and method: `GET /v1/customers` →
//! `customers.list`; Slack-style method paths such as `/chat.postMessage` are their own
//! name) and `operation-id` (the `operationId` as it is).

use std::collections::{BTreeSet, HashMap};

/// How tool names are derived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Naming {
    /// GitHub's `operationId`s, `scope/kebab-name` → `scope.camelName`.
    Octokit,
    /// By path and method (collections, items and actions); Slack-style paths as they are.
    #[default]
    Rest,
    /// The `operationId`, characters outside `[A-Za-z0-9._-]` replaced by `_`.
    OperationId,
}

/// Names no rule derives: (method, path) → name within the service.
const OVERRIDES: &[(&str, &str, &str)] = &[
    ("GET", "/v1/balance", "balance.retrieve"),
    ("GET", "/v1/account", "account.retrieve"),
];

/// What the `rest` rules need to know about the whole description.
pub(crate) struct PathIndex<'a> {
    /// Every path, with the methods it has.
    paths: HashMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> PathIndex<'a> {
    /// Indexes (path, lower-case method) pairs.
    pub(super) fn new(operations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut paths: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for (path, method) in operations {
            paths.entry(path).or_default().insert(method);
        }
        Self { paths }
    }

    /// Whether some path is `path/{param}`.
    fn has_items(&self, path: &str) -> bool {
        self.paths.keys().any(|other| {
            other
                .strip_prefix(path)
                .and_then(|rest| rest.strip_prefix("/{"))
                .is_some_and(|rest| rest.find('/').is_none() && rest.ends_with('}'))
        })
    }
}

/// Why no name can be derived for an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    /// The naming needs an `operationId` (the `--naming` value named).
    #[error("it has no operationId for --naming {0}")]
    NoOperationId(&'static str),
    /// An `operationId` with an empty `/`-separated part.
    #[error("its operationId `{0}` has an empty part")]
    EmptyPart(String),
    /// A path of parameters only.
    #[error("its path `{0}` has no resource to name it by")]
    NoResource(String),
}

/// The name of one operation within its service (without the service prefix), or why
/// none can be derived.
pub(crate) fn name(
    naming: Naming,
    method: &str,
    path: &str,
    operation_id: Option<&str>,
    index: &PathIndex<'_>,
) -> Result<String, NameError> {
    let upper = method.to_ascii_uppercase();
    if let Some((_, _, name)) = OVERRIDES.iter().find(|(m, p, _)| *m == upper && *p == path)
        && naming == Naming::Rest
    {
        return Ok((*name).to_owned());
    }
    match naming {
        Naming::Octokit => {
            let id = operation_id.ok_or(NameError::NoOperationId("octokit"))?;
            let parts: Vec<String> = id.split('/').map(camel_from_kebab).collect();
            if parts.iter().any(String::is_empty) {
                return Err(NameError::EmptyPart(id.to_owned()));
            }
            Ok(parts.join("."))
        }
        Naming::OperationId => {
            let id = operation_id.ok_or(NameError::NoOperationId("operation-id"))?;
            Ok(id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect())
        }
        Naming::Rest => rest_name(method, path, index),
    }
}

/// The `rest` rules.
fn rest_name(method: &str, path: &str, index: &PathIndex<'_>) -> Result<String, NameError> {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first().is_some_and(|s| is_version(s)) {
        segments.remove(0);
    }
    if let [only] = segments.as_slice()
        && only.contains('.')
        && !only.contains('{')
    {
        return Ok((*only).to_owned());
    }
    let is_param = |s: &str| s.starts_with('{');
    let literals = |segments: &[&str]| -> Vec<String> {
        segments
            .iter()
            .filter(|s| !is_param(s))
            .map(|s| camel_from_snake(s))
            .collect()
    };
    let Some(&last) = segments.last() else {
        return Err(NameError::NoResource("/".into()));
    };
    let method = method.to_ascii_lowercase();
    let by_method = |collection: bool| -> &'static str {
        match (method.as_str(), collection) {
            ("get", true) => "list",
            ("get", false) | ("head", _) => "retrieve",
            ("post", true) => "create",
            ("delete", _) => "delete",
            _ => "update",
        }
    };
    let (resource, action) = if is_param(last) {
        (literals(&segments), by_method(false).to_owned())
    } else {
        let parent = &segments[..segments.len() - 1];
        let methods = index.paths.get(path);
        let collection = index.has_items(path)
            || methods.is_some_and(|m| m.contains("get") && m.contains("post"));
        let parent_path = path.rsplit_once('/').map_or("", |(parent, _)| parent);
        let action_like =
            parent.last().is_some_and(|s| is_param(s)) || index.paths.contains_key(parent_path);
        let single_method = methods.is_none_or(|m| m.len() == 1);
        let under_item = parent.last().is_some_and(|s| is_param(s));
        if collection {
            (literals(&segments), by_method(true).to_owned())
        } else if action_like && (method == "post" || single_method) {
            (literals(parent), camel_from_snake(last))
        } else {
            // A singleton: one object under an item (`/customers/{c}/discount`) or at the top.
            (literals(&segments), by_method(!under_item).to_owned())
        }
    };
    if resource.is_empty() {
        return Err(NameError::NoResource(path.to_owned()));
    }
    Ok(format!("{}.{action}", resource.join(".")))
}

/// `v1`, `v2`, ...: a version prefix, not a resource.
fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// `list-for-org` → `listForOrg`.
fn camel_from_kebab(text: &str) -> String {
    camel(text, '-')
}

/// `payment_intents` → `paymentIntents` (also `-`).
fn camel_from_snake(text: &str) -> String {
    camel(&text.replace('-', "_"), '_')
}

fn camel(text: &str, separator: char) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(separator).filter(|w| !w.is_empty()).enumerate() {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push(first);
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_names_follow_collections_items_and_actions() {
        let operations = [
            ("/v1/customers", "get"),
            ("/v1/customers", "post"),
            ("/v1/customers/{customer}", "get"),
            ("/v1/customers/{customer}", "post"),
            ("/v1/customers/{customer}", "delete"),
            ("/v1/customers/{customer}/sources", "get"),
            ("/v1/customers/{customer}/sources", "post"),
            ("/v1/payment_intents/{intent}/confirm", "post"),
            ("/v1/charges", "get"),
            ("/v1/charges/search", "get"),
            ("/v1/balance", "get"),
            ("/v1/events", "get"),
            ("/v1/customers/{customer}/discount", "get"),
            ("/v1/customers/{customer}/discount", "delete"),
            ("/chat.postMessage", "post"),
        ];
        let index = PathIndex::new(operations);
        let names: Vec<String> = operations
            .iter()
            .map(|(path, method)| name(Naming::Rest, method, path, None, &index).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "customers.list",
                "customers.create",
                "customers.retrieve",
                "customers.update",
                "customers.delete",
                "customers.sources.list",
                "customers.sources.create",
                "paymentIntents.confirm",
                "charges.list",
                "charges.search",
                "balance.retrieve",
                "events.list",
                "customers.discount.retrieve",
                "customers.discount.delete",
                "chat.postMessage",
            ]
        );
    }

    #[test]
    fn octokit_and_operation_id_names() {
        let index = PathIndex::new([]);
        let octokit = |id| name(Naming::Octokit, "get", "/x", Some(id), &index);
        assert_eq!(octokit("repos/list-for-org").unwrap(), "repos.listForOrg");
        assert_eq!(octokit("meta/root").unwrap(), "meta.root");
        assert_eq!(
            octokit("repos//x").unwrap_err().to_string(),
            "its operationId `repos//x` has an empty part"
        );
        assert_eq!(
            name(Naming::Octokit, "get", "/x", None, &index),
            Err(NameError::NoOperationId("octokit"))
        );
        assert_eq!(
            name(
                Naming::OperationId,
                "get",
                "/x",
                Some("chat_post Message"),
                &index
            )
            .unwrap(),
            "chat_post_Message"
        );
    }
}
