//! The JetStream objects as the JetStream API takes them: one JSON config per stream, consumer,
//! KV bucket and object store, holding only what the topology decides. Fields the server fills
//! in (metadata, defaults the topology leaves open) are absent, so a diff against the live
//! config compares exactly what the topology sets.

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

use crate::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Stream,
    Kv,
    ObjectStore,
    Consumer,
}

impl ObjectKind {
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::Stream => "stream",
            ObjectKind::Kv => "kv",
            ObjectKind::ObjectStore => "object_store",
            ObjectKind::Consumer => "consumer",
        }
    }

    /// What deleting and recreating an object of this kind loses.
    pub fn replacement_loss(self) -> &'static str {
        match self {
            ObjectKind::Consumer => "the consumer's position and pending acknowledgements",
            ObjectKind::Kv => "the bucket's values",
            ObjectKind::ObjectStore => "the store's objects",
            ObjectKind::Stream => "the stream's messages",
        }
    }
}

/// One object to hold on the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsObject {
    pub kind: ObjectKind,
    pub account: AccountName,
    /// The object's own name (bucket name for KV and object stores).
    pub name: String,
    /// The stream that holds it: itself, `KV_<bucket>`, `OBJ_<bucket>`, or a consumer's stream.
    pub stream: String,
    pub config: Map<String, Value>,
    /// The region its replicas must be in, when placed.
    pub region: Option<String>,
    pub replicas: u8,
    /// The JetStream domain of the leafnode that holds it; `None`: the regions' JetStream.
    pub leaf_domain: Option<String>,
    /// Fields of `config` the topology leaves open, set to the value nats-server gives them at
    /// creation: someone changing them by hand is drift too. A server that does not report such
    /// a field (an older version) does not have it, so its absence is no drift.
    pub server_defaults: Vec<String>,
}

impl JsObject {
    pub fn label(&self) -> String {
        object_label(self.kind, &self.account, &self.stream, &self.name)
    }
}

/// `stream EVENTS`, `consumer EVENTS/processor`, `kv config`, with the account when there is one.
pub fn object_label(kind: ObjectKind, account: &AccountName, stream: &str, name: &str) -> String {
    let name = match kind {
        ObjectKind::Consumer => format!("{stream}/{name}"),
        _ => name.to_string(),
    };
    match account {
        Some(a) => format!("{} {name} (account {a})", kind.label()),
        None => format!("{} {name}", kind.label()),
    }
}

fn nanos(d: Duration) -> Value {
    json!(d.as_nanos() as u64)
}

fn store_fields(m: &mut Map<String, Value>, s: &StoreSettings) {
    m.insert("storage".into(), json!(s.storage));
    m.insert("num_replicas".into(), json!(s.replicas));
    if let Some(b) = s.max_bytes {
        m.insert("max_bytes".into(), json!(b));
    }
    if let Some(a) = s.max_age {
        m.insert("max_age".into(), nanos(a));
    }
    if let Some(p) = &s.placement {
        let mut placement = Map::new();
        if let Some(r) = &p.region {
            placement.insert("cluster".into(), json!(r));
        }
        if !p.tags.is_empty() {
            placement.insert("tags".into(), json!(p.tags));
        }
        m.insert("placement".into(), Value::Object(placement));
    }
}

/// A mirror or source; one in another JetStream domain is reached through that domain's API.
fn source(t: &Topology, into: &Stream, s: &StreamSource) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name));
    if let Some(f) = &s.filter_subject {
        m.insert("filter_subject".into(), json!(f));
    }
    if let Some(origin) = t.jetstream.streams.iter().find(|o| o.name == s.name)
        && origin.leafnode != into.leafnode
        && let Some(domain) = t.stream_domain(origin)
    {
        m.insert("external".into(), json!({"api": format!("$JS.{domain}.API"), "deliver": ""}));
    }
    Value::Object(m)
}

/// The domain of the leafnode that holds `stream`, if a leafnode does.
fn leaf_domain(t: &Topology, stream: &Stream) -> Option<String> {
    stream.leafnode.as_ref().and_then(|_| t.stream_domain(stream))
}

