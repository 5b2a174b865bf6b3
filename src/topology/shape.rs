//! Every problem of a file's shape at once. The typed reading stops at the first field the file
//! cannot have or value of the wrong type; when it does, the file is read again as a plain YAML
//! tree with the place of every key and value, and walked against the topology's JSON Schema
//! (the one `schema` prints, generated from the typed reading's own types), so that each unknown
//! key, wrong type, value outside its choices and missing key is named where it is.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::fmt;

use super::diagnostic::{Diagnostic, did_you_mean};
use crate::model::Loc;

/// A YAML value with the place of each of its parts.
#[derive(Debug)]
enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Str(String),
    Int,
    Float,
    Bool,
    Null,
}

impl Node {
    fn type_name(&self) -> &'static str {
        match self {
            Node::Map(_) => "a map",
            Node::Seq(_) => "a list",
            Node::Str(_) => "a string",
            Node::Int => "an integer",
            Node::Float => "a number",
            Node::Bool => "true or false",
            Node::Null => "nothing",
        }
    }

    /// Whether it is of JSON Schema type `t`.
    fn is(&self, t: &str) -> bool {
        matches!(
            (self, t),
            (Node::Map(_), "object")
                | (Node::Seq(_), "array")
                | (Node::Str(_), "string")
                | (Node::Int, "integer" | "number")
                | (Node::Float, "number")
                | (Node::Bool, "boolean")
                | (Node::Null, "null")
        )
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Bool)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Int)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Int)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Float)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Spanned<Node>>()?));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

fn loc<T>(s: &Spanned<T>) -> Loc {
    Loc {
        line: s.referenced.line() as u32,
        col: s.referenced.column() as u32,
    }
}

struct Walk<'a> {
    root: &'a Value,
    found: Vec<Diagnostic>,
}

/// `schema` with its `$ref` (into `root`'s `$defs`) followed.
fn resolve<'s>(root: &'s Value, schema: &'s Value) -> &'s Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => root["$defs"].get(name).unwrap_or(schema),
        None => schema,
    }
}

impl<'a> Walk<'a> {
    /// Checks `node` (at `path`) against `schema`.
    fn check(&mut self, schema: &'a Value, node: &Spanned<Node>, path: &str) {
        let schema = resolve(self.root, schema);
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            return self.any_of(branches, node, path);
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| node.value.is(t)) {
                let wanted: Vec<&str> = allowed.iter().map(|t| json_type_words(t)).collect();
                self.found.push(
                    Diagnostic::error(format!(
                        "`{path}` is {}, where {} belongs",
                        node.value.type_name(),
                        wanted.join(" or ")
                    ))
                    .at(loc(node)),
                );
                return;
            }
        }
        if let (Some(choices), Node::Str(text)) = (schema.get("enum").and_then(Value::as_array), &node.value)
            && !choices.iter().any(|c| c.as_str() == Some(text.as_str()))
        {
            let words: Vec<&str> = choices.iter().filter_map(Value::as_str).collect();
            let mut d = Diagnostic::error(format!("`{path}` is `{text}`, expected one of {}", words.join(", "))).at(loc(node));
            if let Some(near) = did_you_mean(text, words.iter().copied()) {
                d = d.help(format!("did you mean `{near}`?"));
            }
            self.found.push(d);
        }
        match &node.value {
            Node::Map(entries) => self.map(schema, entries, node, path),
            Node::Seq(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, it) in items.iter().enumerate() {
                        self.check(item, it, &format!("{path}[{i}]"));
                    }
                }
            }
            _ => {}
        }
    }

    fn map(&mut self, schema: &'a Value, entries: &[(Spanned<String>, Spanned<Node>)], node: &Spanned<Node>, path: &str) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in entries {
            let at = if path.is_empty() {
                key.value.clone()
            } else {
                format!("{path}.{}", key.value)
            };
            match properties.and_then(|p| p.get(&key.value)) {
                Some(property) => self.check(property, value, &at),
                None => match additional {
                    Some(Value::Bool(false)) => {
                        let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        let mut d = Diagnostic::error(format!(
                            "unknown field `{}`{}, expected one of {}",
                            key.value,
                            if path.is_empty() { String::new() } else { format!(" in `{path}`") },
                            known.join(", ")
                        ))
                        .at(loc(key));
                        if let Some(near) = did_you_mean(&key.value, known.iter().copied()) {
                            d = d.help(format!("did you mean `{near}`?"));
                        }
                        self.found.push(d);
                    }
                    Some(value_schema @ Value::Object(_)) => self.check(value_schema, value, &at),
                    _ => {}
                },
            }
        }
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !entries.iter().any(|(k, _)| k.value == required) {
                let whose = if path.is_empty() {
                    "the topology".to_string()
                } else {
                    format!("`{path}`")
                };
                self.found
                    .push(Diagnostic::error(format!("{whose} has no `{required}`, which it needs")).at(loc(node)));
            }
        }
    }

    /// The node must match one branch: a short form or a long one. When none matches, the
    /// branch of the node's own kind (a map for a map) says what is wrong inside it.
    fn any_of(&mut self, branches: &'a [Value], node: &Spanned<Node>, path: &str) {
        let mut closest = None;
        for branch in branches {
            let mut trial = Walk {
                root: self.root,
                found: Vec::new(),
            };
            trial.check(branch, node, path);
            if trial.found.is_empty() {
                return;
            }
            let same_kind = resolve(self.root, branch).get("type").is_some_and(|t| match t {
                Value::String(t) => node.value.is(t),
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| node.value.is(t)),
                _ => false,
            });
            if same_kind || closest.is_none() {
                closest = Some(trial.found);
            }
        }
        self.found.extend(closest.unwrap_or_default());
    }
}

