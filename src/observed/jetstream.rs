//! The JetStream objects that exist on the live servers, per managed account. Read from every
//! JetStream server's `/jsz` (one request per server, whatever the number of objects), each
//! stream as its leader reports it; the JetStream API is the fallback when a server does not
//! answer.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::desired::{Desired, GLOBAL_ACCOUNT, ObjectKind};
use crate::jsapi::{ApiError, JsApi};
use crate::material::Keys;
use crate::model::AccountName;
use crate::observed::Monitor;

/// An object as the server reports it: its full config, defaults included.
#[derive(Debug, Clone)]
pub struct LiveObject {
    pub kind: ObjectKind,
    pub account: AccountName,
    pub name: String,
    pub stream: String,
    pub config: Map<String, Value>,
    /// A stream's `cluster` (name, leader, replicas) as its leader sees it; null for consumers.
    pub cluster: Value,
    /// The domain of the leafnode it was read from; `None`: the regions' JetStream.
    pub leaf_domain: Option<String>,
    /// A consumer's progress; `None` for streams.
    pub progress: Option<ConsumerProgress>,
}

/// Where a consumer stands, as its leader reports it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ConsumerProgress {
    #[serde(default)]
    pub num_pending: u64,
    #[serde(default)]
    pub num_ack_pending: u64,
    #[serde(default)]
    pub num_redelivered: u64,
    #[serde(default)]
    pub delivered: Delivered,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Delivered {
    /// When it last delivered a message (RFC 3339); absent when it never did.
    pub last_active: Option<String>,
}

/// The kind and object name of a server-side stream: KV buckets and object stores are held in
/// streams with a prefix.
fn classify(stream: &str) -> (ObjectKind, String) {
    if let Some(bucket) = stream.strip_prefix("KV_") {
        (ObjectKind::Kv, bucket.to_string())
    } else if let Some(bucket) = stream.strip_prefix("OBJ_") {
        (ObjectKind::ObjectStore, bucket.to_string())
    } else {
        (ObjectKind::Stream, stream.to_string())
    }
}

/// Connections to the JetStream API, one per managed account.
pub struct Connections(pub BTreeMap<AccountName, JsApi>);

impl Connections {
    pub async fn open(desired: &Desired, keys: &Keys) -> Result<Connections, ApiError> {
        let mut conns = BTreeMap::new();
        for account in &desired.jetstream_accounts {
            let api = JsApi::connect(desired, account, keys).await?;
            conns.insert(account.clone(), api);
        }
        Ok(Connections(conns))
    }

    pub fn get(&self, account: &AccountName) -> Option<&JsApi> {
        self.0.get(account)
    }

    pub async fn close(self) {
        for (_, c) in self.0 {
            c.close().await;
        }
    }
}

/// The part of `/jsz?accounts=true&streams=true&consumers=true&config=true` that the plan
/// reads; the rest (state, counters) is skipped while parsing.
#[derive(Debug, Deserialize)]
pub struct JszDetail {
    #[serde(default)]
    account_details: Vec<JszAccount>,
}

#[derive(Debug, Deserialize)]
struct JszAccount {
    name: String,
    #[serde(default)]
    stream_detail: Vec<JszStream>,
}

#[derive(Debug, Deserialize)]
struct JszStream {
    name: String,
    /// Absent from a placement reading.
    #[serde(default)]
    config: Map<String, Value>,
    #[serde(default)]
    cluster: Value,
    #[serde(default)]
    consumer_detail: Vec<JszConsumer>,
}

/// The progress fields are spelled out rather than a flattened `ConsumerProgress`: serde
/// buffers every other field of a struct with a flattened one (this parse took 13% longer).
#[derive(Debug, Deserialize)]
struct JszConsumer {
    config: Map<String, Value>,
    #[serde(default)]
    cluster: Value,
    // Only the consumer's leader knows its progress: the others report no pending messages.
    #[serde(default)]
    num_pending: u64,
    #[serde(default)]
    num_ack_pending: u64,
    #[serde(default)]
    num_redelivered: u64,
    #[serde(default)]
    delivered: Delivered,
}

impl JszConsumer {
    fn into_object(self, account: &AccountName, stream: &str, leaf_domain: Option<String>) -> Option<LiveObject> {
        let progress = ConsumerProgress {
            num_pending: self.num_pending,
            num_ack_pending: self.num_ack_pending,
            num_redelivered: self.num_redelivered,
            delivered: self.delivered,
        };
        consumer_object(account, stream, self.config, progress, leaf_domain)
    }
}

fn stream_object(account: &AccountName, config: Map<String, Value>, cluster: Value, leaf_domain: Option<String>) -> LiveObject {
    let stream = config.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let (kind, name) = classify(&stream);
    LiveObject {
        kind,
        account: account.clone(),
        name,
        stream,
        config,
        cluster,
        leaf_domain,
        progress: None,
    }
}

