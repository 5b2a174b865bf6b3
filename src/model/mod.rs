//! The validated topology: regions (NATS clusters), their nodes, leafnode servers and accounts.
//! Everything here has passed validation; it holds no YAML and does no I/O.

mod apps;
mod flows;
mod jetstream;
mod security;

pub use apps::*;
pub use flows::*;
pub use jetstream::*;
pub use security::*;

use serde::Serialize;
use std::time::Duration;

/// A position in the topology file (1-based); kept so later checks can still point at the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub settings: ServerSettings,
    pub regions: Vec<Region>,
    pub leafnodes: Vec<Leafnode>,
    pub accounts: Vec<Account>,
    pub jetstream: JetStreamObjects,
    /// The applications: who logs in where and what it does there.
    pub apps: Vec<App>,
    /// Declared traffic, proven statically at validation and live by `verify --flows`.
    pub flows: Vec<Flow>,
    pub tls: Tls,
    /// `Some` in operator mode: accounts and users are JWTs; `None`: accounts in the config.
    pub operator: Option<Operator>,
    /// `Some` when the topology is also deployed as Kubernetes manifests.
    pub kubernetes: Option<Kubernetes>,
    /// The image the compose target runs, when the topology names one.
    pub compose_image: Option<String>,
    /// The nats-server version every server runs (`2.14.6`), when the topology pins one.
    pub nats_server_version: Option<String>,
    /// `Some` when hosts are joined by a WireGuard mesh.
    pub wireguard: Option<WireGuard>,
    pub monitoring: Monitoring,
}

/// What `monitor` serves and what the alert rules watch for.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    pub listen: std::net::SocketAddr,
    pub interval: Duration,
    pub alert_after: Duration,
    pub store_full_percent: u8,
    pub consumer_pending: u64,
    /// Pending thresholds of the consumers the topology names, by (stream, durable).
    pub consumer_thresholds: std::collections::BTreeMap<(String, String), u64>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 7777)),
            interval: Duration::from_secs(5),
            alert_after: Duration::from_secs(30),
            store_full_percent: 90,
            consumer_pending: 1000,
            consumer_thresholds: Default::default(),
        }
    }
}

impl Monitoring {
    pub fn pending_threshold(&self, stream: &str, durable: &str) -> u64 {
        self.consumer_thresholds
            .get(&(stream.to_string(), durable.to_string()))
            .copied()
            .unwrap_or(self.consumer_pending)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireGuard {
    pub network: std::net::Ipv4Addr,
    pub prefix: u8,
    /// Listen port of hosts that give none.
    pub port: u16,
    pub preshared_keys: bool,
    pub keepalive: Option<u16>,
}

/// A host's place in the WireGuard mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeer {
    pub address: std::net::Ipv4Addr,
    /// The interface name on the host (`wg-quick up <config_dir>/wireguard/<interface>.conf`).
    pub interface: String,
    /// Its public address (name or IP), where the other hosts send to.
    pub endpoint: String,
    /// Its listen port; 0 for the mesh's default.
    pub port: u16,
}

impl WireGuard {
    pub fn port_of(&self, peer: &WgPeer) -> u16 {
        if peer.port == 0 { self.port } else { peer.port }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubernetes {
    pub namespace: String,
    pub image: String,
    /// Kubernetes quantities, as written.
    pub requests: Resources,
    pub limits: Resources,
    pub storage: String,
    /// Never two servers of a region on one Kubernetes node (otherwise only preferred).
    pub anti_affinity_required: bool,
    /// A topology key the pods of a region spread evenly across.
    pub spread_across: Option<String>,
    /// The type of each region's client Service.
    pub client_service: String,
    pub storage_class: Option<String>,
    /// How gateways and leafnode listeners are exposed to other regions.
    pub service_type: String,
}

/// CPU and memory as Kubernetes quantities; `None` leaves it unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    pub client: u16,
    pub cluster: u16,
    pub gateway: u16,
    pub leafnode: u16,
    pub monitor: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            client: 4222,
            cluster: 6222,
            gateway: 7222,
            leafnode: 7422,
            monitor: 8222,
        }
    }
}

