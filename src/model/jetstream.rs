//! JetStream objects the topology declares: streams, consumers, KV buckets and object stores,
//! each in the account that owns it. Validated: names, subjects, sizes and durations are sound.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::Loc;

/// Where an object lives: an application account, or the global account of a topology
/// without accounts.
pub type AccountName = Option<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    Workqueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    #[default]
    Old,
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    #[default]
    Explicit,
    All,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    LastPerSubject,
    ByStartTime,
    ByStartSequence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

/// How a stream's writes reach the disk (nats-server 2.12+): `async` acknowledges before the
/// write is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersistMode {
    #[default]
    Default,
    Async,
}

/// How a pull consumer's priority groups share its messages (nats-server 2.11+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityPolicy {
    #[default]
    None,
    Overflow,
    PinnedClient,
    Prioritized,
}

/// The stream settings of nats-server 2.11 to 2.15, each left to the server when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFeatures {
    /// Per-message TTLs (`Nats-TTL`); cannot be turned off once on.
    pub allow_msg_ttl: Option<bool>,
    pub subject_delete_marker_ttl: Option<Duration>,
    pub allow_atomic: Option<bool>,
    /// Fixed when the stream is created.
    pub allow_msg_counter: Option<bool>,
    /// Cannot be turned off once on.
    pub allow_msg_schedules: Option<bool>,
    pub allow_batched: Option<bool>,
    /// Fixed when the stream is created.
    pub persist_mode: Option<PersistMode>,
}

/// Where the servers put a stream's replicas: a region (cluster) and/or server tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub region: Option<String>,
    pub tags: Vec<String>,
}

/// Another stream this one mirrors or sources from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSource {
    pub name: String,
    pub filter_subject: Option<String>,
}

/// Limits shared by streams, KV buckets and object stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    pub storage: Storage,
    pub replicas: u8,
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
    pub placement: Option<Placement>,
}

#[derive(Debug, Clone)]
pub struct Stream {
    pub name: String,
    pub account: AccountName,
    /// The leafnode whose own JetStream domain holds it; `None`: the regions' JetStream.
    pub leafnode: Option<String>,
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub discard: Discard,
    pub store: StoreSettings,
    pub max_msgs: Option<i64>,
    pub max_msgs_per_subject: Option<i64>,
    pub max_msg_size: Option<u64>,
    pub duplicate_window: Option<Duration>,
    pub mirror: Option<StreamSource>,
    pub sources: Vec<StreamSource>,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup: bool,
    pub features: StreamFeatures,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    pub stream: String,
    pub account: AccountName,
    /// Push consumers deliver to this subject; pull consumers have none.
    pub deliver_subject: Option<String>,
    pub deliver_group: Option<String>,
    pub filter_subjects: Vec<String>,
    pub ack_policy: AckPolicy,
    pub ack_wait: Option<Duration>,
    pub max_deliver: Option<i64>,
    pub backoff: Vec<Duration>,
    pub deliver_policy: DeliverPolicy,
    /// RFC 3339, with `by_start_time`.
    pub opt_start_time: Option<String>,
    pub opt_start_seq: Option<u64>,
    pub replay_policy: ReplayPolicy,
    pub max_ack_pending: Option<i64>,
    pub max_waiting: Option<i64>,
    pub rate_limit_bps: Option<u64>,
    pub flow_control: bool,
    pub idle_heartbeat: Option<Duration>,
    /// Pull consumers: the groups its clients pull in, and how the groups share.
    pub priority_groups: Vec<String>,
    pub priority_policy: Option<PriorityPolicy>,
    /// How long a pinned client keeps its pin without pulling.
    pub priority_timeout: Option<Duration>,
    /// RFC 3339: the consumer delivers nothing until then.
    pub pause_until: Option<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct KeyValue {
    pub bucket: String,
    pub account: AccountName,
    pub history: u8,
    /// `store.max_age` is the bucket's TTL.
    pub store: StoreSettings,
    pub max_value_size: Option<u64>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct ObjectStore {
    pub bucket: String,
    pub account: AccountName,
    pub store: StoreSettings,
    pub loc: Loc,
}

/// Every JetStream object of the topology.
#[derive(Debug, Clone, Default)]
pub struct JetStreamObjects {
    pub streams: Vec<Stream>,
    pub consumers: Vec<Consumer>,
    pub kv: Vec<KeyValue>,
    pub object_stores: Vec<ObjectStore>,
}

impl JetStreamObjects {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.consumers.is_empty() && self.kv.is_empty() && self.object_stores.is_empty()
    }

    /// Accounts that hold at least one object.
    pub fn accounts(&self) -> Vec<AccountName> {
        let mut all: Vec<AccountName> = self
            .streams
            .iter()
            .map(|s| s.account.clone())
            .chain(self.kv.iter().map(|k| k.account.clone()))
            .chain(self.object_stores.iter().map(|o| o.account.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The stream nats-server holds a KV bucket in.
pub fn kv_stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The stream nats-server holds an object store in.
pub fn object_stream_name(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}
