//! The serde mirror of the topology file: exactly what may be written, with the position of every
//! name and value that a later check may need to point at. Short forms (`nodes: 3`,
//! `jetstream: true`, `publish: [..]`) are accepted beside the explicit ones.

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer, value::SeqAccessDeserializer};
use serde_saphyr::Spanned;
use std::borrow::Cow;
use std::fmt;

use crate::model::{AckPolicy, DeliverPolicy, Discard, PersistMode, PriorityPolicy, ReplayPolicy, Retention, Storage};

pub type Named<T> = IndexMap<Spanned<String>, T>;

/// A notif-infra topology: the regions, leafnodes, security, JetStream objects, applications
/// and flows of one NATS system.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "notif-infra topology")]
pub struct TopologyFile {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub defaults: Defaults,
    #[schemars(with = "std::collections::BTreeMap<String, RegionSpec>")]
    pub regions: Named<RegionSpec>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, LeafnodeSpec>")]
    pub leafnodes: Named<LeafnodeSpec>,
    #[schemars(with = "Option<TlsSpec>")]
    pub tls: Option<Spanned<TlsSpec>>,
    #[schemars(with = "Option<OperatorSpec>")]
    pub operator: Option<Spanned<OperatorSpec>>,
    #[schemars(with = "Option<KubernetesSpec>")]
    pub kubernetes: Option<Spanned<KubernetesSpec>>,
    #[schemars(with = "Option<ComposeSpec>")]
    pub compose: Option<Spanned<ComposeSpec>>,
    /// The nats-server every server runs: a version pins the binary (local), the image tag
    /// (compose, k8s); changing it is a rolling upgrade.
    #[schemars(with = "Option<NatsServerSpec>")]
    pub nats_server: Option<Spanned<NatsServerSpec>>,
    #[schemars(with = "Option<WireGuardSpec>")]
    pub wireguard: Option<Spanned<WireGuardSpec>>,
    /// How the ssh target reaches every host, unless a node says otherwise.
    #[schemars(with = "Option<SshSpec>")]
    pub ssh: Option<Spanned<SshSpec>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, AccountSpec>")]
    pub accounts: Named<AccountSpec>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, StreamSpec>")]
    pub streams: Named<StreamSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, KvSpec>")]
    pub kv: Named<KvSpec>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, ObjectStoreSpec>")]
    pub object_stores: Named<ObjectStoreSpec>,
    /// The applications that use the system: who they log in as and what they do, from which
    /// their users' permissions are derived.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, AppSpec>")]
    pub apps: Named<AppSpec>,
    /// Traffic the system must carry (`reaches`) and must never carry (`never`).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, FlowSpec>")]
    pub flows: Named<FlowSpec>,
    /// What `monitor` serves and the alert rules `render` writes.
    #[schemars(with = "Option<MonitoringSpec>")]
    pub monitoring: Option<Spanned<MonitoringSpec>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSpec {
    /// Where `monitor` serves `/metrics` (and Prometheus scrapes it).
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// How often `monitor` reads the servers and sends its probes; Prometheus scrapes as often.
    #[schemars(with = "Option<Scalar>")]
    pub interval: Option<Spanned<Scalar>>,
    /// How long a condition lasts before its alert fires.
    #[schemars(with = "Option<Scalar>")]
    pub alert_after: Option<Spanned<Scalar>>,
    /// A JetStream store (file or memory) above this share of its limit alerts.
    #[schemars(with = "Option<u8>")]
    pub store_full_percent: Option<Spanned<u8>>,
    /// Pending messages above which a consumer alerts, unless `consumers` names it.
    #[schemars(with = "Option<u64>")]
    pub consumer_pending: Option<Spanned<u64>>,
    /// Per consumer (`STREAM/durable`): its own pending threshold.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, u64>")]
    pub consumers: Named<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub ports: PortsSpec,
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    #[serde(default)]
    pub jetstream: JetStreamDefaults,
    #[schemars(with = "Option<Scalar>")]
    pub max_payload: Option<Spanned<Scalar>>,
    pub lame_duck: Option<LameDuckSpec>,
    #[serde(default)]
    pub logging: LoggingSpec,
    /// How many servers of each remote region a server's gateway block lists.
    #[schemars(with = "Option<u32>")]
    pub gateway_seeds: Option<Spanned<u32>>,
    /// Route compression between the nodes of a region.
    #[schemars(with = "Option<Compression>")]
    pub compression: Option<Spanned<Compression>>,
    /// Each node advertises the address its peers dial (its host) to clients, routes and gateways.
    #[schemars(with = "Option<bool>")]
    pub advertise: Option<Spanned<bool>>,
    #[schemars(with = "Option<u64>")]
    pub max_connections: Option<Spanned<u64>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_control_line: Option<Spanned<Scalar>>,
    /// The user a client without credentials is logged in as (static accounts).
    #[schemars(with = "Option<String>")]
    pub no_auth_user: Option<Spanned<String>>,
}

/// nats-server's route compression modes. `s2` is read only to explain that nats-server
/// refuses it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
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

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortsSpec {
    #[schemars(with = "Option<u16>")]
    pub client: Option<Spanned<u16>>,
    #[schemars(with = "Option<u16>")]
    pub cluster: Option<Spanned<u16>>,
    #[schemars(with = "Option<u16>")]
    pub gateway: Option<Spanned<u16>>,
    #[schemars(with = "Option<u16>")]
    pub leafnode: Option<Spanned<u16>>,
    #[schemars(with = "Option<u16>")]
    pub monitor: Option<Spanned<u16>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetStreamDefaults {
    #[schemars(with = "Option<String>")]
    pub store_dir: Option<Spanned<String>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_memory_store: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_file_store: Option<Spanned<Scalar>>,
    /// The super-cluster's JetStream domain (one for every region: the meta group spans them).
    #[schemars(with = "Option<String>")]
    pub domain: Option<Spanned<String>>,
    /// Encryption at rest on every JetStream server.
    #[schemars(with = "Option<EncryptionSpec>")]
    pub encryption: Option<Spanned<EncryptionSpec>>,
}

/// `{ cipher: chachapoly | aes, key: ${VAR} }`: the key is read from the servers' environment.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSpec {
    #[schemars(with = "Option<Cipher>")]
    pub cipher: Option<Spanned<Cipher>>,
    #[schemars(with = "String")]
    pub key: Spanned<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Cipher {
    Chachapoly,
    Aes,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    #[schemars(with = "Option<Scalar>")]
    pub max_memory_store: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_file_store: Option<Spanned<Scalar>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LameDuckSpec {
    #[schemars(with = "Scalar")]
    pub duration: Spanned<Scalar>,
    #[schemars(with = "Option<Scalar>")]
    pub grace_period: Option<Spanned<Scalar>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggingSpec {
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    pub time: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    #[schemars(with = "NodesSpec")]
    pub nodes: Spanned<NodesSpec>,
    #[schemars(with = "Option<JetStreamSpec>")]
    pub jetstream: Option<Spanned<JetStreamSpec>>,
    /// The region's nodes do not pass interest learned from one leafnode to the others
    /// (nats-server 2.12+; a restart).
    #[schemars(with = "Option<bool>")]
    pub isolate_leafnode_interest: Option<Spanned<bool>>,
}

/// `nodes: 3` (named `<region>-1..3`, each reached by its name) or the explicit list.
#[derive(Debug)]
pub enum NodesSpec {
    Count(u64),
    List(Vec<NodeSpec>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub ports: PortsSpec,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub tags: Vec<Spanned<String>>,
    #[schemars(with = "Option<NodeWireGuardSpec>")]
    pub wireguard: Option<Spanned<NodeWireGuardSpec>>,
    #[schemars(with = "Option<SshSpec>")]
    pub ssh: Option<Spanned<SshSpec>>,
}

/// A host's SSH login and layout (top level: the defaults of every host).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Where to log in (a node only; default: its WireGuard endpoint, otherwise its host).
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// A private key file (otherwise the SSH agent).
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub known_hosts: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub config_dir: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub data_dir: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub log_dir: Option<Spanned<String>>,
    /// The nats-server binary on the host.
    #[schemars(with = "Option<String>")]
    pub nats_server: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub env: IndexMap<Spanned<String>, Spanned<String>>,
}

/// A full WireGuard mesh between the hosts whose nodes give a VPN address.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireGuardSpec {
    /// The VPN network, e.g. `10.0.0.0/16`.
    #[schemars(with = "String")]
    pub network: Spanned<String>,
    /// Listen port of hosts that give none (default 51820).
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// A pre-shared key per pair of hosts (post-quantum hardening).
    #[serde(default)]
    pub preshared_keys: bool,
    #[schemars(with = "Option<u16>")]
    pub keepalive: Option<Spanned<u16>>,
}

/// A node's place in the mesh: its VPN address (which peers then dial) and its public endpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeWireGuardSpec {
    #[schemars(with = "String")]
    pub address: Spanned<String>,
    #[schemars(with = "String")]
    pub endpoint: Spanned<String>,
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// The interface on the host (default `wg0`).
    #[schemars(with = "Option<String>")]
    pub interface: Option<Spanned<String>>,
}

/// `jetstream: true` or `jetstream: { max_memory_store: .., max_file_store: .. }`.
#[derive(Debug)]
pub enum JetStreamSpec {
    Enabled(bool),
    Limits(LimitsSpec),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeafnodeSpec {
    #[schemars(with = "String")]
    pub hub: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub account: Option<Spanned<String>>,
    /// What the leaf may receive from the hub (an allow list: its link user's subscribe rights).
    #[schemars(with = "Option<Vec<String>>")]
    pub imports: Option<Vec<Spanned<String>>>,
    /// What the leaf may send into the hub (an allow list: its link user's publish rights).
    #[schemars(with = "Option<Vec<String>>")]
    pub exports: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny_import: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny_export: Vec<Spanned<String>>,
    /// The address the leaf's own client and monitoring listeners bind (e.g. `127.0.0.1` for an
    /// edge whose clients run on the same host), on real hosts.
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// How long the leaf waits before dialling its hub again after losing it (it always does).
    #[schemars(with = "Option<Scalar>")]
    pub reconnect: Option<Spanned<Scalar>>,
    pub jetstream: Option<LeafJetStreamSpec>,
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub ports: PortsSpec,
    #[schemars(with = "Option<SshSpec>")]
    pub ssh: Option<Spanned<SshSpec>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeafJetStreamSpec {
    #[schemars(with = "Option<String>")]
    pub domain: Option<Spanned<String>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_memory_store: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_file_store: Option<Spanned<Scalar>>,
}

/// Kubernetes manifests: where and with what the StatefulSets run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSpec {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// Shorthand: the CPU request.
    #[schemars(with = "Option<Scalar>")]
    pub cpu: Option<Spanned<Scalar>>,
    /// Shorthand: the memory request and limit.
    #[schemars(with = "Option<Scalar>")]
    pub memory: Option<Spanned<Scalar>>,
    /// Requests and limits written out (instead of `cpu`/`memory`).
    #[schemars(with = "Option<ResourcesSpec>")]
    pub resources: Option<Spanned<ResourcesSpec>>,
    #[schemars(with = "Option<Scalar>")]
    pub storage: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<String>")]
    pub storage_class: Option<Spanned<String>>,
    /// How gateways and leafnode listeners are exposed to other regions.
    #[schemars(with = "Option<ServiceType>")]
    pub service_type: Option<Spanned<ServiceType>>,
    /// The type of each region's client Service (default ClusterIP: inside the cluster only).
    #[schemars(with = "Option<ServiceType>")]
    pub client_service: Option<Spanned<ServiceType>>,
    /// `required`: never two servers of a region on one Kubernetes node; `preferred` (default).
    #[schemars(with = "Option<AntiAffinity>")]
    pub anti_affinity: Option<Spanned<AntiAffinity>>,
    /// A topology key the pods of a region spread evenly across (e.g. `topology.kubernetes.io/zone`).
    #[schemars(with = "Option<String>")]
    pub spread_across: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    #[serde(default)]
    pub requests: ResourceAmounts,
    #[serde(default)]
    pub limits: ResourceAmounts,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceAmounts {
    #[schemars(with = "Option<Scalar>")]
    pub cpu: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub memory: Option<Spanned<Scalar>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinity {
    Required,
    Preferred,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsServerSpec {
    #[schemars(with = "String")]
    pub version: Spanned<String>,
}

/// How the compose target runs the servers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeSpec {
    /// The image (`--image`/`NATS_IMAGE` still win, for a one-off run).
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    LoadBalancer,
    NodePort,
    ClusterIP,
}

/// Which listeners speak TLS; each is `true` or `{ verify: true }` (mutual TLS).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[schemars(with = "Option<TlsListenerSpec>")]
    pub client: Option<Spanned<TlsListenerSpec>>,
    #[schemars(with = "Option<TlsListenerSpec>")]
    pub cluster: Option<Spanned<TlsListenerSpec>>,
    #[schemars(with = "Option<TlsListenerSpec>")]
    pub gateway: Option<Spanned<TlsListenerSpec>>,
    #[schemars(with = "Option<TlsListenerSpec>")]
    pub leafnode: Option<Spanned<TlsListenerSpec>>,
    /// Monitoring over https (served with the client listener's certificate).
    #[schemars(with = "Option<bool>")]
    pub monitor: Option<Spanned<bool>>,
}

#[derive(Debug)]
pub struct TlsListenerSpec {
    pub enabled: bool,
    pub verify: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TlsListenerMap {
    #[serde(default)]
    verify: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Option<ResolverKind>")]
    pub resolver: Option<Spanned<ResolverKind>>,
    /// Sign accounts with a signing key instead of the operator's identity key.
    #[serde(default)]
    pub signing_key: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolverKind {
    Memory,
    Full,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub system: Option<Spanned<bool>>,
    #[schemars(with = "Option<AccountJetStreamSpec>")]
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
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountLimitsSpec {
    #[schemars(with = "Option<Scalar>")]
    pub max_memory: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_file: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<i64>")]
    pub max_streams: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub max_consumers: Option<Spanned<i64>>,
}

/// `stream: subject` or `service: subject`, public or `to:` named accounts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    #[schemars(with = "Option<String>")]
    pub stream: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub service: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub to: Vec<Spanned<String>>,
}

/// `stream: subject` or `service: subject` exported by account `from`, seen locally as `to`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    #[schemars(with = "Option<String>")]
    pub stream: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub service: Option<Spanned<String>>,
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub to: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    #[schemars(with = "String")]
    pub user: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub password: Option<Spanned<String>>,
    #[serde(default)]
    pub permissions: PermissionsSpec,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_connection_types: Vec<Spanned<String>>,
    /// A bearer token: the JWT alone authenticates (operator mode, only when asked).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub bearer: Option<Spanned<bool>>,
    /// Issue a client certificate for this user (for `tls.client.verify`).
    #[serde(default)]
    pub client_cert: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsSpec {
    pub publish: Option<RuleSpec>,
    pub subscribe: Option<RuleSpec>,
    /// Lets the user reply to requests it received: `true` (one reply) or `{ max: N, ttl: 1m }`.
    #[schemars(with = "Option<ResponsesSpec>")]
    pub allow_responses: Option<Spanned<ResponsesSpec>>,
}

#[derive(Debug)]
pub struct ResponsesSpec {
    pub max: Option<u64>,
    pub ttl: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleMap {
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    #[schemars(with = "Option<String>")]
    pub account: Option<Spanned<String>>,
    /// The stream lives in this leafnode's own JetStream (its domain), not in the regions'.
    #[schemars(with = "Option<String>")]
    pub leafnode: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub subjects: Vec<Spanned<String>>,
    #[schemars(with = "Option<Retention>")]
    pub retention: Option<Spanned<Retention>>,
    #[schemars(with = "Option<Storage>")]
    pub storage: Option<Spanned<Storage>>,
    #[schemars(with = "Option<u64>")]
    pub replicas: Option<Spanned<u64>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_age: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_bytes: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<i64>")]
    pub max_msgs: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub max_msgs_per_subject: Option<Spanned<i64>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_msg_size: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Discard>")]
    pub discard: Option<Spanned<Discard>>,
    #[schemars(with = "Option<Scalar>")]
    pub duplicate_window: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<PlacementSpec>")]
    pub placement: Option<Spanned<PlacementSpec>>,
    #[schemars(with = "Option<SourceSpec>")]
    pub mirror: Option<Spanned<SourceSpec>>,
    #[serde(default)]
    #[schemars(with = "Vec<SourceSpec>")]
    pub sources: Vec<Spanned<SourceSpec>>,
    #[serde(default)]
    pub deny_delete: bool,
    #[serde(default)]
    pub deny_purge: bool,
    #[serde(default)]
    pub allow_rollup: bool,
    /// Per-message TTLs (`Nats-TTL` header); once on it cannot be turned off (nats-server 2.11+).
    #[schemars(with = "Option<bool>")]
    pub allow_msg_ttl: Option<Spanned<bool>>,
    /// How long the marker left when a subject's last message ages out stays (needs `allow_msg_ttl`).
    #[schemars(with = "Option<Scalar>")]
    pub subject_delete_marker_ttl: Option<Spanned<Scalar>>,
    /// Atomic batch publish (nats-server 2.12+).
    #[schemars(with = "Option<bool>")]
    pub allow_atomic: Option<Spanned<bool>>,
    /// A counter stream (`Nats-Incr`), fixed when the stream is created (nats-server 2.12+).
    #[schemars(with = "Option<bool>")]
    pub allow_msg_counter: Option<Spanned<bool>>,
    /// Scheduled messages; once on it cannot be turned off (nats-server 2.12+).
    #[schemars(with = "Option<bool>")]
    pub allow_msg_schedules: Option<Spanned<bool>>,
    /// Fast batch publish (nats-server 2.14+).
    #[schemars(with = "Option<bool>")]
    pub allow_batched: Option<Spanned<bool>>,
    /// `default` or `async` (acknowledged before flushed), fixed when the stream is created.
    #[schemars(with = "Option<PersistMode>")]
    pub persist_mode: Option<Spanned<PersistMode>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    #[schemars(with = "Option<String>")]
    pub region: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub tags: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub filter_subject: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    #[schemars(with = "String")]
    pub durable: Spanned<String>,
    #[schemars(with = "String")]
    pub stream: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub deliver_subject: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub deliver_group: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub filter_subject: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub filter_subjects: Vec<Spanned<String>>,
    #[schemars(with = "Option<AckPolicy>")]
    pub ack_policy: Option<Spanned<AckPolicy>>,
    #[schemars(with = "Option<Scalar>")]
    pub ack_wait: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<i64>")]
    pub max_deliver: Option<Spanned<i64>>,
    #[serde(default)]
    #[schemars(with = "Vec<Scalar>")]
    pub backoff: Vec<Spanned<Scalar>>,
    #[schemars(with = "Option<DeliverPolicy>")]
    pub deliver_policy: Option<Spanned<DeliverPolicy>>,
    #[schemars(with = "Option<String>")]
    pub opt_start_time: Option<Spanned<String>>,
    #[schemars(with = "Option<u64>")]
    pub opt_start_seq: Option<Spanned<u64>>,
    #[schemars(with = "Option<ReplayPolicy>")]
    pub replay_policy: Option<Spanned<ReplayPolicy>>,
    #[schemars(with = "Option<i64>")]
    pub max_ack_pending: Option<Spanned<i64>>,
    #[schemars(with = "Option<i64>")]
    pub max_waiting: Option<Spanned<i64>>,
    #[schemars(with = "Option<u64>")]
    pub rate_limit_bps: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub flow_control: Option<Spanned<bool>>,
    #[schemars(with = "Option<Scalar>")]
    pub idle_heartbeat: Option<Spanned<Scalar>>,
    /// Pull consumers: the priority groups its clients pull in (nats-server 2.11+).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub priority_groups: Vec<Spanned<String>>,
    /// How the priority groups share the messages: `overflow`, `pinned_client` or `prioritized`.
    #[schemars(with = "Option<PriorityPolicy>")]
    pub priority_policy: Option<Spanned<PriorityPolicy>>,
    /// How long a pinned client keeps its pin without pulling (`pinned_client`).
    #[schemars(with = "Option<Scalar>")]
    pub priority_timeout: Option<Spanned<Scalar>>,
    /// The consumer delivers nothing until this RFC 3339 time.
    #[schemars(with = "Option<String>")]
    pub pause_until: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvSpec {
    #[schemars(with = "Option<String>")]
    pub account: Option<Spanned<String>>,
    #[schemars(with = "Option<u64>")]
    pub history: Option<Spanned<u64>>,
    #[schemars(with = "Option<Scalar>")]
    pub ttl: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<u64>")]
    pub replicas: Option<Spanned<u64>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_bytes: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_value_size: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Storage>")]
    pub storage: Option<Spanned<Storage>>,
    #[schemars(with = "Option<PlacementSpec>")]
    pub placement: Option<Spanned<PlacementSpec>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreSpec {
    #[schemars(with = "Option<String>")]
    pub account: Option<Spanned<String>>,
    #[schemars(with = "Option<Scalar>")]
    pub ttl: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<u64>")]
    pub replicas: Option<Spanned<u64>>,
    #[schemars(with = "Option<Scalar>")]
    pub max_bytes: Option<Spanned<Scalar>>,
    #[schemars(with = "Option<Storage>")]
    pub storage: Option<Spanned<Storage>>,
    #[schemars(with = "Option<PlacementSpec>")]
    pub placement: Option<Spanned<PlacementSpec>>,
}

/// An application: the user it logs in as, where it connects, and what it does there.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// `user` or `ACCOUNT/user`: a declared user of an application account (none in a topology
    /// without accounts).
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// The region or leafnode it connects at.
    #[schemars(with = "String")]
    pub at: Spanned<String>,
    /// The prefix of its reply subjects (default `_INBOX`).
    #[schemars(with = "Option<String>")]
    pub inbox: Option<Spanned<String>>,
    /// Subjects it publishes.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub publish: Vec<Spanned<String>>,
    /// Subjects it subscribes to.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub subscribe: Vec<Spanned<String>>,
    /// Subjects it sends requests on (and waits for the reply).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub requests: Vec<Spanned<String>>,
    /// Subjects of the requests it answers.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub serves: Vec<Spanned<String>>,
    /// The consumers it reads, `STREAM/durable` (pull or push, as the consumer is declared).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub consumers: Vec<Spanned<String>>,
    /// KV buckets it uses: `read` or `write` (write includes read).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, StoreAccess>")]
    pub kv: Named<Spanned<StoreAccess>>,
    /// Object stores it uses: `read` or `write` (write includes read and delete).
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, StoreAccess>")]
    pub object_stores: Named<Spanned<StoreAccess>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreAccess {
    Read,
    Write,
}

/// One declared message: who publishes it where, and where it must and must not arrive.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    #[schemars(with = "EndpointSpec")]
    pub publish: Spanned<EndpointSpec>,
    #[schemars(with = "Option<Vec<FlowTargetSpec>>")]
    pub reaches: Option<Spanned<Vec<FlowTargetSpec>>>,
    #[serde(default)]
    pub never: Vec<FlowTargetSpec>,
    /// The regions and leafnodes the message must pass through on its way (proven by
    /// `verify --flows --trace` from the servers' own trace of the message).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub via: Vec<Spanned<String>>,
}

/// A client: `user` (or `ACCOUNT/user`) connected at a region or leafnode, on a subject.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    #[schemars(with = "String")]
    pub at: Spanned<String>,
    #[schemars(with = "String")]
    pub subject: Spanned<String>,
}

/// Exactly one of: a stream that stores the message, a consumer (`STREAM/durable`) that has it
/// pending (and, with `by`, the application that reads and acknowledges it there), or a
/// subscriber that receives it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowTargetSpec {
    #[schemars(with = "Option<String>")]
    pub stream: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub consumer: Option<Spanned<String>>,
    /// With `consumer`: the application that reads it (`never`: that cannot read it).
    #[schemars(with = "Option<String>")]
    pub by: Option<Spanned<String>>,
    #[schemars(with = "Option<EndpointSpec>")]
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

// The short forms, as JSON Schema sees them: each is one of its spellings.

/// A schema that accepts `short` (the short form) or `long`.
fn short_or_long(short: serde_json::Value, long: Schema, description: &str) -> Schema {
    json_schema!({ "anyOf": [short, long], "description": description })
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "integer"], "description": "A number, or a string with a unit (10GB, 30s)" })
    }
}

impl JsonSchema for NodesSpec {
    fn schema_name() -> Cow<'static, str> {
        "Nodes".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let list = g.subschema_for::<Vec<NodeSpec>>();
        short_or_long(
            serde_json::json!({ "type": "integer", "minimum": 1 }),
            list,
            "A node count (nodes named <region>-1..N) or the list of nodes",
        )
    }
}

impl JsonSchema for JetStreamSpec {
    fn schema_name() -> Cow<'static, str> {
        "JetStream".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        short_or_long(
            serde_json::json!({ "type": "boolean" }),
            g.subschema_for::<LimitsSpec>(),
            "true, false or the JetStream limits",
        )
    }
}

impl JsonSchema for AccountJetStreamSpec {
    fn schema_name() -> Cow<'static, str> {
        "AccountJetStream".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        short_or_long(
            serde_json::json!({ "type": "boolean" }),
            g.subschema_for::<AccountLimitsSpec>(),
            "true, false or the account's JetStream limits",
        )
    }
}

impl JsonSchema for TlsListenerSpec {
    fn schema_name() -> Cow<'static, str> {
        "TlsListener".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        short_or_long(
            serde_json::json!({ "type": "boolean" }),
            g.subschema_for::<TlsListenerMap>(),
            "true, false or `{ verify: true }`",
        )
    }
}

impl JsonSchema for ResponsesSpec {
    fn schema_name() -> Cow<'static, str> {
        "Responses".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        short_or_long(
            serde_json::json!({ "const": true }),
            g.subschema_for::<ResponsesMap>(),
            "true (one reply) or `{ max: N, ttl: DURATION }`",
        )
    }
}

impl JsonSchema for RuleSpec {
    fn schema_name() -> Cow<'static, str> {
        "Rule".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let subjects = g.subschema_for::<Vec<String>>();
        short_or_long(
            serde_json::to_value(subjects).expect("a schema is JSON"),
            g.subschema_for::<RuleMap>(),
            "A list of subjects (allowed) or `{ allow: [..], deny: [..] }`",
        )
    }
}

/// The JSON Schema of the topology file, from the types the parser reads it with.
pub(super) fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<TopologyFile>();
    serde_json::to_value(schema).expect("a schema is JSON")
}
