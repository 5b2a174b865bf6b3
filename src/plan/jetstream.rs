//! The JetStream part of the plan: a field-level diff of each object the topology names against
//! the live one, comparing only the fields the topology sets.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

use crate::desired::jetstream::replace_reason;
use crate::desired::{JsObject, ObjectKind};
use crate::model::AccountName;
use crate::observed::jetstream::LiveObject;

/// Terraform's actions: `+` create, `~` update in place, `-/+` replace, `-` delete; unmanaged
/// objects are listed and left alone unless pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsAction {
    Create,
    Update,
    Replace,
    Delete,
    Unmanaged,
}

impl JsAction {
    pub fn symbol(self) -> &'static str {
        match self {
            JsAction::Create => "+",
            JsAction::Update => "~",
            JsAction::Replace => "-/+",
            JsAction::Delete => "-",
            JsAction::Unmanaged => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
    /// Set when the server cannot make this change in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsChange {
    pub action: JsAction,
    pub kind: ObjectKind,
    pub account: AccountName,
    pub name: String,
    pub stream: String,
    /// The leafnode domain it lives in (`None`: the regions' JetStream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_domain: Option<String>,
    pub fields: Vec<FieldChange>,
    /// The config to send: the desired one, merged over the live one for updates so that the
    /// server's own settings are kept.
    #[serde(skip)]
    pub config: Map<String, Value>,
}

impl JsChange {
    pub fn label(&self) -> String {
        crate::desired::object_label(self.kind, &self.account, &self.stream, &self.name)
    }

    pub fn is_stream_like(&self) -> bool {
        self.kind != ObjectKind::Consumer
    }
}

/// What the live JetStream state is, as far as plan could read it.
#[derive(Debug, Clone)]
pub enum LiveState {
    Read(Vec<LiveObject>),
    /// The servers are not running (yet): every object is to be created.
    NotRunning,
}

/// The value the server reports for a field it omits: JSON `omitempty` drops false, zero and
/// empty values.
fn absent_default(desired: &Value) -> Value {
    match desired {
        Value::Bool(_) => Value::Bool(false),
        Value::Number(_) => Value::from(0),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::String(_) => Value::String(String::new()),
        _ => Value::Null,
    }
}

/// Equal as the server means it: numbers by value, objects on the keys the desired side sets.
fn same(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| same(v, b.get(k).unwrap_or(&absent_default(v)))),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        _ => desired == live,
    }
}

fn field_changes(o: &JsObject, live: &Map<String, Value>) -> Vec<FieldChange> {
    o.config
        .iter()
        .filter(|(field, _)| live.contains_key(*field) || !o.server_defaults.contains(field))
        .filter_map(|(field, to)| {
            let from = live.get(field).cloned().unwrap_or_else(|| absent_default(to));
            (!same(to, &from)).then(|| FieldChange {
                field: field.clone(),
                replace_reason: replace_reason(o.kind, field, &from, to).map(str::to_string),
                from,
                to: to.clone(),
            })
        })
        .collect()
}

/// Identifies an object within the managed accounts: (account, stream, consumer name).
type ObjectKey<'a> = (&'a AccountName, &'a str, Option<&'a str>);

fn key<'a>(kind: ObjectKind, account: &'a AccountName, stream: &'a str, name: &'a str) -> ObjectKey<'a> {
    (account, stream, (kind == ObjectKind::Consumer).then_some(name))
}