/// Settings every server shares unless a region or node says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Address the servers listen on (the interface, not the address peers dial).
    pub listen_host: String,
    pub max_payload: Option<u64>,
    pub lame_duck: Option<LameDuck>,
    pub logging: Logging,
    pub jetstream_store_dir: String,
    pub jetstream_limits: JetStreamLimits,
    /// The JetStream domain of every region (leafnodes keep their own).
    pub jetstream_domain: Option<String>,
    /// Encryption at rest on every server that runs JetStream.
    pub encryption: Option<Encryption>,
    /// How many servers of each remote region a gateway block lists; nats-server learns the
    /// rest by gossip.
    pub gateway_seeds: usize,
    /// Route compression mode, as nats-server names it.
    pub compression: Option<&'static str>,
    /// Nodes advertise their own host to clients, routes and gateways.
    pub advertise: bool,
    pub max_connections: Option<u64>,
    pub max_control_line: Option<u64>,
    /// `ACCOUNT/user` a client without credentials is logged in as.
    pub no_auth_user: Option<(String, String)>,
}

/// JetStream encryption at rest: the cipher, and the variable the servers read the key from
/// (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    /// `chachapoly` or `aes`, as nats-server names them.
    pub cipher: &'static str,
    pub key_var: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LameDuck {
    pub duration: Duration,
    pub grace_period: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    pub debug: bool,
    pub trace: bool,
    pub time: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JetStreamLimits {
    pub max_memory_store: Option<u64>,
    pub max_file_store: Option<u64>,
}

/// A region is one NATS cluster; several regions form a super-cluster through gateways.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub nodes: Vec<Node>,
    /// `Some` when JetStream runs on this region's nodes, with its store limits.
    pub jetstream: Option<JetStreamLimits>,
    /// Its nodes keep what one leafnode is interested in from the others.
    pub isolate_leafnode_interest: bool,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The name or address other servers dial to reach this node (its VPN address over WireGuard).
    pub host: String,
    pub ports: Ports,
    pub tags: Vec<String>,
    pub wireguard: Option<WgPeer>,
    /// How the ssh target reaches and lays out the node's host.
    pub ssh: SshHost,
    pub loc: Loc,
}

/// A host the ssh target deploys to: where it logs in, how it trusts the host key, where the
/// server's files go there, and the environment its commands run with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshHost {
    /// The address notif-infra logs in at and reaches the client and monitoring ports by (the
    /// public endpoint of a WireGuard host, otherwise its `host`).
    pub address: String,
    pub port: u16,
    pub user: String,
    /// A private key file; `None`: the keys of the SSH agent (`SSH_AUTH_SOCK`).
    pub key: Option<String>,
    /// The known_hosts file host keys are checked against (`None`: `~/.ssh/known_hosts`).
    pub known_hosts: Option<String>,
    pub config_dir: String,
    pub data_dir: String,
    pub log_dir: String,
    /// The nats-server binary on the host.
    pub nats_server: String,
    /// Variables every command on the host runs with (PATH, a userspace WireGuard, ...).
    pub env: Vec<(String, String)>,
}

/// A standalone server that joins a hub region as a leafnode.
#[derive(Debug, Clone)]
pub struct Leafnode {
    pub name: String,
    pub hub: String,
    /// The hub account the leaf binds to; `None` only when the topology declares no accounts.
    pub account: Option<String>,
    /// Allow lists of what crosses the link (`None`: whatever the deny lists let through).
    pub imports: Option<Vec<Pattern>>,
    pub exports: Option<Vec<Pattern>>,
    pub deny_import: Vec<Pattern>,
    pub deny_export: Vec<Pattern>,
    pub jetstream: Option<LeafJetStream>,
    /// The address its client and monitoring listeners bind on a real host.
    pub listen: Option<String>,
    /// Wait between its dials to the hub after losing it.
    pub reconnect: Option<Duration>,
    pub host: String,
    pub ports: Ports,
    pub ssh: SshHost,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct LeafJetStream {
    pub domain: String,
    pub limits: JetStreamLimits,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub system: bool,
    pub jetstream: bool,
    pub jetstream_limits: AccountLimits,
    /// Users are signed by a signing key of the account rather than its identity key.
    pub signing_key: bool,
    pub exports: Vec<Export>,
    pub imports: Vec<Import>,
    /// Subject mappings: a message published on `from` is delivered on `to`.
    pub mappings: Vec<Mapping>,
    /// Permissions of users that declare none (`None`: unrestricted).
    pub default_permissions: Option<Permissions>,
    pub users: Vec<User>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub from: String,
    /// The destination, with `{{wildcard(n)}}` (or `$n`) taking the n-th wildcard token of `from`.
    pub to: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// Static accounts only; operator-mode users authenticate with their credentials.
    pub password: Option<Password>,
    pub permissions: Permissions,
    /// The applications whose declared use these permissions were derived from (empty: written
    /// by hand, or none).
    pub derived_for: Vec<String>,
    /// `STANDARD`, `WEBSOCKET`, `LEAFNODE`, `MQTT`...; empty means every type.
    pub allowed_connection_types: Vec<String>,
    pub bearer: bool,
    pub client_cert: bool,
    pub loc: Loc,
}

/// Where a user's password comes from: never a literal in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `${NAME}`: read from the environment of whoever runs the server.
    Env { var: String, loc: Loc },
    /// A bcrypt hash, safe to keep in files.
    Bcrypt(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Rule,
    pub subscribe: Rule,
    pub responses: Option<Responses>,
}

/// Permission to reply to received requests without a publish allow for the reply subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responses {
    pub max: u64,
    pub ttl: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub allow: Vec<Pattern>,
    pub deny: Vec<Pattern>,
}