fn consumer_object(
    account: &AccountName,
    stream: &str,
    config: Map<String, Value>,
    progress: ConsumerProgress,
    leaf_domain: Option<String>,
) -> Option<LiveObject> {
    // Ephemeral consumers belong to running clients, not to the topology.
    let durable = config.get("durable_name").and_then(Value::as_str)?.to_string();
    Some(LiveObject {
        kind: ObjectKind::Consumer,
        account: account.clone(),
        name: durable,
        stream: stream.to_string(),
        config,
        cluster: Value::Null,
        leaf_domain,
        progress: Some(progress),
    })
}

/// A JSON object field of an API answer, empty when absent.
fn object_of(info: &Value, field: &str) -> Map<String, Value> {
    info[field].as_object().cloned().unwrap_or_default()
}

/// How much of each stream a `/jsz` reading holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JszDepth {
    /// Streams and their consumers with their configs: what the plan compares.
    Objects,
    /// Streams with their placement only: what verify checks, a fifth of the bytes.
    Placement,
}

impl JszDepth {
    pub(super) fn query(self) -> &'static str {
        match self {
            JszDepth::Objects => "/jsz?accounts=true&streams=true&consumers=true&config=true",
            JszDepth::Placement => "/jsz?accounts=true&streams=true",
        }
    }
}

/// A stream (or bucket) and where it runs, as its leader reports it.
#[derive(Debug, Clone)]
pub struct StreamPlacement {
    pub kind: ObjectKind,
    pub account: AccountName,
    pub stream: String,
    /// `cluster` (name, leader, replicas) as the stream's leader sees it.
    pub cluster: Value,
}

impl StreamPlacement {
    /// Where the streams among `live` run (a full reading holds their placement too).
    pub fn of(live: &[LiveObject]) -> Vec<StreamPlacement> {
        live.iter()
            .filter(|l| l.kind != ObjectKind::Consumer)
            .map(|l| StreamPlacement {
                kind: l.kind,
                account: l.account.clone(),
                stream: l.stream.clone(),
                cluster: l.cluster.clone(),
            })
            .collect()
    }
}

/// Each JetStream server's `/jsz` at `depth`, read at once: (server, its leaf domain, report).
/// Fails naming the server when one does not answer.
async fn read_reports(monitor: &Monitor, desired: &Desired, depth: JszDepth) -> Result<Vec<(String, Option<String>, JszDetail)>, String> {
    let servers = desired.jetstream_nodes().into_iter().chain(desired.jetstream_leaves());
    // A task per server: parsing a large report is CPU work, done on every core at once.
    let reads = servers.map(|s| {
        let leaf_domain = (s.role == crate::desired::Role::Leaf)
            .then(|| s.conf.jetstream.as_ref().and_then(|j| j.domain.clone()))
            .flatten();
        let (monitor, url, name) = (monitor.clone(), s.monitor_url.clone(), s.name.clone());
        tokio::spawn(async move {
            let detail = monitor
                .jetstream_detail(&url, depth)
                .await
                .map_err(|e| format!("cannot read JetStream state from {name}: {e}"))?;
            Ok::<_, String>((name, leaf_domain, detail))
        })
    });
    futures_util::future::join_all(reads)
        .await
        .into_iter()
        .map(|joined| joined.map_err(|e| format!("reading JetStream state failed: {e}"))?)
        .collect()
}

/// The managed accounts by the name the servers report them under.
fn managed_accounts(desired: &Desired) -> BTreeMap<String, AccountName> {
    desired
        .jetstream_accounts
        .iter()
        .map(|a| (a.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.to_string()), a.clone()))
        .collect()
}

/// Each object's report, and whether its leader gave it.
type Reports<K, T> = BTreeMap<K, (bool, T)>;

/// Keeps `report` for `key` unless a report from the object's leader is already kept: every
/// replica reports an object, and its leader's report is the one that knows.
fn keep_leaders<K: Ord, T>(kept: &mut Reports<K, T>, key: K, from_leader: bool, report: T) {
    match kept.entry(key) {
        Entry::Vacant(e) => {
            e.insert((from_leader, report));
        }
        Entry::Occupied(mut e) if from_leader && !e.get().0 => {
            e.insert((true, report));
        }
        Entry::Occupied(_) => {}
    }
}

