//! The JetStream objects that exist on the live servers, per managed account.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::desired::{Desired, Keys, ObjectKind};
use crate::jsapi::{ApiError, JsApi};
use crate::model::AccountName;

/// An object as the server reports it: its full config, defaults included.
#[derive(Debug, Clone)]
pub struct LiveObject {
    pub kind: ObjectKind,
    pub account: AccountName,
    pub name: String,
    pub stream: String,
    pub config: Map<String, Value>,
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

/// Every stream, bucket and durable consumer of the managed accounts.
pub async fn read(conns: &Connections) -> Result<Vec<LiveObject>, ApiError> {
    let mut all = Vec::new();
    for (account, api) in &conns.0 {
        let streams = api.streams().await?;
        let consumer_reads = streams.iter().map(|info| async move {
            let stream = info["config"]["name"].as_str().unwrap_or_default().to_string();
            let consumers = api.consumers(&stream).await?;
            Ok::<_, ApiError>((stream, consumers))
        });
        for info in &streams {
            let config = info["config"].as_object().cloned().unwrap_or_default();
            let stream = config.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let (kind, name) = classify(&stream);
            all.push(LiveObject {
                kind,
                account: account.clone(),
                name,
                stream,
                config,
            });
        }
        for result in futures_util::future::join_all(consumer_reads).await {
            let (stream, consumers) = result?;
            for c in consumers {
                let config = c["config"].as_object().cloned().unwrap_or_default();
                // Ephemeral consumers belong to running clients, not to the topology.
                let Some(durable) = config.get("durable_name").and_then(Value::as_str).map(str::to_string) else {
                    continue;
                };
                all.push(LiveObject {
                    kind: ObjectKind::Consumer,
                    account: account.clone(),
                    name: durable,
                    stream: stream.clone(),
                    config,
                });
            }
        }
    }
    Ok(all)
}
