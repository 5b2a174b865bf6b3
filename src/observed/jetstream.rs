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
    config: Map<String, Value>,
    #[serde(default)]
    cluster: Value,
    #[serde(default)]
    consumer_detail: Vec<JszConsumer>,
}

#[derive(Debug, Deserialize)]
struct JszConsumer {
    config: Map<String, Value>,
    #[serde(default)]
    cluster: Value,
    /// Only the consumer's leader knows it: the others report no pending messages.
    #[serde(flatten)]
    progress: ConsumerProgress,
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

/// Every stream, bucket and durable consumer of the managed accounts, from the servers'
/// `/jsz`. Fails naming the server when one does not answer.
pub async fn read_monitoring(monitor: &Monitor, desired: &Desired) -> Result<Vec<LiveObject>, String> {
    let servers = desired.jetstream_nodes().into_iter().chain(desired.jetstream_leaves());
    // A task per server: parsing a large report is CPU work, done on every core at once.
    let reads = servers.map(|s| {
        let leaf_domain = (s.role == crate::desired::Role::Leaf)
            .then(|| s.conf.jetstream.as_ref().and_then(|j| j.domain.clone()))
            .flatten();
        let (monitor, url, name) = (monitor.clone(), s.monitor_url.clone(), s.name.clone());
        tokio::spawn(async move {
            let detail = monitor
                .jetstream_detail(&url)
                .await
                .map_err(|e| format!("cannot read JetStream state from {name}: {e}"))?;
            Ok::<_, String>((name, leaf_domain, detail))
        })
    });
    let managed: BTreeMap<String, AccountName> = desired
        .jetstream_accounts
        .iter()
        .map(|a| (a.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.to_string()), a.clone()))
        .collect();
    let details: Vec<(String, Option<String>, JszDetail)> = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .map(|joined| joined.map_err(|e| format!("reading JetStream state failed: {e}"))?)
        .collect::<Result<_, _>>()?;
    // Per (account, stream): the report of the stream's leader when it has one; per consumer,
    // its own leader's (a consumer's leader need not be its stream's).
    let mut streams: BTreeMap<(&AccountName, String), (bool, JszStream, Option<String>)> = BTreeMap::new();
    let mut consumers: BTreeMap<(&AccountName, String, String), (bool, JszConsumer)> = BTreeMap::new();
    for (server, leaf_domain, detail) in details {
        for acc in detail.account_details {
            let Some(account) = managed.get(&acc.name) else {
                continue;
            };
            for mut info in acc.stream_detail {
                let name = info.config.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                for c in std::mem::take(&mut info.consumer_detail) {
                    let durable = c.config.get("durable_name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let from_leader = c.cluster["leader"].as_str() == Some(server.as_str());
                    match consumers.entry((account, name.clone(), durable)) {
                        Entry::Vacant(e) => {
                            e.insert((from_leader, c));
                        }
                        Entry::Occupied(mut e) if from_leader && !e.get().0 => {
                            e.insert((true, c));
                        }
                        Entry::Occupied(_) => {}
                    }
                }
                let from_leader = info.cluster["leader"].as_str() == Some(server.as_str());
                match streams.entry((account, name)) {
                    Entry::Vacant(e) => {
                        e.insert((from_leader, info, leaf_domain.clone()));
                    }
                    Entry::Occupied(mut e) if from_leader && !e.get().0 => {
                        e.insert((true, info, leaf_domain.clone()));
                    }
                    Entry::Occupied(_) => {}
                }
            }
        }
    }
    let mut by_stream: BTreeMap<(&AccountName, String), Vec<JszConsumer>> = BTreeMap::new();
    for ((account, stream, _), (_, c)) in consumers {
        by_stream.entry((account, stream)).or_default().push(c);
    }
    let mut live = Vec::new();
    for ((account, stream), (_, info, leaf_domain)) in streams {
        let of_stream = by_stream.remove(&(account, stream.clone())).unwrap_or_default();
        live.push(stream_object(account, info.config, info.cluster, leaf_domain.clone()));
        live.extend(
            of_stream
                .into_iter()
                .filter_map(|c| consumer_object(account, &stream, c.config, c.progress, leaf_domain.clone())),
        );
    }
    Ok(live)
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
