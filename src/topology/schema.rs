//! The serde mirror of the topology file: exactly what may be written, with the position of every
//! name and value that a later check may need to point at. Short forms (`nodes: 3`,
//! `jetstream: true`, `publish: [..]`) are accepted beside the explicit ones.

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer, value::SeqAccessDeserializer};
use serde_saphyr::Spanned;
use std::fmt;

use crate::model::{AckPolicy, DeliverPolicy, Discard, ReplayPolicy, Retention, Storage};

pub type Named<T> = IndexMap<Spanned<String>, T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub defaults: Defaults,
    pub regions: Named<RegionSpec>,
    #[serde(default)]
    pub leafnodes: Named<LeafnodeSpec>,
    pub tls: Option<Spanned<TlsSpec>>,
    pub operator: Option<Spanned<OperatorSpec>>,
    pub kubernetes: Option<Spanned<KubernetesSpec>>,
    pub compose: Option<Spanned<ComposeSpec>>,
    /// The nats-server every server runs: a version pins the binary (local), the image tag
    /// (compose, k8s); changing it is a rolling upgrade.
    pub nats_server: Option<Spanned<NatsServerSpec>>,
    pub wireguard: Option<Spanned<WireGuardSpec>>,
    /// How the ssh target reaches every host, unless a node says otherwise.
    pub ssh: Option<Spanned<SshSpec>>,
    #[serde(default)]
    pub accounts: Named<AccountSpec>,
    #[serde(default)]
    pub streams: Named<StreamSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    #[serde(default)]
    pub kv: Named<KvSpec>,
    #[serde(default)]
    pub object_stores: Named<ObjectStoreSpec>,
    /// The applications that use the system: who they log in as and what they do, from which
    /// their users' permissions are derived.
    #[serde(default)]
    pub apps: Named<AppSpec>,
    /// Traffic the system must carry (`reaches`) and must never carry (`never`).
    #[serde(default)]
    pub flows: Named<FlowSpec>,
    /// What `monitor` serves and the alert rules `render` writes.
    pub monitoring: Option<Spanned<MonitoringSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSpec {
    /// Where `monitor` serves `/metrics` (and Prometheus scrapes it).
    pub listen: Option<Spanned<String>>,
    /// How often `monitor` reads the servers and sends its probes; Prometheus scrapes as often.
    pub interval: Option<Spanned<Scalar>>,
    /// How long a condition lasts before its alert fires.
    pub alert_after: Option<Spanned<Scalar>>,
    /// A JetStream store (file or memory) above this share of its limit alerts.
    pub store_full_percent: Option<Spanned<u8>>,
    /// Pending messages above which a consumer alerts, unless `consumers` names it.
    pub consumer_pending: Option<Spanned<u64>>,
    /// Per consumer (`STREAM/durable`): its own pending threshold.
    #[serde(default)]
    pub consumers: Named<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub ports: PortsSpec,
    pub listen: Option<Spanned<String>>,
    #[serde(default)]
    pub jetstream: JetStreamDefaults,
    pub max_payload: Option<Spanned<Scalar>>,
    pub lame_duck: Option<LameDuckSpec>,
    #[serde(default)]
    pub logging: LoggingSpec,
    /// How many servers of each remote region a server's gateway block lists.
    pub gateway_seeds: Option<Spanned<u32>>,
    /// Route compression between the nodes of a region.
    pub compression: Option<Spanned<Compression>>,
    /// Each node advertises the address its peers dial (its host) to clients, routes and gateways.
    pub advertise: Option<Spanned<bool>>,
    pub max_connections: Option<Spanned<u64>>,
    pub max_control_line: Option<Spanned<Scalar>>,
    /// The user a client without credentials is logged in as (static accounts).
    pub no_auth_user: Option<Spanned<String>>,
}