/// Diffs the desired objects against the live ones. `prune` turns unmanaged objects in the
/// managed accounts into deletions. Indexed lookups keep plans of thousands of objects linear.
pub fn changes(desired: &[JsObject], live: &LiveState, prune: bool) -> Vec<JsChange> {
    let live: &[LiveObject] = match live {
        LiveState::Read(l) => l,
        LiveState::NotRunning => &[],
    };
    let live_by_key: HashMap<ObjectKey, &LiveObject> = live.iter().map(|l| (key(l.kind, &l.account, &l.stream, &l.name), l)).collect();
    let desired_keys: HashSet<ObjectKey> = desired.iter().map(|o| key(o.kind, &o.account, &o.stream, &o.name)).collect();
    let change = |o: &JsObject, action, fields, config| JsChange {
        action,
        kind: o.kind,
        account: o.account.clone(),
        name: o.name.clone(),
        stream: o.stream.clone(),
        leaf_domain: o.leaf_domain.clone(),
        fields,
        config,
    };
    let mut out = Vec::new();
    for o in desired {
        // A stream and a bucket may share the server-side name only if kinds agree.
        match live_by_key
            .get(&key(o.kind, &o.account, &o.stream, &o.name))
            .filter(|l| l.kind == o.kind)
        {
            None => out.push(change(o, JsAction::Create, Vec::new(), o.config.clone())),
            Some(l) => {
                let fields = field_changes(o, &l.config);
                if fields.is_empty() {
                    continue;
                }
                if fields.iter().any(|f| f.replace_reason.is_some()) {
                    out.push(change(o, JsAction::Replace, fields, o.config.clone()));
                } else {
                    let mut merged = l.config.clone();
                    merged.extend(o.config.clone());
                    out.push(change(o, JsAction::Update, fields, merged));
                }
            }
        }
    }
    // Replacing a stream deletes its consumers: create the topology's again.
    let replaced: HashSet<(&AccountName, &str)> = out
        .iter()
        .filter(|c| c.action == JsAction::Replace && c.is_stream_like())
        .map(|c| (&c.account, c.stream.as_str()))
        .collect();
    let planned: HashSet<(&AccountName, &str, &str)> = out
        .iter()
        .filter(|c| !c.is_stream_like())
        .map(|c| (&c.account, c.stream.as_str(), c.name.as_str()))
        .collect();
    let recreated: Vec<JsChange> = desired
        .iter()
        .filter(|o| o.kind == ObjectKind::Consumer && replaced.contains(&(&o.account, o.stream.as_str())))
        .filter(|o| !planned.contains(&(&o.account, o.stream.as_str(), o.name.as_str())))
        .map(|o| change(o, JsAction::Create, Vec::new(), o.config.clone()))
        .collect();
    out.extend(recreated);
    for l in live {
        let named = desired_keys.contains(&key(l.kind, &l.account, &l.stream, &l.name));
        // Consumers of a stream that is itself unmanaged go with it.
        let stream_unmanaged = l.kind == ObjectKind::Consumer && !desired_keys.contains(&(&l.account, l.stream.as_str(), None));
        if named || stream_unmanaged {
            continue;
        }
        out.push(JsChange {
            action: if prune { JsAction::Delete } else { JsAction::Unmanaged },
            kind: l.kind,
            account: l.account.clone(),
            name: l.name.clone(),
            stream: l.stream.clone(),
            leaf_domain: l.leaf_domain.clone(),
            fields: Vec::new(),
            config: Map::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: ObjectKind, config: Value) -> JsObject {
        JsObject {
            kind,
            account: None,
            name: "S".into(),
            stream: "S".into(),
            config: config.as_object().unwrap().clone(),
            region: None,
            replicas: 1,
            leaf_domain: None,
            server_defaults: Vec::new(),
        }
    }

    fn live(kind: ObjectKind, config: Value) -> LiveState {
        LiveState::Read(vec![LiveObject {
            kind,
            account: None,
            name: "S".into(),
            stream: "S".into(),
            config: config.as_object().unwrap().clone(),
            cluster: Value::Null,
            leaf_domain: None,
            progress: None,
        }])
    }

    #[test]
    fn server_defaults_and_omitted_false_values_are_not_changes() {
        let want = object(
            ObjectKind::Stream,
            json!({"name": "S", "subjects": ["s.>"], "deny_delete": false, "num_replicas": 1}),
        );
        let have = live(
            ObjectKind::Stream,
            json!({"name": "S", "subjects": ["s.>"], "num_replicas": 1, "duplicate_window": 120000000000u64, "metadata": {"a": "b"}}),
        );
        assert!(changes(&[want], &have, false).is_empty());
    }

    #[test]
    fn a_changed_field_is_an_update_and_keeps_the_servers_settings() {
        let want = object(ObjectKind::Stream, json!({"name": "S", "max_age": 2}));
        let have = live(ObjectKind::Stream, json!({"name": "S", "max_age": 1, "duplicate_window": 5}));
        let c = changes(&[want], &have, false);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].action, JsAction::Update);
        assert_eq!(c[0].fields[0].field, "max_age");
        assert_eq!(c[0].config["duplicate_window"], 5, "server setting kept in the update");
        assert_eq!(c[0].config["max_age"], 2);
    }

    #[test]
    fn a_storage_change_is_a_replacement_with_its_reason() {
        let want = object(ObjectKind::Stream, json!({"name": "S", "storage": "memory"}));
        let have = live(ObjectKind::Stream, json!({"name": "S", "storage": "file"}));
        let c = changes(&[want], &have, false);
        assert_eq!(c[0].action, JsAction::Replace);
        assert!(c[0].fields[0].replace_reason.as_deref().unwrap().contains("storage"));
    }

    #[test]
    fn unnamed_objects_are_unmanaged_unless_pruned() {
        let have = live(ObjectKind::Stream, json!({"name": "S"}));
        assert_eq!(changes(&[], &have, false)[0].action, JsAction::Unmanaged);
        assert_eq!(changes(&[], &have, true)[0].action, JsAction::Delete);
        let missing = changes(&[object(ObjectKind::Stream, json!({"name": "S"}))], &LiveState::NotRunning, false);
        assert_eq!(missing[0].action, JsAction::Create);
    }
}
