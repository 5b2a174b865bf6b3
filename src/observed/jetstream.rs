//! The JetStream objects that exist on the live servers, per managed account. Read from every
//! JetStream server's `/jsz` (one request per server, whatever the number of objects), each
//! stream as its leader reports it; the JetStream API is the fallback when a server does not
//! answer.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::desired::{Desired, GLOBAL_ACCOUNT, Keys, ObjectKind, Role};
use crate::jsapi::{ApiError, JsApi};
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
            let api = JsApi::connect(&desired.jetstream_urls, account, keys).await?;
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

fn stream_objects(account: &AccountName, info: &Value) -> Vec<LiveObject> {
    let config = info["config"].as_object().cloned().unwrap_or_default();
    let stream = config.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let (kind, name) = classify(&stream);
    let mut out = vec![LiveObject {
        kind,
        account: account.clone(),
        name,
        stream: stream.clone(),
        config,
        cluster: info["cluster"].clone(),
    }];
    for c in info["consumer_detail"].as_array().into_iter().flatten() {
        out.extend(consumer_object(account, &stream, c));
    }
    out
}

fn consumer_object(account: &AccountName, stream: &str, info: &Value) -> Option<LiveObject> {
    let config = info["config"].as_object().cloned().unwrap_or_default();
    // Ephemeral consumers belong to running clients, not to the topology.
    let durable = config.get("durable_name").and_then(Value::as_str)?.to_string();
    Some(LiveObject {
        kind: ObjectKind::Consumer,
        account: account.clone(),
        name: durable,
        stream: stream.to_string(),
        config,
        cluster: Value::Null,
    })
}

/// Every stream, bucket and durable consumer of the managed accounts, from the servers'
/// `/jsz`. Fails naming the server when one does not answer.
pub async fn read_monitoring(monitor: &Monitor, desired: &Desired) -> Result<Vec<LiveObject>, String> {
    let servers: Vec<_> = desired
        .servers
        .iter()
        .filter(|s| s.role == Role::Node && s.conf.jetstream.is_some())
        .collect();
    let reads = servers.iter().map(|s| async move {
        let detail = monitor
            .jetstream_detail(&s.monitor_url)
            .await
            .map_err(|e| format!("cannot read JetStream state from {}: {e}", s.name))?;
        Ok::<_, String>((s.name.clone(), detail))
    });
    let managed: BTreeMap<String, AccountName> = desired
        .jetstream_accounts
        .iter()
        .map(|a| (a.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.to_string()), a.clone()))
        .collect();
    let details: Vec<(String, Value)> = futures_util::future::join_all(reads).await.into_iter().collect::<Result<_, _>>()?;
    // Per (account, stream): the report of the stream's leader when it has one.
    let mut streams: BTreeMap<(&AccountName, &str), (bool, &Value)> = BTreeMap::new();
    for (server, detail) in &details {
        for acc in detail["account_details"].as_array().into_iter().flatten() {
            let Some(account) = acc["name"].as_str().and_then(|n| managed.get(n)) else {
                continue;
            };
            for info in acc["stream_detail"].as_array().into_iter().flatten() {
                let name = info["config"]["name"].as_str().unwrap_or_default();
                let from_leader = info["cluster"]["leader"].as_str() == Some(server.as_str());
                let entry = streams.entry((account, name)).or_insert((from_leader, info));
                if from_leader && !entry.0 {
                    *entry = (true, info);
                }
            }
        }
    }
    Ok(streams
        .iter()
        .flat_map(|((account, _), (_, info))| stream_objects(account, info))
        .collect())
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
            all.extend(stream_objects(account, info));
        }
        for result in futures_util::future::join_all(consumer_reads).await {
            let (stream, consumers) = result?;
            all.extend(consumers.iter().filter_map(|c| consumer_object(account, &stream, c)));
        }
    }
    Ok(all)
}