/// nats-server's route compression modes. `s2` is read only to explain that nats-server
/// refuses it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    Off,
    Accept,
    S2,
    S2Fast,
    S2Better,
    S2Best,
    S2Auto,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsSpec {
    pub client: Option<Spanned<u16>>,
    pub cluster: Option<Spanned<u16>>,
    pub gateway: Option<Spanned<u16>>,
    pub leafnode: Option<Spanned<u16>>,
    pub monitor: Option<Spanned<u16>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamDefaults {
    pub store_dir: Option<Spanned<String>>,
    pub max_memory_store: Option<Spanned<Scalar>>,
    pub max_file_store: Option<Spanned<Scalar>>,
    /// The super-cluster's JetStream domain (one for every region: the meta group spans them).
    pub domain: Option<Spanned<String>>,
    /// Encryption at rest on every JetStream server.
    pub encryption: Option<Spanned<EncryptionSpec>>,
}

/// `{ cipher: chachapoly | aes, key: ${VAR} }`: the key is read from the servers' environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSpec {
    pub cipher: Option<Spanned<Cipher>>,
    pub key: Spanned<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Cipher {
    Chachapoly,
    Aes,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub max_memory_store: Option<Spanned<Scalar>>,
    pub max_file_store: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LameDuckSpec {
    pub duration: Spanned<Scalar>,
    pub grace_period: Option<Spanned<Scalar>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    pub time: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    pub nodes: Spanned<NodesSpec>,
    pub jetstream: Option<Spanned<JetStreamSpec>>,
}

/// `nodes: 3` (named `<region>-1..3`, each reached by its name) or the explicit list.
#[derive(Debug)]
pub enum NodesSpec {
    Count(u64),
    List(Vec<NodeSpec>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: Spanned<String>,
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub ports: PortsSpec,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    pub wireguard: Option<Spanned<NodeWireGuardSpec>>,
    pub ssh: Option<Spanned<SshSpec>>,
}

/// A host's SSH login and layout (top level: the defaults of every host).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Where to log in (a node only; default: its WireGuard endpoint, otherwise its host).
    pub address: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub user: Option<Spanned<String>>,
    /// A private key file (otherwise the SSH agent).
    pub key: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub config_dir: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub log_dir: Option<Spanned<String>>,
    /// The nats-server binary on the host.
    pub nats_server: Option<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<Spanned<String>, Spanned<String>>,
}

/// A full WireGuard mesh between the hosts whose nodes give a VPN address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireGuardSpec {
    /// The VPN network, e.g. `10.0.0.0/16`.
    pub network: Spanned<String>,
    /// Listen port of hosts that give none (default 51820).
    pub port: Option<Spanned<u16>>,
    /// A pre-shared key per pair of hosts (post-quantum hardening).
    #[serde(default)]
    pub preshared_keys: bool,
    pub keepalive: Option<Spanned<u16>>,
}

/// A node's place in the mesh: its VPN address (which peers then dial) and its public endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeWireGuardSpec {
    pub address: Spanned<String>,
    pub endpoint: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    /// The interface on the host (default `wg0`).
    pub interface: Option<Spanned<String>>,
}

