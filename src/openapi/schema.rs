//! OpenAPI schemas as the JSON Schema of tool arguments: `$ref`s inlined (cycles cut
//! with a note), 3.0's `nullable` and boolean `exclusiveMinimum` rewritten, `readOnly`
//! properties left out (arguments are requests), `oneOf` loosened to `anyOf`,
//! descriptions cut to one sentence, and everything that does not constrain or
//! explain a value (examples, titles, `x-` extensions) dropped.

use serde_json::{Map, Value, json};

use super::spec::{RefError, Spec};

/// The longest description kept, in characters.
pub(super) const MAX_DESCRIPTION_CHARS: usize = 200;

/// How deep nested schemas are expanded before the rest is accepted as any value.
const MAX_DEPTH: usize = 24;

/// Keywords copied as they are.
const KEPT: &[&str] = &[
    "type",
    "enum",
    "const",
    "default",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
];

/// Converts schemas of one description; collects notes on what it had to change.
pub(crate) struct Converter<'a> {
    spec: &'a Spec,
    /// The `$ref`s being expanded, outermost first.
    expanding: Vec<String>,
    /// What was cut or dropped, for the import report.
    pub notes: Vec<String>,
}

impl<'a> Converter<'a> {
    /// A converter for `spec`.
    pub(super) fn new(spec: &'a Spec) -> Self {
        Self {
            spec,
            expanding: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Whether a (possibly referenced) schema is marked `readOnly`.
    pub(super) fn is_read_only(&self, schema: &Value) -> bool {
        self.spec
            .resolve(schema)
            .is_ok_and(|s| s.get("readOnly") == Some(&Value::Bool(true)))
    }

    /// The argument schema of an OpenAPI schema.
    pub(super) fn convert(&mut self, schema: &Value) -> Result<Value, RefError> {
        self.convert_at(schema, 0)
    }

    fn convert_at(&mut self, schema: &Value, depth: usize) -> Result<Value, RefError> {
        let Some(object) = schema.as_object() else {
            return Ok(match schema {
                Value::Bool(_) => schema.clone(),
                _ => json!({}),
            });
        };
        if depth > MAX_DEPTH {
            self.notes.push(format!(
                "a schema nested deeper than {MAX_DEPTH} levels accepts any value below that"
            ));
            return Ok(json!({}));
        }
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            if self.expanding.iter().any(|r| r == reference) {
                self.notes.push(format!(
                    "the recursive schema {reference} is cut where it repeats"
                ));
                return Ok(
                    json!({"description": format!("Recursive: {}, as above.", last_segment(reference))}),
                );
            }
            let target = self.spec.lookup(reference)?;
            self.expanding.push(reference.to_owned());
            let converted = self.convert_at(target, depth + 1);
            self.expanding.pop();
            let mut converted = converted?;
            if let (Some(text), Some(out)) = (
                object.get("description").and_then(Value::as_str),
                converted.as_object_mut(),
            ) {
                out.insert("description".into(), Value::String(sentence(text)));
            }
            return Ok(converted);
        }
        let mut out = Map::new();
        for key in KEPT {
            if let Some(value) = object.get(*key) {
                out.insert((*key).to_owned(), value.clone());
            }
        }
        if let Some(text) = object.get("description").and_then(Value::as_str) {
            let text = sentence(text);
            if !text.is_empty() {
                out.insert("description".into(), Value::String(text));
            }
        }
        if let Some(pattern) = object.get("pattern").and_then(Value::as_str) {
            if jsonschema::validator_for(&json!({"pattern": pattern})).is_ok() {
                out.insert("pattern".into(), Value::String(pattern.to_owned()));
            } else {
                self.notes.push(format!(
                    "the pattern `{pattern}` is not a regex the validator reads; left out"
                ));
            }
        }
        for (key, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            match object.get(key) {
                Some(Value::Bool(true)) => {
                    if let Some(limit) = out.remove(bound) {
                        out.insert(key.to_owned(), limit);
                    }
                }
                Some(number @ Value::Number(_)) => {
                    out.insert(key.to_owned(), number.clone());
                }
                _ => {}
            }
        }
        if self.spec.is_30 && object.get("nullable") == Some(&Value::Bool(true)) {
            if let Some(Value::String(kind)) = out.get("type") {
                let kind = kind.clone();
                out.insert("type".into(), json!([kind, "null"]));
            }
            if let Some(Value::Array(values)) = out.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            let mut kept = Map::new();
            for (name, property) in properties {
                if self.is_read_only(property) {
                    continue;
                }
                kept.insert(name.clone(), self.convert_at(property, depth + 1)?);
            }
            if let Some(required) = object.get("required").and_then(Value::as_array) {
                let required: Vec<Value> = required
                    .iter()
                    .filter(|name| name.as_str().is_some_and(|n| kept.contains_key(n)))
                    .cloned()
                    .collect();
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            out.insert("properties".into(), Value::Object(kept));
        } else if let Some(required) = object.get("required") {
            out.insert("required".into(), required.clone());
        }
        for key in ["items", "additionalProperties", "not"] {
            if let Some(inner) = object.get(key) {
                let inner = self.convert_at(inner, depth + 1)?;
                out.insert(key.to_owned(), inner);
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = object.get(key) {
                let variants = variants
                    .iter()
                    .map(|variant| self.convert_at(variant, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                // A value matching two variants is fine for a caller; `oneOf` would refuse it.
                let key = if key == "oneOf" && !object.contains_key("anyOf") {
                    "anyOf"
                } else {
                    key
                };
                out.insert(key.to_owned(), Value::Array(variants));
            }
        }
        Ok(Value::Object(out))
    }
}

/// The last segment of a reference, for notes: `#/components/schemas/user` → `user`.
fn last_segment(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The first sentence of a description: HTML tags and Markdown links reduced to their
/// text, leading `> [!NOTE]` call-outs skipped, whitespace collapsed, at most
/// [`MAX_DESCRIPTION_CHARS`] characters (cut with `…`).
pub(super) fn sentence(text: &str) -> String {
    let text = unlink(&untag(text));
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let chosen = paragraphs
        .iter()
        .find(|p| !p.starts_with('>'))
        .or(paragraphs.first())
        .copied()
        .unwrap_or_default();
    let flat = chosen
        .lines()
        .flat_map(|line| line.trim_start().trim_start_matches('>').split_whitespace())
        .filter(|word| !(word.starts_with("[!") && word.ends_with(']')))
        .collect::<Vec<_>>()
        .join(" ");
    let mut end = flat.len();
    let bytes = flat.as_bytes();
    for (at, _) in flat.match_indices(". ") {
        if at > 0
            && !bytes[at - 1].is_ascii_uppercase()
            && !flat[..at].ends_with("e.g")
            && !flat[..at].ends_with("i.e")
        {
            end = at + 1;
            break;
        }
    }
    cut(flat[..end].trim())
}

/// `text` cut to at most [`MAX_DESCRIPTION_CHARS`] characters, with `…` when cut.
pub(super) fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// HTML tags (`<p>`, `</code>`, `<br/>`) removed and the common entities decoded; a `<`
/// that does not open a tag (`a < b`) is kept.
fn untag(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let is_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match after.find('>') {
            Some(close) if is_tag && !after[..close].contains('<') => rest = &after[close + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Markdown links `[text](url)` as `text`.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|mid| {
            let tail = &after[mid + 2..];
            tail.find(')').map(|close| (mid, mid + 2 + close + 1))
        });
        match link {
            Some((mid, end)) if !after[..mid].contains(['[', '\n']) => {
                out.push_str(&rest[..open]);
                out.push_str(&after[..mid]);
                rest = &after[end..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(version: &str, components: Value) -> Spec {
        Spec::parse(
            &json!({"openapi": version, "paths": {}, "components": {"schemas": components}})
                .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn descriptions_keep_one_sentence_of_at_most_200_characters() {
        assert_eq!(
            sentence("Lists the [repositories](https://x.test/docs) of a user.  More text\nhere."),
            "Lists the repositories of a user."
        );
        assert_eq!(
            sentence("First paragraph\nwraps\n\nSecond."),
            "First paragraph wraps"
        );
        assert_eq!(sentence("Use e.g. this. Then that."), "Use e.g. this.");
        assert_eq!(
            sentence(
                "<p>To charge a card, you create a <code>Charge</code> object.</p> <p>More.</p>"
            ),
            "To charge a card, you create a Charge object."
        );
        assert_eq!(
            sentence("If a < b &amp; c > d, stop."),
            "If a < b & c > d, stop."
        );
        assert_eq!(
            sentence("> [!NOTE]\n> Rarely needed.\n\nDeletes a repository. Irreversible."),
            "Deletes a repository."
        );
        assert_eq!(
            sentence("> [!WARNING]\n> Only a warning."),
            "Only a warning."
        );
        let long = "word ".repeat(100);
        let cut = sentence(&long);
        assert_eq!(cut.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn references_are_inlined_cycles_cut_and_read_only_fields_dropped() {
        let spec = spec(
            "3.0.3",
            json!({
                "node": {"type": "object", "title": "Node", "example": {}, "x-internal": true,
                    "properties": {
                        "id": {"type": "integer", "readOnly": true},
                        "name": {"type": "string", "nullable": true, "description": "The name. Long story."},
                        "size": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                        "kind": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                        "child": {"$ref": "#/components/schemas/node"}
                    },
                    "required": ["id", "name"]}
            }),
        );
        let mut converter = Converter::new(&spec);
        let node = converter
            .convert(&json!({"$ref": "#/components/schemas/node"}))
            .unwrap();
        assert_eq!(
            node,
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": ["string", "null"], "description": "The name."},
                "size": {"type": "number", "exclusiveMinimum": 0},
                "kind": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "child": {"description": "Recursive: node, as above."}
            }})
        );
        assert!(
            converter
                .notes
                .iter()
                .any(|n| n.contains("recursive schema #/components/schemas/node"))
        );
        let missing = converter.convert(&json!({"$ref": "#/components/schemas/none"}));
        assert_eq!(
            missing,
            Err(RefError::Dangling("#/components/schemas/none".into()))
        );
    }
}