fn stream(t: &Topology, s: &Stream) -> JsObject {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name));
    if !s.subjects.is_empty() {
        m.insert("subjects".into(), json!(s.subjects));
    }
    m.insert("retention".into(), json!(s.retention));
    m.insert("discard".into(), json!(s.discard));
    store_fields(&mut m, &s.store);
    let optional = [
        ("max_msgs", s.max_msgs.map(|v| json!(v))),
        ("max_msgs_per_subject", s.max_msgs_per_subject.map(|v| json!(v))),
        ("max_msg_size", s.max_msg_size.map(|v| json!(v))),
        ("duplicate_window", s.duplicate_window.map(nanos)),
        ("mirror", s.mirror.as_ref().map(|m| source(t, s, m))),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    if !s.sources.is_empty() {
        m.insert("sources".into(), Value::Array(s.sources.iter().map(|o| source(t, s, o)).collect()));
    }
    m.insert("deny_delete".into(), json!(s.deny_delete));
    m.insert("deny_purge".into(), json!(s.deny_purge));
    // nats-server turns rollups on for schedules and delete markers, which rely on them.
    let rollup = s.allow_rollup || s.features.allow_msg_schedules == Some(true) || s.features.subject_delete_marker_ttl.is_some();
    m.insert("allow_rollup_hdrs".into(), json!(rollup));
    // Sent only when written: a server before 2.11 refuses fields it does not know.
    let f = &s.features;
    let features = [
        ("allow_msg_ttl", f.allow_msg_ttl.map(|v| json!(v))),
        ("subject_delete_marker_ttl", f.subject_delete_marker_ttl.map(nanos)),
        ("allow_atomic", f.allow_atomic.map(|v| json!(v))),
        ("allow_msg_counter", f.allow_msg_counter.map(|v| json!(v))),
        ("allow_msg_schedules", f.allow_msg_schedules.map(|v| json!(v))),
        ("allow_batched", f.allow_batched.map(|v| json!(v))),
        ("persist_mode", f.persist_mode.map(|v| json!(v))),
    ];
    for (k, v) in features {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    JsObject {
        kind: ObjectKind::Stream,
        account: s.account.clone(),
        name: s.name.clone(),
        stream: s.name.clone(),
        config: m,
        region: s.store.placement.as_ref().and_then(|p| p.region.clone()),
        replicas: s.store.replicas,
        leaf_domain: leaf_domain(t, s),
        server_defaults: Vec::new(),
    }
}

/// A KV bucket's stream, configured as the NATS clients (nats.go, async-nats) create it.
fn kv(k: &KeyValue) -> JsObject {
    let name = kv_stream_name(&k.bucket);
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("subjects".into(), json!([format!("$KV.{}.>", k.bucket)]));
    m.insert("max_msgs_per_subject".into(), json!(k.history));
    m.insert("discard".into(), json!(Discard::New));
    m.insert("allow_rollup_hdrs".into(), json!(true));
    m.insert("deny_delete".into(), json!(true));
    m.insert("allow_direct".into(), json!(true));
    store_fields(&mut m, &k.store);
    if let Some(v) = k.max_value_size {
        m.insert("max_msg_size".into(), json!(v));
    }
    // The clients shorten the duplicate window to a TTL under two minutes; so do we.
    if let Some(ttl) = k.store.max_age.filter(|t| *t < Duration::from_secs(120)) {
        m.insert("duplicate_window".into(), nanos(ttl));
    }
    JsObject {
        kind: ObjectKind::Kv,
        account: k.account.clone(),
        name: k.bucket.clone(),
        stream: name,
        config: m,
        region: k.store.placement.as_ref().and_then(|p| p.region.clone()),
        replicas: k.store.replicas,
        leaf_domain: None,
        server_defaults: Vec::new(),
    }
}

fn object_store(o: &ObjectStore) -> JsObject {
    let name = object_stream_name(&o.bucket);
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert(
        "subjects".into(),
        json!([format!("$O.{}.C.>", o.bucket), format!("$O.{}.M.>", o.bucket)]),
    );
    m.insert("discard".into(), json!(Discard::New));
    m.insert("allow_rollup_hdrs".into(), json!(true));
    m.insert("allow_direct".into(), json!(true));
    store_fields(&mut m, &o.store);
    JsObject {
        kind: ObjectKind::ObjectStore,
        account: o.account.clone(),
        name: o.bucket.clone(),
        stream: name,
        config: m,
        region: o.store.placement.as_ref().and_then(|p| p.region.clone()),
        replicas: o.store.replicas,
        leaf_domain: None,
        server_defaults: Vec::new(),
    }
}

fn consumer(c: &Consumer, leaf_domain: Option<String>) -> JsObject {
    let mut m = Map::new();
    m.insert("durable_name".into(), json!(c.name));
    m.insert("ack_policy".into(), json!(c.ack_policy));
    m.insert("deliver_policy".into(), json!(c.deliver_policy));
    m.insert("replay_policy".into(), json!(c.replay_policy));
    match c.filter_subjects.as_slice() {
        [] => {}
        [one] => {
            m.insert("filter_subject".into(), json!(one));
        }
        many => {
            m.insert("filter_subjects".into(), json!(many));
        }
    }
    let optional = [
        ("deliver_subject", c.deliver_subject.as_ref().map(|v| json!(v))),
        ("deliver_group", c.deliver_group.as_ref().map(|v| json!(v))),
        ("ack_wait", c.ack_wait.map(nanos)),
        ("max_deliver", c.max_deliver.map(|v| json!(v))),
        ("opt_start_time", c.opt_start_time.as_ref().map(|v| json!(v))),
        ("opt_start_seq", c.opt_start_seq.map(|v| json!(v))),
        ("max_ack_pending", c.max_ack_pending.map(|v| json!(v))),
        ("max_waiting", c.max_waiting.map(|v| json!(v))),
        ("rate_limit_bps", c.rate_limit_bps.map(|v| json!(v))),
        ("idle_heartbeat", c.idle_heartbeat.map(nanos)),
        ("priority_policy", c.priority_policy.map(|v| json!(v))),
        ("priority_timeout", c.priority_timeout.map(nanos)),
        ("pause_until", c.pause_until.as_ref().map(|v| json!(v))),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    if !c.backoff.is_empty() {
        m.insert("backoff".into(), Value::Array(c.backoff.iter().copied().map(nanos).collect()));
    }
    if c.flow_control {
        m.insert("flow_control".into(), json!(true));
    }
    if !c.priority_groups.is_empty() {
        m.insert("priority_groups".into(), json!(c.priority_groups));
    }
    JsObject {
        kind: ObjectKind::Consumer,
        account: c.account.clone(),
        name: c.name.clone(),
        stream: c.stream.clone(),
        config: m,
        region: None,
        replicas: 0,
        leaf_domain,
        server_defaults: Vec::new(),
    }
}

/// Every object, streams (and buckets) before the consumers that need them, each with the
/// server's defaults for the fields the topology leaves open.
pub fn objects(t: &Topology) -> Vec<JsObject> {
    let o = &t.jetstream;
    // A consumer lives where its stream does: looked up once per stream, not per consumer.
    let domains: std::collections::HashMap<(&AccountName, &str), Option<String>> = o
        .streams
        .iter()
        .map(|s| ((&s.account, s.name.as_str()), leaf_domain(t, s)))
        .collect();
    o.streams
        .iter()
        .map(|s| stream(t, s))
        .chain(o.kv.iter().map(kv))
        .chain(o.object_stores.iter().map(object_store))
        .chain(o.consumers.iter().map(|c| {
            let domain = domains.get(&(&c.account, c.stream.as_str())).cloned().flatten();
            consumer(c, domain)
        }))
        .map(with_server_defaults)
        .collect()
}

const TWO_MINUTES: u64 = 120_000_000_000;

/// What nats-server 2.15 sets a field the create request leaves out to, as it reports it back
/// (measured): a stream's limits are unlimited (-1), its duplicate window two minutes or its
/// max age when shorter; a consumer waits 30 s (or its first backoff step) for an ack, allows
/// 1000 pending, and a pull consumer 512 waiting pulls.
fn with_server_defaults(mut o: JsObject) -> JsObject {
    let c = &o.config;
    let mut defaults: Vec<(&str, Value)> = Vec::new();
    if o.kind == ObjectKind::Consumer {
        let acks = c.get("ack_policy").and_then(Value::as_str) != Some("none");
        let pull = !c.contains_key("deliver_subject");
        let filtered = c.contains_key("filter_subject") || c.contains_key("filter_subjects");
        defaults.extend([
            ("max_deliver", json!(-1)),
            ("num_replicas", json!(0)),
            ("flow_control", json!(false)),
            ("headers_only", json!(false)),
            ("mem_storage", json!(false)),
        ]);
        if acks {
            // With a backoff the server waits its first step for the first ack.
            let ack_wait = c.get("backoff").and_then(|b| b.get(0)).cloned().unwrap_or(json!(30_000_000_000u64));
            defaults.extend([("ack_wait", ack_wait), ("max_ack_pending", json!(1000))]);
        }
        if pull {
            defaults.push(("max_waiting", json!(512)));
        }
        if !filtered {
            defaults.push(("filter_subject", json!("")));
        }
    } else {
        let max_age = c.get("max_age").and_then(Value::as_u64).unwrap_or(0);
        defaults.extend([
            ("retention", json!("limits")),
            ("discard", json!("old")),
            ("storage", json!("file")),
            ("num_replicas", json!(1)),
            ("max_age", json!(0)),
            ("max_bytes", json!(-1)),
            ("max_consumers", json!(-1)),
            ("max_msg_size", json!(-1)),
            ("max_msgs", json!(-1)),
            ("max_msgs_per_subject", json!(-1)),
            ("sealed", json!(false)),
            ("deny_delete", json!(false)),
            ("deny_purge", json!(false)),
            ("allow_rollup_hdrs", json!(false)),
            ("allow_direct", json!(false)),
            ("mirror_direct", json!(false)),
            ("allow_msg_ttl", json!(false)),
            ("compression", json!("none")),
        ]);
        if !c.contains_key("mirror") {
            let window = if max_age > 0 && max_age < TWO_MINUTES {
                max_age
            } else {
                TWO_MINUTES
            };
            defaults.push(("duplicate_window", json!(window)));
        }
    }
    for (field, value) in defaults {
        if !o.config.contains_key(field) {
            o.config.insert(field.to_string(), value);
            o.server_defaults.push(field.to_string());
        }
    }
    o
}

/// Why a change to `field` cannot be made in place, when nats-server refuses to update it.
pub fn replace_reason(kind: ObjectKind, field: &str, from: &Value, to: &Value) -> Option<&'static str> {
    let workqueue = |v: &Value| v == "workqueue";
    match (kind, field) {
        (ObjectKind::Consumer, "ack_policy") => Some("nats-server cannot change a consumer's ack policy"),
        (ObjectKind::Consumer, "deliver_policy" | "opt_start_time" | "opt_start_seq") => {
            Some("nats-server cannot change where a consumer starts delivering")
        }
        (ObjectKind::Consumer, "replay_policy") => Some("nats-server cannot change a consumer's replay policy"),
        (ObjectKind::Consumer, "max_waiting") => Some("nats-server cannot change a pull consumer's max_waiting"),
        (ObjectKind::Consumer, "deliver_subject") if from.is_null() || to.is_null() => {
            Some("nats-server cannot turn a pull consumer into a push one or back")
        }
        (ObjectKind::Consumer, _) => None,
        (_, "storage") => Some("nats-server cannot change a stream's storage type"),
        (_, "retention") if workqueue(from) || workqueue(to) => Some("nats-server cannot change retention to or from workqueue"),
        (_, "deny_delete" | "deny_purge") if from == &Value::Bool(true) => Some("nats-server cannot lift deny_delete or deny_purge"),
        (_, "mirror") => Some("nats-server cannot change what a stream mirrors"),
        (_, "allow_msg_ttl" | "allow_msg_schedules") if from == &Value::Bool(true) => {
            Some("nats-server cannot turn off message TTLs or schedules once on")
        }
        (_, "allow_msg_counter") => Some("nats-server fixes whether a stream is a counter when it is created"),
        (_, "persist_mode") => Some("nats-server fixes a stream's persist mode when it is created"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Source, parse};

    fn objects_of(yaml: &str) -> Vec<JsObject> {
        let loaded = parse(Source {
            path: "t.yaml".into(),
            text: format!("name: t\nregions:\n  main:\n    nodes: 3\n    jetstream: true\n{yaml}"),
        })
        .expect("valid");
        objects(&loaded.topology)
    }

    #[test]
    fn stream_config_holds_what_the_topology_sets_in_api_units() {
        let o = objects_of("streams:\n  EVENTS:\n    subjects: [\"events.>\"]\n    replicas: 3\n    max_age: 7d\n    max_bytes: 1GB\n");
        let c = &o[0].config;
        assert_eq!(c["name"], "EVENTS");
        assert_eq!(c["subjects"], json!(["events.>"]));
        assert_eq!(c["num_replicas"], 3);
        assert_eq!(c["max_age"], 7 * 86_400 * 1_000_000_000u64);
        assert_eq!(c["max_bytes"], 1u64 << 30);
        assert_eq!(c["storage"], "file");
        // Left open by the topology: expected at the server's defaults, and marked as such.
        assert_eq!(c["duplicate_window"], 120_000_000_000u64);
        assert_eq!(c["max_msgs"], -1);
        assert!(o[0].server_defaults.contains(&"max_msgs".to_string()));
        assert!(!o[0].server_defaults.contains(&"max_bytes".to_string()));
    }

    #[test]
    fn consumers_expect_the_servers_defaults_by_kind() {
        let o = objects_of(concat!(
            "streams:\n  S:\n    subjects: [s.>]\n",
            "consumers:\n  - durable: pull\n    stream: S\n  - durable: push\n    stream: S\n    deliver_subject: out\n    ack_policy: none\n",
        ));
        let pull = &o[1].config;
        assert_eq!(
            (&pull["ack_wait"], &pull["max_ack_pending"], &pull["max_waiting"]),
            (&json!(30_000_000_000u64), &json!(1000), &json!(512))
        );
        let push = &o[2].config;
        assert!(
            !push.contains_key("max_waiting") && !push.contains_key("ack_wait") && !push.contains_key("max_ack_pending"),
            "{push:?}"
        );
        assert_eq!(push["max_deliver"], -1);
    }

    #[test]
    fn kv_and_consumers_map_to_their_streams() {
        let o = objects_of(concat!(
            "streams:\n  S:\n    subjects: [s.>]\n",
            "consumers:\n  - durable: c\n    stream: S\n    filter_subjects: [s.a, s.b]\n    backoff: [1s]\n    max_deliver: 3\n",
            "kv:\n  cfg:\n    history: 5\n    ttl: 30s\n",
        ));
        let kv = o.iter().find(|x| x.kind == ObjectKind::Kv).unwrap();
        assert_eq!(kv.stream, "KV_cfg");
        assert_eq!(kv.config["subjects"], json!(["$KV.cfg.>"]));
        assert_eq!(kv.config["max_msgs_per_subject"], 5);
        assert_eq!(kv.config["duplicate_window"], 30_000_000_000u64);
        let c = o.last().unwrap();
        assert_eq!(c.kind, ObjectKind::Consumer);
        assert_eq!(c.config["filter_subjects"], json!(["s.a", "s.b"]));
        assert_eq!(c.config["backoff"], json!([1_000_000_000u64]));
    }

    #[test]
    fn only_changes_the_server_refuses_need_a_replacement() {
        let (f, t) = (json!("limits"), json!("workqueue"));
        assert!(replace_reason(ObjectKind::Stream, "retention", &f, &t).is_some());
        assert!(replace_reason(ObjectKind::Stream, "retention", &f, &json!("interest")).is_none());
        assert!(replace_reason(ObjectKind::Stream, "max_age", &json!(1), &json!(2)).is_none());
        assert!(replace_reason(ObjectKind::Consumer, "ack_policy", &json!("explicit"), &json!("none")).is_some());
        assert!(replace_reason(ObjectKind::Consumer, "filter_subject", &json!("a"), &json!("b")).is_none());
    }
}