/// Every stream, bucket and durable consumer of the managed accounts, from the servers'
/// `/jsz`. Fails naming the server when one does not answer.
pub async fn read_monitoring(monitor: &Monitor, desired: &Desired) -> Result<Vec<LiveObject>, String> {
    let managed = managed_accounts(desired);
    let reports = read_reports(monitor, desired, JszDepth::Objects).await?;
    // Per (account, stream): the report of the stream's leader when it has one; per consumer,
    // its own leader's (a consumer's leader need not be its stream's).
    let mut streams: Reports<(&AccountName, String), (JszStream, Option<String>)> = BTreeMap::new();
    let mut consumers: Reports<(&AccountName, String, String), JszConsumer> = BTreeMap::new();
    for (server, leaf_domain, detail) in reports {
        for acc in detail.account_details {
            let Some(account) = managed.get(&acc.name) else {
                continue;
            };
            for mut info in acc.stream_detail {
                for c in std::mem::take(&mut info.consumer_detail) {
                    let durable = c.config.get("durable_name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let from_leader = c.cluster["leader"].as_str() == Some(server.as_str());
                    keep_leaders(&mut consumers, (account, info.name.clone(), durable), from_leader, c);
                }
                let from_leader = info.cluster["leader"].as_str() == Some(server.as_str());
                keep_leaders(&mut streams, (account, info.name.clone()), from_leader, (info, leaf_domain.clone()));
            }
        }
    }
    let mut by_stream: BTreeMap<(&AccountName, String), Vec<JszConsumer>> = BTreeMap::new();
    for ((account, stream, _), (_, c)) in consumers {
        by_stream.entry((account, stream)).or_default().push(c);
    }
    let mut live = Vec::new();
    for ((account, stream), (_, (info, leaf_domain))) in streams {
        let of_stream = by_stream.remove(&(account, stream.clone())).unwrap_or_default();
        live.push(stream_object(account, info.config, info.cluster, leaf_domain.clone()));
        live.extend(
            of_stream
                .into_iter()
                .filter_map(|c| c.into_object(account, &stream, leaf_domain.clone())),
        );
    }
    Ok(live)
}

/// Where each stream and bucket of the managed accounts runs, from the servers' `/jsz` without
/// configs or consumers. Fails naming the server when one does not answer.
pub async fn read_placements(monitor: &Monitor, desired: &Desired) -> Result<Vec<StreamPlacement>, String> {
    let reports = read_reports(monitor, desired, JszDepth::Placement).await?;
    Ok(placements(&managed_accounts(desired), reports))
}

/// The managed streams' placements in the servers' `reports`, each as its leader gave it.
fn placements(managed: &BTreeMap<String, AccountName>, reports: Vec<(String, Option<String>, JszDetail)>) -> Vec<StreamPlacement> {
    let mut streams: Reports<(&AccountName, String), Value> = BTreeMap::new();
    for (server, _, detail) in reports {
        for acc in detail.account_details {
            let Some(account) = managed.get(&acc.name) else {
                continue;
            };
            for info in acc.stream_detail {
                let from_leader = info.cluster["leader"].as_str() == Some(server.as_str());
                keep_leaders(&mut streams, (account, info.name), from_leader, info.cluster);
            }
        }
    }
    streams
        .into_iter()
        .map(|((account, stream), (_, cluster))| StreamPlacement {
            kind: classify(&stream).0,
            account: account.clone(),
            stream,
            cluster,
        })
        .collect()
}

/// The same through the JetStream API: slower (a request per stream for its consumers) but
/// needs only one reachable server with quorum.
pub async fn read_api(conns: &Connections) -> Result<Vec<LiveObject>, ApiError> {
    let mut all = Vec::new();
    for (account, api) in &conns.0 {
        let streams = api.streams().await?;
        let consumer_reads = streams.iter().map(|info| async move {
            let stream = info["config"]["name"].as_str().unwrap_or_default().to_string();
            let consumers = api.consumers(&stream).await?;
            Ok::<_, ApiError>((stream, consumers))
        });
        for info in &streams {
            all.push(stream_object(account, object_of(info, "config"), info["cluster"].clone(), None));
        }
        for result in futures_util::future::join_all(consumer_reads).await {
            let (stream, consumers) = result?;
            all.extend(consumers.iter().filter_map(|c| {
                let progress = serde_json::from_value(c.clone()).unwrap_or_default();
                consumer_object(account, &stream, object_of(c, "config"), progress, None)
            }));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A server's `/jsz?accounts=true&streams=true` as nats-server 2.15 writes it (trimmed).
    fn report(server: &str, streams: &[(&str, &str)]) -> (String, Option<String>, JszDetail) {
        let detail = json!({"account_details": [
            {"name": "APP", "stream_detail": streams.iter().map(|(name, leader)| json!({
                "name": name,
                "cluster": {"name": "east", "leader": leader, "replicas": [{"name": "east-2", "current": server == *leader}]},
                "state": {"messages": 0}
            })).collect::<Vec<_>>()},
            {"name": "OTHER", "stream_detail": [{"name": "NOT_OURS", "cluster": {"leader": server}}]}
        ]});
        (server.to_string(), None, serde_json::from_value(detail).unwrap())
    }

    #[test]
    fn each_stream_is_placed_as_its_leader_reports_it_whatever_the_order_of_the_servers() {
        let managed = BTreeMap::from([("APP".to_string(), Some("APP".to_string()))]);
        let streams = [("EVENTS", "east-1"), ("KV_config", "east-2")];
        for order in [["east-1", "east-2"], ["east-2", "east-1"]] {
            let reports = order.iter().map(|server| report(server, &streams)).collect();
            let placed = placements(&managed, reports);
            let seen: Vec<(ObjectKind, &str, &Value)> = placed
                .iter()
                .map(|p| (p.kind, p.stream.as_str(), &p.cluster["replicas"][0]["current"]))
                .collect();
            assert_eq!(
                seen,
                vec![
                    (ObjectKind::Stream, "EVENTS", &json!(true)),
                    (ObjectKind::Kv, "KV_config", &json!(true))
                ]
            );
        }
    }
}
