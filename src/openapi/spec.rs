//! Loading an OpenAPI description (3.0 or 3.1, JSON or YAML) and following its local
//! `$ref`s.

use serde_json::{Map, Value};

/// The largest description read, so a wrong path cannot exhaust memory.
pub const MAX_SPEC_BYTES: u64 = 64 * 1024 * 1024;

/// How many `$ref`s one lookup follows before giving up (a chain of references).
const MAX_REF_CHAIN: usize = 32;

/// Why a description cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// It opens with `{` but is not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// It is neither YAML nor JSON.
    #[error("not valid YAML or JSON: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// Not OpenAPI 3.0 or 3.1; what it is instead.
    #[error(
        "only OpenAPI 3.0 and 3.1 descriptions can be imported, this one has {0}; convert it to OpenAPI 3 first"
    )]
    Version(String),
    /// No `paths` object.
    #[error("the description has no `paths` object, so no operations to import")]
    NoPaths,
}

/// A `$ref` the importer cannot follow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RefError {
    /// A reference to another file.
    #[error("`$ref: {0}` points outside this file, which the importer does not follow")]
    External(String),
    /// A reference to nothing.
    #[error("`$ref: {0}` points at nothing in this file")]
    Dangling(String),
    /// References that lead to references, too many times.
    #[error("a chain of more than {MAX_REF_CHAIN} `$ref`s (a reference cycle?)")]
    Chain,
}

/// A parsed OpenAPI description.
pub(crate) struct Spec {
    /// The whole document.
    pub root: Value,
    /// 3.0 (`nullable`, boolean `exclusiveMinimum`) rather than 3.1 (JSON Schema 2020-12).
    pub is_30: bool,
}

impl Spec {
    /// Parses a description; JSON when it opens with `{`, YAML otherwise.
    pub(super) fn parse(text: &str) -> Result<Self, SpecError> {
        let root: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)?
        } else {
            yaml_to_json(serde_norway::from_str(text)?)
        };
        let version = root.get("openapi").and_then(Value::as_str).unwrap_or("");
        let is_30 = version.starts_with("3.0");
        if !(is_30 || version.starts_with("3.1")) {
            let found = match root.get("swagger") {
                Some(swagger) => format!("Swagger {}", text_of(swagger)),
                None if version.is_empty() => "no `openapi` version field".to_owned(),
                None => format!("`openapi: {version}`"),
            };
            return Err(SpecError::Version(found));
        }
        if !root.get("paths").is_some_and(Value::is_object) {
            return Err(SpecError::NoPaths);
        }
        Ok(Self { root, is_30 })
    }

    /// The value a local reference (`#/components/...`) points at.
    pub(super) fn lookup(&self, reference: &str) -> Result<&Value, RefError> {
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| RefError::External(reference.to_owned()))?;
        self.root
            .pointer(pointer)
            .ok_or_else(|| RefError::Dangling(reference.to_owned()))
    }

    /// `value` with its `$ref` chain followed (parameters, request bodies).
    pub(super) fn resolve<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value, RefError> {
        for _ in 0..MAX_REF_CHAIN {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => value = self.lookup(reference)?,
                None => return Ok(value),
            }
        }
        Err(RefError::Chain)
    }
}

/// A scalar as text (a YAML version may be a number).
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// YAML as JSON; map keys that are not strings (`200:` response codes) become text.
fn yaml_to_json(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = match yaml_to_json(key) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(value))
                })
                .collect::<Map<String, Value>>(),
        ),
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_json_parse_alike_and_other_versions_are_refused() {
        let yaml = "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n";
        let spec = Spec::parse(yaml).unwrap();
        assert!(!spec.is_30);
        assert_eq!(
            spec.root
                .pointer("/paths/~1a/get/responses/200/description"),
            Some(&json!("ok"))
        );
        let json = r#"{"openapi": "3.0.3", "paths": {}}"#;
        assert!(Spec::parse(json).unwrap().is_30);
        let swagger = Spec::parse("swagger: '2.0'\npaths: {}\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            swagger.contains("Swagger 2.0") && swagger.contains("convert it"),
            "{swagger}"
        );
        let broken = Spec::parse("{\"openapi\": ").err().unwrap().to_string();
        assert!(broken.starts_with("not valid JSON"), "{broken}");
        let no_paths = Spec::parse("openapi: 3.0.0\n").err().unwrap();
        assert!(matches!(no_paths, SpecError::NoPaths), "{no_paths}");
    }

    #[test]
    fn references_are_followed_and_bad_ones_named() {
        let spec = Spec::parse(
            &json!({"openapi": "3.0.0", "paths": {}, "components": {"parameters": {
                "a": {"$ref": "#/components/parameters/b"},
                "b": {"name": "per_page", "in": "query"},
                "loop": {"$ref": "#/components/parameters/loop"}
            }}})
            .to_string(),
        )
        .unwrap();
        let a = json!({"$ref": "#/components/parameters/a"});
        assert_eq!(spec.resolve(&a).unwrap()["name"], "per_page");
        let looped = json!({"$ref": "#/components/parameters/loop"});
        assert_eq!(spec.resolve(&looped), Err(RefError::Chain));
        let outside = json!({"$ref": "other.yaml#/x"});
        assert!(
            spec.resolve(&outside)
                .unwrap_err()
                .to_string()
                .contains("points outside this file")
        );
        let missing = json!({"$ref": "#/components/parameters/zzz"});
        assert_eq!(
            spec.resolve(&missing),
            Err(RefError::Dangling("#/components/parameters/zzz".into()))
        );
    }
}