/// `jetstream: true` or `jetstream: { max_memory_store: .., max_file_store: .. }`.
#[derive(Debug)]
pub enum JetStreamSpec {
    Enabled(bool),
    Limits(LimitsSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafnodeSpec {
    pub hub: Spanned<String>,
    pub account: Option<Spanned<String>>,
    /// What the leaf may receive from the hub (an allow list: its link user's subscribe rights).
    pub imports: Option<Vec<Spanned<String>>>,
    /// What the leaf may send into the hub (an allow list: its link user's publish rights).
    pub exports: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub deny_import: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny_export: Vec<Spanned<String>>,
    /// The address the leaf's own client and monitoring listeners bind (e.g. `127.0.0.1` for an
    /// edge whose clients run on the same host), on real hosts.
    pub listen: Option<Spanned<String>>,
    /// How long the leaf waits before dialling its hub again after losing it (it always does).
    pub reconnect: Option<Spanned<Scalar>>,
    pub jetstream: Option<LeafJetStreamSpec>,
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub ports: PortsSpec,
    pub ssh: Option<Spanned<SshSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafJetStreamSpec {
    pub domain: Option<Spanned<String>>,
    pub max_memory_store: Option<Spanned<Scalar>>,
    pub max_file_store: Option<Spanned<Scalar>>,
}

/// Kubernetes manifests: where and with what the StatefulSets run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSpec {
    pub namespace: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    /// Shorthand: the CPU request.
    pub cpu: Option<Spanned<Scalar>>,
    /// Shorthand: the memory request and limit.
    pub memory: Option<Spanned<Scalar>>,
    /// Requests and limits written out (instead of `cpu`/`memory`).
    pub resources: Option<Spanned<ResourcesSpec>>,
    pub storage: Option<Spanned<Scalar>>,
    pub storage_class: Option<Spanned<String>>,
    /// How gateways and leafnode listeners are exposed to other regions.
    pub service_type: Option<Spanned<ServiceType>>,
    /// The type of each region's client Service (default ClusterIP: inside the cluster only).
    pub client_service: Option<Spanned<ServiceType>>,
    /// `required`: never two servers of a region on one Kubernetes node; `preferred` (default).
    pub anti_affinity: Option<Spanned<AntiAffinity>>,
    /// A topology key the pods of a region spread evenly across (e.g. `topology.kubernetes.io/zone`).
    pub spread_across: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    #[serde(default)]
    pub requests: ResourceAmounts,
    #[serde(default)]
    pub limits: ResourceAmounts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceAmounts {
    pub cpu: Option<Spanned<Scalar>>,
    pub memory: Option<Spanned<Scalar>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinity {
    Required,
    Preferred,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsServerSpec {
    pub version: Spanned<String>,
}

/// How the compose target runs the servers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeSpec {
    /// The image (`--image`/`NATS_IMAGE` still win, for a one-off run).
    pub image: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum ServiceType {
    LoadBalancer,
    NodePort,
    ClusterIP,
}

/// Which listeners speak TLS; each is `true` or `{ verify: true }` (mutual TLS).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub client: Option<Spanned<TlsListenerSpec>>,
    pub cluster: Option<Spanned<TlsListenerSpec>>,
    pub gateway: Option<Spanned<TlsListenerSpec>>,
    pub leafnode: Option<Spanned<TlsListenerSpec>>,
    /// Monitoring over https (served with the client listener's certificate).
    pub monitor: Option<Spanned<bool>>,
}

#[derive(Debug)]
pub struct TlsListenerSpec {
    pub enabled: bool,
    pub verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsListenerMap {
    #[serde(default)]
    verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    pub name: Spanned<String>,
    pub resolver: Option<Spanned<ResolverKind>>,
    /// Sign accounts with a signing key instead of the operator's identity key.
    #[serde(default)]
    pub signing_key: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResolverKind {
    Memory,
    Full,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    #[serde(default)]
    pub system: Option<Spanned<bool>>,
    pub jetstream: Option<Spanned<AccountJetStreamSpec>>,
    /// Sign the account's users with a signing key instead of its identity key.
    #[serde(default)]
    pub signing_key: bool,
    #[serde(default)]
    pub exports: Vec<ExportSpec>,
    #[serde(default)]
    pub imports: Vec<ImportSpec>,
    /// Subject mappings inside the account: `orders.*: "orders.eu.{{wildcard(1)}}"`.
    #[serde(default)]
    pub mappings: IndexMap<Spanned<String>, Spanned<String>>,
    /// Permissions of the account's users that declare none.
    pub default_permissions: Option<PermissionsSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
}

/// `jetstream: true` or `jetstream: { max_memory: .., max_file: .., max_streams: .., max_consumers: .. }`.
#[derive(Debug)]
pub enum AccountJetStreamSpec {
    Enabled(bool),
    Limits(Box<AccountLimitsSpec>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLimitsSpec {
    pub max_memory: Option<Spanned<Scalar>>,
    pub max_file: Option<Spanned<Scalar>>,
    pub max_streams: Option<Spanned<i64>>,
    pub max_consumers: Option<Spanned<i64>>,
}

/// `stream: subject` or `service: subject`, public or `to:` named accounts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    pub stream: Option<Spanned<String>>,
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
}

/// `stream: subject` or `service: subject` exported by account `from`, seen locally as `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    pub stream: Option<Spanned<String>>,
    pub service: Option<Spanned<String>>,
    pub from: Spanned<String>,
    pub to: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub user: Spanned<String>,
    pub password: Option<Spanned<String>>,
    #[serde(default)]
    pub permissions: PermissionsSpec,
    #[serde(default)]
    pub allowed_connection_types: Vec<Spanned<String>>,
    /// A bearer token: the JWT alone authenticates (operator mode, only when asked).
    #[serde(default)]
    pub bearer: Option<Spanned<bool>>,
    /// Issue a client certificate for this user (for `tls.client.verify`).
    #[serde(default)]
    pub client_cert: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsSpec {
    pub publish: Option<RuleSpec>,
    pub subscribe: Option<RuleSpec>,
    /// Lets the user reply to requests it received: `true` (one reply) or `{ max: N, ttl: 1m }`.
    pub allow_responses: Option<Spanned<ResponsesSpec>>,
}

#[derive(Debug)]
pub struct ResponsesSpec {
    pub max: Option<u64>,
    pub ttl: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponsesMap {
    max: Option<u64>,
    ttl: Option<Scalar>,
}

/// `publish: ["a.>"]` (allow list) or `publish: { allow: [..], deny: [..] }`.
#[derive(Debug, Default)]
pub struct RuleSpec {
    pub allow: Vec<Spanned<String>>,
    pub deny: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleMap {
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub account: Option<Spanned<String>>,
    /// The stream lives in this leafnode's own JetStream (its domain), not in the regions'.
    pub leafnode: Option<Spanned<String>>,
    #[serde(default)]
    pub subjects: Vec<Spanned<String>>,
    pub retention: Option<Spanned<Retention>>,
    pub storage: Option<Spanned<Storage>>,
    pub replicas: Option<Spanned<u64>>,
    pub max_age: Option<Spanned<Scalar>>,
    pub max_bytes: Option<Spanned<Scalar>>,
    pub max_msgs: Option<Spanned<i64>>,
    pub max_msgs_per_subject: Option<Spanned<i64>>,
    pub max_msg_size: Option<Spanned<Scalar>>,
    pub discard: Option<Spanned<Discard>>,
    pub duplicate_window: Option<Spanned<Scalar>>,
    pub placement: Option<Spanned<PlacementSpec>>,
    pub mirror: Option<Spanned<SourceSpec>>,
    #[serde(default)]
    pub sources: Vec<Spanned<SourceSpec>>,
    #[serde(default)]
    pub deny_delete: bool,
    #[serde(default)]
    pub deny_purge: bool,
    #[serde(default)]
    pub allow_rollup: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: Spanned<String>,
    pub filter_subject: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub durable: Spanned<String>,
    pub stream: Spanned<String>,
    pub deliver_subject: Option<Spanned<String>>,
    pub deliver_group: Option<Spanned<String>>,
    pub filter_subject: Option<Spanned<String>>,
    #[serde(default)]
    pub filter_subjects: Vec<Spanned<String>>,
    pub ack_policy: Option<Spanned<AckPolicy>>,
    pub ack_wait: Option<Spanned<Scalar>>,
    pub max_deliver: Option<Spanned<i64>>,
    #[serde(default)]
    pub backoff: Vec<Spanned<Scalar>>,
    pub deliver_policy: Option<Spanned<DeliverPolicy>>,
    pub opt_start_time: Option<Spanned<String>>,
    pub opt_start_seq: Option<Spanned<u64>>,
    pub replay_policy: Option<Spanned<ReplayPolicy>>,
    pub max_ack_pending: Option<Spanned<i64>>,
    pub max_waiting: Option<Spanned<i64>>,
    pub rate_limit_bps: Option<Spanned<u64>>,
    #[serde(default)]
    pub flow_control: Option<Spanned<bool>>,
    pub idle_heartbeat: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvSpec {
    pub account: Option<Spanned<String>>,
    pub history: Option<Spanned<u64>>,
    pub ttl: Option<Spanned<Scalar>>,
    pub replicas: Option<Spanned<u64>>,
    pub max_bytes: Option<Spanned<Scalar>>,
    pub max_value_size: Option<Spanned<Scalar>>,
    pub storage: Option<Spanned<Storage>>,
    pub placement: Option<Spanned<PlacementSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreSpec {
    pub account: Option<Spanned<String>>,
    pub ttl: Option<Spanned<Scalar>>,
    pub replicas: Option<Spanned<u64>>,
    pub max_bytes: Option<Spanned<Scalar>>,
    pub storage: Option<Spanned<Storage>>,
    pub placement: Option<Spanned<PlacementSpec>>,
}

/// An application: the user it logs in as, where it connects, and what it does there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// `user` or `ACCOUNT/user`: a declared user of an application account (none in a topology
    /// without accounts).
    pub user: Option<Spanned<String>>,
    /// The region or leafnode it connects at.
    pub at: Spanned<String>,
    /// The prefix of its reply subjects (default `_INBOX`).
    pub inbox: Option<Spanned<String>>,
    /// Subjects it publishes.
    #[serde(default)]
    pub publish: Vec<Spanned<String>>,
    /// Subjects it subscribes to.
    #[serde(default)]
    pub subscribe: Vec<Spanned<String>>,
    /// Subjects it sends requests on (and waits for the reply).
    #[serde(default)]
    pub requests: Vec<Spanned<String>>,
    /// Subjects of the requests it answers.
    #[serde(default)]
    pub serves: Vec<Spanned<String>>,
    /// The consumers it reads, `STREAM/durable` (pull or push, as the consumer is declared).
    #[serde(default)]
    pub consumers: Vec<Spanned<String>>,
    /// KV buckets it uses: `read` or `write` (write includes read).
    #[serde(default)]
    pub kv: Named<Spanned<StoreAccess>>,
    /// Object stores it uses: `read` or `write` (write includes read and delete).
    #[serde(default)]
    pub object_stores: Named<Spanned<StoreAccess>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreAccess {
    Read,
    Write,
}

/// One declared message: who publishes it where, and where it must and must not arrive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    pub publish: Spanned<EndpointSpec>,
    pub reaches: Option<Spanned<Vec<FlowTargetSpec>>>,
    #[serde(default)]
    pub never: Vec<FlowTargetSpec>,
}

/// A client: `user` (or `ACCOUNT/user`) connected at a region or leafnode, on a subject.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub user: Option<Spanned<String>>,
    pub at: Spanned<String>,
    pub subject: Spanned<String>,
}

/// Exactly one of: a stream that stores the message, a consumer (`STREAM/durable`) that has it
/// pending (and, with `by`, the application that reads and acknowledges it there), or a
/// subscriber that receives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowTargetSpec {
    pub stream: Option<Spanned<String>>,
    pub consumer: Option<Spanned<String>>,
    /// With `consumer`: the application that reads it (`never`: that cannot read it).
    pub by: Option<Spanned<String>>,
    pub subscriber: Option<Spanned<EndpointSpec>>,
}

/// A scalar read as text whether it was written as a number or a string (sizes, durations).
#[derive(Debug, Clone)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string such as 10GB or 30s")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for NodesSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodesSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a node count or a list of nodes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodesSpec, E> {
                Ok(NodesSpec::Count(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NodesSpec, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(NodesSpec::List)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for JetStreamSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JetStreamSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a map of JetStream limits")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<JetStreamSpec, E> {
                Ok(JetStreamSpec::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<JetStreamSpec, A::Error> {
                LimitsSpec::deserialize(MapAccessDeserializer::new(map)).map(JetStreamSpec::Limits)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RuleSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of subjects or a map with `allow` and `deny` lists")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RuleSpec, A::Error> {
                let allow = Vec::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(RuleSpec { allow, deny: Vec::new() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RuleSpec, A::Error> {
                let RuleMap { allow, deny } = RuleMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RuleSpec { allow, deny })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for TlsListenerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TlsListenerSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or `{ verify: true }`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TlsListenerSpec, E> {
                Ok(TlsListenerSpec { enabled: v, verify: false })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TlsListenerSpec, A::Error> {
                let m = TlsListenerMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(TlsListenerSpec {
                    enabled: true,
                    verify: m.verify,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for AccountJetStreamSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AccountJetStreamSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a map of the account's JetStream limits")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AccountJetStreamSpec, E> {
                Ok(AccountJetStreamSpec::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AccountJetStreamSpec, A::Error> {
                AccountLimitsSpec::deserialize(MapAccessDeserializer::new(map)).map(|l| AccountJetStreamSpec::Limits(Box::new(l)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ResponsesSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResponsesSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true or `{ max: N, ttl: DURATION }`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ResponsesSpec, E> {
                if v {
                    Ok(ResponsesSpec { max: None, ttl: None })
                } else {
                    Err(E::custom("leave `allow_responses` out instead of setting it to false"))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ResponsesSpec, A::Error> {
                let m = ResponsesMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(ResponsesSpec { max: m.max, ttl: m.ttl })
            }
        }
        d.deserialize_any(V)
    }
}