/// A subject pattern as written in the topology, with where, so a flow it blocks can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub subject: String,
    pub loc: Loc,
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.subject)
    }
}

/// The subjects of patterns, for files that hold only the text.
pub fn subjects(patterns: &[Pattern]) -> Vec<String> {
    patterns.iter().map(|p| p.subject.clone()).collect()
}

impl Rule {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

impl Permissions {
    /// Nothing written: the user works under its account's defaults (or none).
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.responses.is_none()
    }
}

/// An environment variable the topology refers to, and who refers to it.
#[derive(Debug, Clone)]
pub struct EnvRef {
    pub var: String,
    pub loc: Loc,
    pub object: String,
}

impl Topology {
    pub fn system_account(&self) -> Option<&Account> {
        self.accounts.iter().find(|a| a.system)
    }

    /// Accounts that carry application traffic (every account but the system one).
    pub fn app_accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter().filter(|a| !a.system)
    }

    /// Nodes over all regions (leafnodes not counted).
    pub fn node_count(&self) -> usize {
        self.regions.iter().map(|r| r.nodes.len()).sum()
    }

    pub fn is_super_cluster(&self) -> bool {
        self.regions.len() > 1
    }

    /// Whether `region`'s nodes run a `cluster` block: several nodes, or any region of a
    /// super-cluster (gateways need one).
    pub fn is_clustered(&self, region: &Region) -> bool {
        self.is_super_cluster() || region.nodes.len() > 1
    }

    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The permissions a user of `account` works under: its own, else the account's defaults,
    /// else `None` (unrestricted).
    pub fn effective_permissions<'a>(&self, account: &'a Account, user: &'a User) -> Option<&'a Permissions> {
        let own = &user.permissions;
        if own.is_empty() {
            account.default_permissions.as_ref()
        } else {
            Some(own)
        }
    }

    /// The host of server `name` (node or leafnode) as the ssh target reaches it.
    pub fn ssh_host(&self, name: &str) -> Option<&SshHost> {
        self.regions
            .iter()
            .flat_map(|r| &r.nodes)
            .find(|n| n.name == name)
            .map(|n| &n.ssh)
            .or_else(|| self.leafnodes.iter().find(|l| l.name == name).map(|l| &l.ssh))
    }

    /// The JetStream domain a stream lives in: its leafnode's, or the regions' (if they have one).
    pub fn stream_domain(&self, stream: &Stream) -> Option<String> {
        match &stream.leafnode {
            Some(leaf) => self
                .leafnodes
                .iter()
                .find(|l| &l.name == leaf)
                .and_then(|l| l.jetstream.as_ref())
                .map(|js| js.domain.clone()),
            None => self.settings.jetstream_domain.clone(),
        }
    }

    /// Names of every server: region nodes first, in file order, then leafnodes.
    pub fn server_names(&self) -> Vec<&str> {
        self.regions
            .iter()
            .flat_map(|r| r.nodes.iter().map(|n| n.name.as_str()))
            .chain(self.leafnodes.iter().map(|l| l.name.as_str()))
            .collect()
    }

    /// The environment variables the servers' configs read, each once, sorted.
    pub fn env_var_names(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<String> = self.env_refs().into_iter().map(|r| r.var).collect();
        names.into_iter().collect()
    }

    pub fn env_refs(&self) -> Vec<EnvRef> {
        let encryption = self.settings.encryption.iter().map(|e| EnvRef {
            var: e.key_var.clone(),
            loc: e.loc,
            object: "the JetStream encryption key".into(),
        });
        self.accounts
            .iter()
            .flat_map(|a| {
                a.users.iter().filter_map(move |u| match &u.password {
                    Some(Password::Env { var, loc }) => Some(EnvRef {
                        var: var.clone(),
                        loc: *loc,
                        object: format!("user `{}` of account `{}`", u.name, a.name),
                    }),
                    _ => None,
                })
            })
            .chain(encryption)
            .collect()
    }
}