fn json_type_words(t: &str) -> &'static str {
    match t {
        "object" => "a map",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        _ => "nothing",
    }
}

/// Every problem of `text`'s shape against the topology's schema, in file order; empty when the
/// text is not YAML at all (the typed reading's error says where).
pub(super) fn problems(text: &str) -> Vec<Diagnostic> {
    let Ok(node) = serde_saphyr::from_str::<Spanned<Node>>(text) else {
        return Vec::new();
    };
    let schema = super::schema::json_schema();
    let mut walk = Walk {
        root: &schema,
        found: Vec::new(),
    };
    walk.check(&schema, &node, "");
    walk.found.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)));
    walk.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_misspelt_key_and_wrong_type_is_named_where_it_is() {
        let found = problems(
            "name: x\nregions:\n  main:\n    nodez: 3\n    jetstrem: true\nstreams:\n  S:\n    subjectz: [a]\n    replicas: three\n",
        );
        let said: Vec<(String, u32)> = found
            .iter()
            .map(|d| (d.message.clone(), d.loc.map(|l| l.line).unwrap_or(0)))
            .collect();
        assert_eq!(said.len(), 5, "{said:#?}");
        assert!(said[0].0.starts_with("unknown field `nodez` in `regions.main`"), "{said:#?}");
        assert_eq!(said[0].1, 4);
        assert!(
            said.iter().any(|(m, l)| m.starts_with("unknown field `jetstrem`") && *l == 5),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|(m, _)| m == "`regions.main` has no `nodes`, which it needs"),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|(m, l)| m.starts_with("unknown field `subjectz`") && *l == 8),
            "{said:#?}"
        );
        assert!(
            said.iter()
                .any(|(m, l)| m == "`streams.S.replicas` is a string, where an integer or nothing belongs" && *l == 9),
            "{said:#?}"
        );
    }

    #[test]
    fn a_valid_topology_has_no_problem_of_shape() {
        for text in [
            include_str!("../../topologies/dev.yaml"),
            include_str!("../../topologies/notif-hybrid.yaml"),
        ] {
            assert!(problems(text).is_empty(), "{:?}", problems(text));
        }
    }
}
