//! The desired state, computed purely from the model: one server config per server, the links
//! that must exist between them, and the message probes that prove the links carry traffic.

mod addressing;
mod compose;
mod flows;
pub mod hosts;
pub mod jetstream;
pub mod kubernetes;
pub mod monitoring;
mod render;
mod security;
pub mod wireguard;

pub use addressing::{Addressing, DECLARED_CONFIG_DIR, DEFAULT_LOCAL_PORT_BASE, Endpoint, LOCAL_PORT_STRIDE, assign_slots};
pub use compose::{COMPOSE_FILE, DEFAULT_IMAGE, Publish, compose_file, host_projects};
pub use flows::{Answerer, BucketUse, ConsumerReader, ExpectedFlow, ExpectedTarget, FlowClient, Login, RequestCheck, TargetKind};
pub use jetstream::{JsObject, ObjectKind, object_label};
pub use render::{RenderedFile, SelfContained, config_files, config_path, render_files};
pub use security::{ClientTls, Material, OperatorConf, PreloadedAccount, TlsConf, cert_requests};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::material::{KeyId, Keys, NkeyPair};
use crate::model::{Password, Pattern, Permissions, Rule, TlsListener, Topology, subjects};
use crate::units::format_duration;

/// The account every client lands in when the topology declares none.
pub const GLOBAL_ACCOUNT: &str = "$G";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Node,
    Leaf,
}

/// Everything one nats-server config says, in the order the template writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConf {
    pub server_name: String,
    /// The nats-server version the topology pins, written as a comment: a change is a restart.
    pub version: Option<String>,
    /// SHA-256 of the server's certificate, written as a comment: a rotation changes the file.
    pub certificate: Option<String>,
    pub listen: String,
    pub tls: Option<TlsConf>,
    pub http: String,
    pub monitor_https: bool,
    pub server_tags: Vec<String>,
    pub max_payload: Option<u64>,
    pub lame_duck_duration: Option<String>,
    pub lame_duck_grace_period: Option<String>,
    /// The address clients are told to reconnect to (`client_advertise`).
    pub client_advertise: Option<String>,
    pub max_connections: Option<u64>,
    pub max_control_line: Option<u64>,
    pub no_auth_user: Option<String>,
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub cluster: Option<ClusterConf>,
    pub gateway: Option<GatewayConf>,
    pub leafnode_listener: Option<LeafListenerConf>,
    pub leaf_remotes: Vec<LeafRemoteConf>,
    /// How long a leaf waits before dialling its hub again.
    pub leaf_reconnect: Option<String>,
    pub jetstream: Option<JetStreamConf>,
    /// The system account: its name, or its public key in operator mode.
    pub system_account: Option<String>,
    pub operator: Option<OperatorConf>,
    pub accounts: Arc<Vec<AccountConf>>,
    /// The shared file (beside the configs) the accounts are included from; `None`: written
    /// in the config itself (a leafnode's own account).
    #[serde(default)]
    pub accounts_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConf {
    pub name: String,
    pub listen: String,
    pub routes: Vec<String>,
    pub tls: Option<TlsConf>,
    pub compression: Option<String>,
    pub advertise: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConf {
    pub name: String,
    pub listen: String,
    /// Seeds of every region, this one's too: nats-server ignores a gateway of its own name,
    /// so one list serves the same-indexed node of every region.
    pub gateways: Arc<Vec<RemoteGatewayConf>>,
    /// The shared file (beside the configs) the list is included from.
    #[serde(default)]
    pub gateways_file: String,
    pub tls: Option<TlsConf>,
    pub advertise: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteGatewayConf {
    pub name: String,
    pub urls: Vec<String>,
}

/// Leafnodes authenticate as a user of the account they bind to (a link user allowed only
/// leafnode connections), so the listener itself carries no authorization block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafListenerConf {
    pub listen: String,
    pub tls: Option<TlsConf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafRemoteConf {
    pub urls: Vec<String>,
    /// The local account: its name, or its public key in operator mode.
    pub account: Option<String>,
    /// The link key's seed (static accounts): a secret, which makes the whole config file one.
    pub nkey_seed: Option<String>,
    /// The link user's `.creds` file (operator mode).
    pub credentials: Option<String>,
    pub tls: Option<TlsConf>,
    pub deny_import: Vec<String>,
    pub deny_export: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JetStreamConf {
    pub store_dir: String,
    pub max_memory_store: Option<u64>,
    pub max_file_store: Option<u64>,
    pub domain: Option<String>,
    /// `chachapoly` or `aes`, with the variable the key is read from.
    pub cipher: Option<String>,
    pub key_var: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConf {
    pub name: String,
    pub jetstream: bool,
    /// `max_mem`, `max_file`, `max_streams`, `max_consumers`, where the topology limits them.
    pub jetstream_limits: Vec<AccountLimitConf>,
    pub exports: Vec<ExportConf>,
    pub imports: Vec<ImportConf>,
    pub mappings: Vec<MappingConf>,
    pub default_permissions: Option<DefaultPermissionsConf>,
    pub users: Vec<UserConf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingConf {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultPermissionsConf {
    pub publish: Option<RuleConf>,
    pub subscribe: Option<RuleConf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimitConf {
    pub name: String,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportConf {
    /// `stream` or `service`.
    pub kind: String,
    pub subject: String,
    /// Accounts allowed to import; empty means public.
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportConf {
    pub kind: String,
    pub account: String,
    pub subject: String,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConf {
    /// What the user is for, written as a comment (generated users have no name).
    pub comment: Option<String>,
    pub user: Option<String>,
    /// The config token: `$VAR` (resolved by nats-server from its environment) or a quoted hash.
    pub password: Option<String>,
    pub nkey: Option<String>,
    /// `LEAFNODE` for leafnode link users; empty means every connection type.
    pub allowed_connection_types: Vec<String>,
    pub publish: Option<RuleConf>,
    pub subscribe: Option<RuleConf>,
    pub responses: Option<ResponsesConf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesConf {
    pub max: u64,
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleConf {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl ServerConf {
    /// Whether the rendered file carries a secret and must be written 0600.
    pub fn holds_secret(&self) -> bool {
        self.leaf_remotes.iter().any(|r| r.nkey_seed.is_some())
    }

    /// The shared files (beside the config) the config includes.
    pub fn included_files(&self) -> impl Iterator<Item = &str> {
        self.gateway
            .as_ref()
            .map(|g| g.gateways_file.as_str())
            .into_iter()
            .chain(self.accounts_file.as_deref())
            .chain(self.operator.as_ref().and_then(|o| o.preload_file.as_deref()))
    }

    /// The certificate, key and credentials files the config names, each once.
    pub fn referenced_files(&self) -> Vec<&str> {
        let tls = [
            self.tls.as_ref(),
            self.cluster.as_ref().and_then(|c| c.tls.as_ref()),
            self.gateway.as_ref().and_then(|g| g.tls.as_ref()),
            self.leafnode_listener.as_ref().and_then(|l| l.tls.as_ref()),
        ]
        .into_iter()
        .chain(self.leaf_remotes.iter().map(|r| r.tls.as_ref()))
        .flatten()
        .flat_map(|t| [t.cert_file.as_str(), t.key_file.as_str(), t.ca_file.as_str()]);
        let creds = self.leaf_remotes.iter().filter_map(|r| r.credentials.as_deref());
        let mut files: Vec<&str> = tls.chain(creds).collect();
        files.sort_unstable();
        files.dedup();
        files
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerSpec {
    pub name: String,
    /// The region a node belongs to, or the hub region of a leafnode.
    pub region: String,
    pub role: Role,
    /// Where notif-infra reaches the server from this machine.
    pub client_url: String,
    pub monitor_url: String,
    /// The host its peers dial it by, and the ports it listens on there.
    pub host: String,
    pub endpoint_ports: crate::model::Ports,
    /// The client and monitoring ports notif-infra reaches (published ports under Compose).
    pub reach_ports: crate::model::Ports,
    #[serde(skip)]
    pub conf: ServerConf,
}

/// A link the live servers must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Link {
    /// `from` has a route to `to` (same region).
    Route { from: String, to: String },
    /// Node `from` has its outbound gateway to region `to`.
    Gateway { from: String, to: String },
    /// The nodes of region `to` hold `expected` inbound gateway connections from region `from`.
    GatewayInbound { from: String, to: String, expected: usize },
    /// Leafnode `from` is connected to a node of hub region `to`, bound to `account`.
    Leaf { from: String, to: String, account: String },
}

/// A message sent from one server to another; `expect_delivery` false is a negative probe that
/// proves a deny rule blocks the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub kind: ProbeKind,
    pub from: String,
    pub to: String,
    /// The account both ends connect to; `None` without accounts.
    pub account: Option<String>,
    /// A fixed subject (negative probes); positive probes use a fresh subject per run.
    pub subject: Option<String>,
    pub expect_delivery: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Route,
    Gateway,
    LeafImport,
    LeafExport,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub servers: Vec<ServerSpec>,
    /// What verification expects, built on first use from the topology the rest was built
    /// from: the links grow with servers x regions, and render and plan never need them.
    expected: Arc<Expected>,
    /// The image compose services run unless `NATS_IMAGE` names another.
    pub compose_image: String,
    /// The version every server must report, when the topology pins one.
    pub nats_server_version: Option<String>,
    /// The declared flows, for `verify --flows`.
    pub flows: Vec<ExpectedFlow>,
    /// The applications' KV bucket and object store uses, proven by `verify --flows` too.
    pub bucket_uses: Vec<BucketUse>,
    /// The applications' requests that a declared app or a stream answers, proven likewise.
    pub request_checks: Vec<RequestCheck>,
    /// Nodes of the JetStream meta group (clustered JetStream only), all expected to agree on
    /// one leader and this group size.
    pub jetstream_meta: Vec<String>,
    pub jetstream_urls: Vec<String>,
    /// Streams, buckets and consumers, streams first.
    pub jetstream: Vec<JsObject>,
    /// Accounts whose JetStream objects notif-infra manages (`None`: the global account).
    pub jetstream_accounts: Vec<Option<String>>,
    pub system_account: Option<String>,
    /// How the servers name each account (its public key in operator mode).
    pub account_ids: BTreeMap<String, String>,
    /// notif-infra's user JWT per account (operator mode).
    pub own_jwts: BTreeMap<String, String>,
    pub client_tls: Option<ClientTls>,
    /// Operator and account JWTs, credentials and natscli contexts (operator mode).
    pub auth_files: Vec<RenderedFile>,
    /// What many configs hold alike, each written once beside them and included.
    pub shared: Vec<SharedBlock>,
}

/// A block many servers' configs hold alike, written once as `nats/<file>` and included by
/// each of them: a config stays the size of its own server's settings however many regions,
/// accounts and leafnodes the topology has. nats-server reads an include as if its text stood
/// in the config, so the config digest is the same as with the block written inline.
#[derive(Debug, Clone)]
pub enum SharedBlock {
    /// A gateway seed list (`gateways: [...]`), included in the `gateway` block.
    Gateways {
        file: String,
        remotes: Arc<Vec<RemoteGatewayConf>>,
    },
    /// The accounts every node holds (`accounts { ... }`), included at the top level.
    Accounts { file: String, accounts: Arc<Vec<AccountConf>> },
    /// Every account's JWT (operator mode, memory resolver), included in `resolver_preload`.
    Preload {
        file: String,
        accounts: Arc<Vec<security::PreloadedAccount>>,
    },
}

impl SharedBlock {
    pub fn file(&self) -> &str {
        match self {
            SharedBlock::Gateways { file, .. } | SharedBlock::Accounts { file, .. } | SharedBlock::Preload { file, .. } => file,
        }
    }
}

/// Shared files start with `_`, which no server name can: they never meet a server's config.
const SHARED_ACCOUNTS_FILE: &str = "_accounts.conf";
const SHARED_PRELOAD_FILE: &str = "_resolver_preload.conf";

/// The links and probes of a topology, each built once, when first asked for.
#[derive(Debug)]
struct Expected {
    topology: Topology,
    links: OnceLock<Vec<Link>>,
    probes: OnceLock<Vec<Probe>>,
}

impl Desired {
    /// Every route, gateway and leafnode connection that must exist.
    pub fn links(&self) -> &[Link] {
        self.expected.links.get_or_init(|| expected_links(&self.expected.topology))
    }

    /// The message probes that prove the links carry traffic.
    pub fn probes(&self) -> &[Probe] {
        self.expected.probes.get_or_init(|| probes(&self.expected.topology))
    }

    pub fn server(&self, name: &str) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// How the servers name `account` in their monitoring reports.
    pub fn account_id(&self, account: &str) -> String {
        self.account_ids.get(account).cloned().unwrap_or_else(|| account.to_string())
    }

    /// The leafnodes whose own JetStream holds objects of the topology.
    pub fn jetstream_leaves(&self) -> Vec<&ServerSpec> {
        self.servers
            .iter()
            .filter(|s| s.role == Role::Leaf)
            .filter(|s| {
                let domain = s.conf.jetstream.as_ref().and_then(|j| j.domain.as_ref());
                domain.is_some() && self.jetstream.iter().any(|o| o.leaf_domain.as_ref() == domain)
            })
            .collect()
    }

    /// The nodes that run JetStream, in every region (leafnodes' own domains excluded).
    pub fn jetstream_nodes(&self) -> Vec<&ServerSpec> {
        self.servers
            .iter()
            .filter(|s| s.role == Role::Node && s.conf.jetstream.is_some())
            .collect()
    }
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Route => "route",
            ProbeKind::Gateway => "gateway",
            ProbeKind::LeafImport => "leaf_import",
            ProbeKind::LeafExport => "leaf_export",
        }
    }
}

fn host_port(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

fn rule_conf(rule: &Rule) -> Option<RuleConf> {
    (!rule.is_empty()).then(|| RuleConf {
        allow: subjects(&rule.allow),
        deny: subjects(&rule.deny),
    })
}

/// The users of `account`: its declared users, the verifier's probe user and, `with_links`
/// (the nodes' shared accounts), the link users of every leafnode bound to it.
fn user_confs(topology: &Topology, account: &str, keys: &Keys, with_links: bool) -> Vec<UserConf> {
    let Some(a) = topology.account(account) else { return Vec::new() };
    let mut users: Vec<UserConf> = a
        .users
        .iter()
        .map(|u| {
            let Permissions {
                publish,
                subscribe,
                responses,
            } = &u.permissions;
            UserConf {
                comment: (!u.derived_for.is_empty())
                    .then(|| format!("permissions derived from what app(s) {} declare", u.derived_for.join(", "))),
                user: Some(u.name.clone()),
                password: u.password.as_ref().map(|p| match p {
                    Password::Env { var, .. } => format!("${var}"),
                    Password::Bcrypt(hash) => serde_json::to_string(hash).expect("string serializes"),
                }),
                nkey: None,
                allowed_connection_types: u.allowed_connection_types.clone(),
                publish: rule_conf(publish),
                subscribe: rule_conf(subscribe),
                responses: responses.map(|r| ResponsesConf {
                    max: r.max,
                    expires: r.ttl.map(format_duration),
                }),
            }
        })
        .collect();
    // The account's default permissions would otherwise bind notif-infra's own users too.
    let everything = a.default_permissions.as_ref().map(|_| RuleConf {
        allow: vec![">".into()],
        deny: Vec::new(),
    });
    let generated = |comment: String, key: &NkeyPair, types: Vec<String>| UserConf {
        comment: Some(comment),
        user: None,
        password: None,
        nkey: Some(key.public.clone()),
        allowed_connection_types: types,
        publish: everything.clone(),
        subscribe: everything.clone(),
        responses: None,
    };
    if let Some(probe) = keys.get(&KeyId::Probe(account.to_string())) {
        users.push(generated(
            "notif-infra user (verification, JetStream management)".into(),
            probe,
            Vec::new(),
        ));
    }
    if with_links {
        for leaf in topology.leafnodes.iter().filter(|l| l.account.as_deref() == Some(account)) {
            if let Some(key) = keys.get(&KeyId::LeafLink(leaf.name.clone())) {
                let mut link = generated(format!("link of leafnode {}", leaf.name), key, vec!["LEAFNODE".into()]);
                if let Some(p) = crate::access::link_permissions(topology, leaf) {
                    link.publish = rule_conf(&p.publish);
                    link.subscribe = rule_conf(&p.subscribe);
                }
                users.push(link);
            }
        }
    }
    users
}

/// The account probes use for traffic between regions: the first application account.
pub fn probe_account(topology: &Topology) -> Option<String> {
    topology.app_accounts().next().map(|a| a.name.clone())
}

/// Builds the desired state. The material must hold every key `needed_keys` names, the
/// certificates `cert_requests` names and, in operator mode, the issued JWTs.
/// The servers of a remote region that the `index`-th server of a region lists as gateway
/// seeds: all of them when there are no more than `seeds`, otherwise a window of `seeds` that
/// starts at `index`, so the first connections spread over the remote region. Each config
/// stays bounded however large the super-cluster grows; gossip brings the rest.
fn gateway_seeds(remote: &[crate::model::Node], index: usize, seeds: usize) -> impl Iterator<Item = &crate::model::Node> {
    let n = remote.len();
    let (start, count) = if n <= seeds { (0, n) } else { (index % n, seeds) };
    (0..count).map(move |k| &remote[(start + k) % n])
}

/// The gateway seed list of each node index (the `index`-th node of every region dials the
/// same seeds), each written once as a shared file: lists that come out alike (every region
/// smaller than the seed count) share one file.
fn gateway_lists(
    topology: &Topology,
    endpoints: &BTreeMap<&str, Endpoint>,
    shared: &mut Vec<SharedBlock>,
) -> Vec<(String, Arc<Vec<RemoteGatewayConf>>)> {
    let widest = topology.regions.iter().map(|r| r.nodes.len()).max().unwrap_or(0);
    let mut lists: Vec<(String, Arc<Vec<RemoteGatewayConf>>)> = Vec::with_capacity(widest);
    for index in 0..widest {
        let remotes: Vec<RemoteGatewayConf> = topology
            .regions
            .iter()
            .map(|r| RemoteGatewayConf {
                name: r.name.clone(),
                urls: gateway_seeds(&r.nodes, index, topology.settings.gateway_seeds)
                    .map(|n| {
                        let ne = &endpoints[n.name.as_str()];
                        format!("nats://{}", host_port(&ne.host, ne.ports.gateway))
                    })
                    .collect(),
            })
            .collect();
        match lists.iter().find(|(_, l)| **l == remotes) {
            Some(same) => lists.push(same.clone()),
            None => {
                let file = format!("_gateways-{index}.conf");
                let remotes = Arc::new(remotes);
                shared.push(SharedBlock::Gateways {
                    file: file.clone(),
                    remotes: remotes.clone(),
                });
                lists.push((file, remotes));
            }
        }
    }
    lists
}

/// The desired state of the topology in `text`, with declared addresses and no key material.
#[cfg(test)]
pub fn build_declared(text: &str) -> Desired {
    let t = crate::topology::parse(crate::topology::Source {
        path: "t.yaml".into(),
        text: text.into(),
    })
    .expect("a valid topology")
    .topology;
    let material = Material {
        keys: &Default::default(),
        certs: &Default::default(),
        issued: None,
        tree: std::path::Path::new("/out"),
    };
    build(&t, &Addressing::Declared, &material)
}

pub fn build(topology: &Topology, addressing: &Addressing, material: &Material) -> Desired {
    let keys = material.keys;
    let tls = topology.tls;
    let issued = material.issued;
    let account_ids: BTreeMap<String, String> = topology
        .accounts
        .iter()
        .map(|a| {
            let id = issued.and_then(|i| i.account_public(&a.name)).unwrap_or(&a.name);
            (a.name.clone(), id.to_string())
        })
        .collect();
    let settings = &topology.settings;
    let super_cluster = topology.is_super_cluster();
    let endpoints: BTreeMap<&str, Endpoint> = topology
        .regions
        .iter()
        .flat_map(|r| r.nodes.iter().map(|n| (n.name.as_str(), &n.host, n.ports)))
        .chain(topology.leafnodes.iter().map(|l| (l.name.as_str(), &l.host, l.ports)))
        .map(|(name, host, ports)| (name, addressing.endpoint(topology, name, host, ports)))
        .collect();
    // The nodes hold the link users of every leafnode, in the one accounts file they share; a
    // link user may only make leafnode connections, into its own account.
    let accounts_conf = |names: &mut dyn Iterator<Item = &str>, with_links: bool| -> Vec<AccountConf> {
        if issued.is_some() {
            return Vec::new();
        }
        names
            .filter_map(|n| topology.account(n))
            .map(|a| AccountConf {
                name: a.name.clone(),
                jetstream: a.jetstream,
                jetstream_limits: security::account_limits(&a.jetstream_limits),
                exports: a
                    .exports
                    .iter()
                    .map(|e| ExportConf {
                        kind: e.kind.name().into(),
                        subject: e.subject.clone(),
                        accounts: e.to.clone(),
                    })
                    .collect(),
                imports: a
                    .imports
                    .iter()
                    .map(|i| ImportConf {
                        kind: i.kind.name().into(),
                        account: i.from.clone(),
                        subject: i.subject.clone(),
                        to: i.local_subject.clone(),
                    })
                    .collect(),
                mappings: a
                    .mappings
                    .iter()
                    .map(|m| MappingConf {
                        from: m.from.clone(),
                        to: m.to.clone(),
                    })
                    .collect(),
                default_permissions: a.default_permissions.as_ref().map(|p| DefaultPermissionsConf {
                    publish: rule_conf(&p.publish),
                    subscribe: rule_conf(&p.subscribe),
                }),
                users: user_confs(topology, &a.name, keys, with_links),
            })
            .collect()
    };
    // Every memory resolver (all servers but a full resolver's nodes) preloads every account.
    let every_account = Arc::new(issued.map(security::every_account_preload).unwrap_or_default());
    let base_conf = |name: &str, e: &Endpoint| ServerConf {
        server_name: name.to_string(),
        version: topology.nats_server_version.clone(),
        certificate: material.certs.fingerprints.get(name).cloned(),
        listen: host_port(&e.listen_host, e.ports.client),
        tls: security::listener_tls(e, name, tls.client),
        http: host_port(&e.listen_host, e.ports.monitor),
        monitor_https: tls.monitor,
        server_tags: Vec::new(),
        max_payload: settings.max_payload,
        lame_duck_duration: settings.lame_duck.map(|l| format_duration(l.duration)),
        lame_duck_grace_period: settings.lame_duck.map(|l| format_duration(l.grace_period)),
        client_advertise: settings.advertise.then(|| host_port(&e.host, e.ports.client)),
        max_connections: settings.max_connections,
        max_control_line: settings.max_control_line,
        no_auth_user: settings.no_auth_user.as_ref().map(|(_, user)| user.clone()),
        debug: settings.logging.debug,
        trace: settings.logging.trace,
        logtime: settings.logging.time,
        cluster: None,
        gateway: None,
        leafnode_listener: None,
        leaf_remotes: Vec::new(),
        leaf_reconnect: None,
        jetstream: None,
        system_account: topology.system_account().map(|a| account_ids[&a.name].clone()),
        operator: issued.map(|i| security::operator_conf(i, e, name, true, &every_account)),
        accounts: Arc::default(),
        accounts_file: None,
    };
    let client_scheme = if tls.client.is_some() { "tls" } else { "nats" };
    let monitor_scheme = if tls.monitor { "https" } else { "http" };
    let spec = |name: &str, region: &str, role: Role, conf: ServerConf| {
        let e = &endpoints[name];
        ServerSpec {
            name: name.to_string(),
            region: region.to_string(),
            role,
            client_url: format!("{client_scheme}://{}", host_port(&e.reach_host, e.reach_ports.client)),
            monitor_url: format!("{monitor_scheme}://{}", host_port(&e.reach_host, e.reach_ports.monitor)),
            host: e.host.clone(),
            endpoint_ports: e.ports,
            reach_ports: e.reach_ports,
            conf,
        }
    };

    let mut shared = Vec::new();
    let node_accounts = Arc::new(accounts_conf(&mut topology.accounts.iter().map(|a| a.name.as_str()), true));
    let accounts_file = (!node_accounts.is_empty()).then(|| {
        shared.push(SharedBlock::Accounts {
            file: SHARED_ACCOUNTS_FILE.into(),
            accounts: node_accounts.clone(),
        });
        SHARED_ACCOUNTS_FILE.to_string()
    });
    let gateway_lists = if super_cluster {
        gateway_lists(topology, &endpoints, &mut shared)
    } else {
        Vec::new()
    };
    let mut servers = Vec::new();
    for region in &topology.regions {
        let is_hub = topology.leafnodes.iter().any(|l| l.hub == region.name);
        for (index, node) in region.nodes.iter().enumerate() {
            let e = &endpoints[node.name.as_str()];
            let mut conf = base_conf(&node.name, e);
            conf.server_tags = node.tags.clone();
            if topology.is_clustered(region) {
                // A lone node still lists itself as a route: clustered JetStream refuses to
                // start without one, and nats-server ignores a route to itself.
                let peers: Vec<_> = region
                    .nodes
                    .iter()
                    .filter(|p| p.name != node.name || region.nodes.len() == 1)
                    .collect();
                conf.cluster = Some(ClusterConf {
                    name: region.name.clone(),
                    listen: host_port(&e.listen_host, e.ports.cluster),
                    routes: peers
                        .iter()
                        .map(|p| {
                            let pe = &endpoints[p.name.as_str()];
                            format!("nats-route://{}", host_port(&pe.host, pe.ports.cluster))
                        })
                        .collect(),
                    tls: security::listener_tls(e, &node.name, tls.cluster),
                    compression: settings.compression.map(String::from),
                    advertise: settings.advertise.then(|| host_port(&e.host, e.ports.cluster)),
                });
            }
            if let Some((file, remotes)) = gateway_lists.get(index) {
                conf.gateway = Some(GatewayConf {
                    name: region.name.clone(),
                    listen: host_port(&e.listen_host, e.ports.gateway),
                    gateways: remotes.clone(),
                    gateways_file: file.clone(),
                    tls: security::listener_tls(e, &node.name, tls.gateway),
                    advertise: settings.advertise.then(|| host_port(&e.host, e.ports.gateway)),
                });
            }
            if is_hub {
                conf.leafnode_listener = Some(LeafListenerConf {
                    listen: host_port(&e.listen_host, e.ports.leafnode),
                    tls: security::listener_tls(e, &node.name, tls.leafnode),
                });
            }
            conf.jetstream = region.jetstream.map(|limits| JetStreamConf {
                store_dir: e.store_dir.clone(),
                max_memory_store: limits.max_memory_store,
                max_file_store: limits.max_file_store,
                domain: topology.settings.jetstream_domain.clone(),
                cipher: topology.settings.encryption.as_ref().map(|e| e.cipher.to_string()),
                key_var: topology.settings.encryption.as_ref().map(|e| e.key_var.clone()),
            });
            conf.accounts = node_accounts.clone();
            conf.accounts_file = accounts_file.clone();
            servers.push(spec(&node.name, &region.name, Role::Node, conf));
        }
    }
    for leaf in &topology.leafnodes {
        let e = &endpoints[leaf.name.as_str()];
        let mut conf = base_conf(&leaf.name, e);
        let hub_urls = topology
            .region(&leaf.hub)
            .map(|r| {
                r.nodes
                    .iter()
                    .map(|n| {
                        let ne = &endpoints[n.name.as_str()];
                        format!("nats-leaf://{}", host_port(&ne.host, ne.ports.leafnode))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let operator_mode = issued.is_some();
        conf.operator = issued.map(|i| security::operator_conf(i, e, &leaf.name, false, &every_account));
        conf.leaf_reconnect = leaf.reconnect.map(format_duration);
        conf.leaf_remotes = vec![LeafRemoteConf {
            urls: hub_urls,
            account: leaf.account.as_ref().map(|a| account_ids[a].clone()),
            nkey_seed: keys
                .get(&KeyId::LeafLink(leaf.name.clone()))
                .filter(|_| !operator_mode)
                .map(|k| k.seed.clone()),
            credentials: (operator_mode && leaf.account.is_some())
                .then(|| format!("{}/{}", e.config_dir, crate::material::auth::leaf_creds_path(&leaf.name).display())),
            // The dialling side presents its certificate; `verify` is the hub listener's to ask.
            tls: security::listener_tls(e, &leaf.name, tls.leafnode.map(|_| TlsListener::default())),
            deny_import: subjects(&leaf.deny_import),
            deny_export: subjects(&leaf.deny_export),
        }];
        if !operator_mode {
            // A leaf in static mode only knows its own account; in operator mode it resolves them all.
            conf.system_account = None;
        }
        let mut own_account = accounts_conf(&mut leaf.account.iter().map(String::as_str), false);
        if settings.no_auth_user.as_ref().map(|(account, _)| account) != leaf.account.as_ref() {
            // A leaf holds only the account it binds to.
            conf.no_auth_user = None;
        }
        if let Some(js) = &leaf.jetstream {
            conf.jetstream = Some(JetStreamConf {
                store_dir: e.store_dir.clone(),
                max_memory_store: js.limits.max_memory_store,
                max_file_store: js.limits.max_file_store,
                domain: Some(js.domain.clone()),
                cipher: topology.settings.encryption.as_ref().map(|e| e.cipher.to_string()),
                key_var: topology.settings.encryption.as_ref().map(|e| e.key_var.clone()),
            });
            for account in &mut own_account {
                account.jetstream = true;
            }
        }
        conf.accounts = Arc::new(own_account);
        servers.push(spec(&leaf.name, &leaf.hub, Role::Leaf, conf));
    }

    let first_client_url = servers.first().map(|s: &ServerSpec| s.client_url.clone());
    let client_tls = security::client_tls(topology, material.tree);
    let auth_files = issued
        .map(|i| {
            security::auth_files(
                i,
                keys,
                material.tree,
                first_client_url.as_deref(),
                client_tls.as_ref().map(|c| c.ca.as_path()),
            )
        })
        .unwrap_or_default();
    let own_jwts = issued
        .map(|i| {
            topology
                .accounts
                .iter()
                .filter_map(|a| {
                    Some((
                        a.name.clone(),
                        i.users.get(&crate::material::auth::probe_creds_path(&a.name))?.jwt.clone(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if servers
        .iter()
        .any(|s| s.conf.operator.as_ref().is_some_and(|o| o.preload_file.is_some()))
    {
        shared.push(SharedBlock::Preload {
            file: SHARED_PRELOAD_FILE.into(),
            accounts: every_account.clone(),
        });
    }
    Desired {
        name: topology.name.clone(),
        expected: Arc::new(Expected {
            topology: topology.clone(),
            links: OnceLock::new(),
            probes: OnceLock::new(),
        }),
        flows: flows::expected(topology),
        bucket_uses: flows::bucket_uses(topology),
        request_checks: flows::request_checks(topology),
        compose_image: compose_image(topology),
        nats_server_version: topology.nats_server_version.clone(),
        jetstream_meta: jetstream_meta(topology),
        jetstream_urls: jetstream_urls(topology, &servers),
        jetstream: jetstream::objects(topology),
        jetstream_accounts: jetstream_accounts(topology),
        system_account: topology.system_account().map(|a| a.name.clone()),
        servers,
        account_ids,
        own_jwts,
        client_tls,
        auth_files,
        shared,
    }
}

/// The topology's compose image, else the official image of its pinned version, else ours.
fn compose_image(topology: &Topology) -> String {
    topology
        .compose_image
        .clone()
        .or_else(|| topology.nats_server_version.as_ref().map(|v| format!("nats:{v}")))
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

fn jetstream_accounts(topology: &Topology) -> Vec<Option<String>> {
    if !topology.regions.iter().any(|r| r.jetstream.is_some()) {
        return Vec::new();
    }
    if topology.accounts.is_empty() {
        return vec![None];
    }
    topology
        .app_accounts()
        .filter(|a| a.jetstream)
        .map(|a| Some(a.name.clone()))
        .collect()
}

/// Client URLs of the first region running JetStream: where notif-infra sends JetStream API
/// requests, and so where unplaced streams are created.
fn jetstream_urls(topology: &Topology, servers: &[ServerSpec]) -> Vec<String> {
    let Some(region) = topology.regions.iter().find(|r| r.jetstream.is_some()) else {
        return Vec::new();
    };
    servers
        .iter()
        .filter(|s| s.role == Role::Node && s.region == region.name)
        .map(|s| s.client_url.clone())
        .collect()
}

fn expected_links(topology: &Topology) -> Vec<Link> {
    let mut links = Vec::new();
    for region in &topology.regions {
        for from in &region.nodes {
            for to in region.nodes.iter().filter(|n| n.name != from.name) {
                links.push(Link::Route {
                    from: from.name.clone(),
                    to: to.name.clone(),
                });
            }
        }
    }
    for region in &topology.regions {
        for other in topology.regions.iter().filter(|r| r.name != region.name) {
            for node in &region.nodes {
                links.push(Link::Gateway {
                    from: node.name.clone(),
                    to: other.name.clone(),
                });
            }
            links.push(Link::GatewayInbound {
                from: other.name.clone(),
                to: region.name.clone(),
                expected: other.nodes.len(),
            });
        }
    }
    for leaf in &topology.leafnodes {
        links.push(Link::Leaf {
            from: leaf.name.clone(),
            to: leaf.hub.clone(),
            account: leaf.account.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.into()),
        });
    }
    links
}

fn probes(topology: &Topology) -> Vec<Probe> {
    let account = probe_account(topology);
    let mut probes = Vec::new();
    let positive = |kind, from: &str, to: &str, account: &Option<String>| Probe {
        kind,
        from: from.to_string(),
        to: to.to_string(),
        account: account.clone(),
        subject: None,
        expect_delivery: true,
    };
    for region in &topology.regions {
        for from in &region.nodes {
            for to in region.nodes.iter().filter(|n| n.name != from.name) {
                probes.push(positive(ProbeKind::Route, &from.name, &to.name, &account));
            }
        }
    }
    for from in &topology.regions {
        for to in topology.regions.iter().filter(|r| r.name != from.name) {
            if let (Some(a), Some(b)) = (from.nodes.first(), to.nodes.last()) {
                probes.push(positive(ProbeKind::Gateway, &a.name, &b.name, &account));
            }
        }
    }
    for leaf in &topology.leafnodes {
        let Some(hub) = topology.region(&leaf.hub).and_then(|r| r.nodes.first()) else {
            continue;
        };
        let account = leaf.account.clone();
        let hub_clustered = topology.region(&leaf.hub).is_some_and(|r| topology.is_clustered(r));
        let import_blocked = covers_probe_subjects(&leaf.deny_import);
        let export_blocked = covers_probe_subjects(&leaf.deny_export) || (hub_clustered && import_blocked);
        for (kind, from, to, deny, blocked) in [
            (ProbeKind::LeafImport, &hub.name, &leaf.name, &leaf.deny_import, import_blocked),
            (ProbeKind::LeafExport, &leaf.name, &hub.name, &leaf.deny_export, export_blocked),
        ] {
            if !blocked {
                probes.push(positive(kind, from, to, &account));
            }
            if let Some(pattern) = deny.first() {
                probes.push(Probe {
                    kind,
                    from: from.clone(),
                    to: to.clone(),
                    account: account.clone(),
                    subject: Some(crate::subject::instance(&pattern.subject, "probe")),
                    expect_delivery: false,
                });
            }
        }
        // A declared allow list keeps out what it does not name: a subject outside it must not
        // cross (the link carries notif-infra's own probes, so the fence still gets through).
        // Each probe on its own subject: the leaf's export probe must not feed its import probe.
        for (kind, from, to, list, way) in [
            (ProbeKind::LeafImport, &hub.name, &leaf.name, &leaf.imports, "import"),
            (ProbeKind::LeafExport, &leaf.name, &hub.name, &leaf.exports, "export"),
        ] {
            let subject = format!("{OUTSIDE_ALLOW_LISTS}.{}.{way}", leaf.name);
            let keeps_out = list
                .as_ref()
                .is_some_and(|l| !l.iter().any(|p| crate::subject::matches(&p.subject, &subject)));
            if keeps_out {
                probes.push(Probe {
                    kind,
                    from: from.clone(),
                    to: to.clone(),
                    account: account.clone(),
                    subject: Some(subject),
                    expect_delivery: false,
                });
            }
        }
    }
    probes
}

/// The first tokens of the negative probes of links whose `imports` or `exports` leave them out.
const OUTSIDE_ALLOW_LISTS: &str = "_NOTIF_INFRA_OUTSIDE.probe";

/// The subject of positive probe `index` in verification run `nonce`: a subject of its own, so
/// no application subscriber sees probes and no two runs mix.
pub fn probe_subject(nonce: &str, index: usize) -> String {
    format!("{}.{nonce}.{index}", crate::access::PROBE_PREFIX)
}

/// Whether a deny list blocks positive probes, whose subjects no path can then carry.
fn covers_probe_subjects(deny: &[Pattern]) -> bool {
    let sample = probe_subject("run", 0);
    deny.iter().any(|d| crate::subject::matches(&d.subject, &sample))
}

fn jetstream_meta(topology: &Topology) -> Vec<String> {
    if !topology.regions.iter().any(|r| topology.is_clustered(r)) {
        return Vec::new();
    }
    topology
        .regions
        .iter()
        .filter(|r| r.jetstream.is_some())
        .flat_map(|r| r.nodes.iter().map(|n| n.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Source, parse};

    fn leaf_probes(hub_nodes: usize, deny_import: &str, deny_export: &str) -> Vec<(ProbeKind, bool)> {
        let text = format!(
            "name: t\nregions:\n  hub:\n    nodes: {hub_nodes}\nleafnodes:\n  edge:\n    hub: hub\n    deny_import: {deny_import}\n    deny_export: {deny_export}\n"
        );
        let loaded = parse(Source {
            path: "t.yaml".into(),
            text,
        })
        .expect("valid topology");
        probes(&loaded.topology)
            .into_iter()
            .filter(|p| matches!(p.kind, ProbeKind::LeafImport | ProbeKind::LeafExport))
            .map(|p| (p.kind, p.expect_delivery))
            .collect()
    }

    #[test]
    fn gateway_blocks_list_a_bounded_window_of_each_remote_region() {
        let text =
            "name: t\ndefaults:\n  gateway_seeds: 2\nregions:\n  a:\n    nodes: 5\n  b:\n    nodes: 5\n  c:\n    nodes: 2\n".to_string();
        let t = parse(Source {
            path: "t.yaml".into(),
            text,
        })
        .expect("valid topology")
        .topology;
        let names = |region: &str, index: usize| -> Vec<String> {
            let r = t.region(region).unwrap();
            gateway_seeds(&r.nodes, index, t.settings.gateway_seeds)
                .map(|n| n.name.clone())
                .collect()
        };
        assert_eq!(names("b", 0), ["b-1", "b-2"]);
        assert_eq!(names("b", 3), ["b-4", "b-5"]);
        assert_eq!(names("b", 4), ["b-5", "b-1"], "the window wraps around");
        assert_eq!(
            names("c", 4),
            ["c-1", "c-2"],
            "a region no larger than the window is listed whole, in order"
        );
        let too_few = "name: t\ndefaults:\n  gateway_seeds: 1\nregions:\n  a:\n    nodes: 3\n".to_string();
        let Err(e) = parse(Source {
            path: "t.yaml".into(),
            text: too_few,
        }) else {
            panic!("one seed is refused")
        };
        assert!(e.to_string().contains("gateway_seeds is 1"), "{e}");
    }

    #[test]
    fn a_leaf_denying_every_import_from_a_clustered_hub_gets_no_positive_export_probe() {
        // nats-server drops the leaf's own messages on denied-import subjects when the hub is clustered.
        assert_eq!(leaf_probes(3, r#"[">"]"#, "[]"), vec![(ProbeKind::LeafImport, false)]);
        assert_eq!(
            leaf_probes(1, r#"[">"]"#, "[]"),
            vec![(ProbeKind::LeafImport, false), (ProbeKind::LeafExport, true)]
        );
    }

    #[test]
    fn deny_rules_that_cover_probe_subjects_drop_the_positive_probe_and_keep_the_negative_one() {
        assert_eq!(
            leaf_probes(3, r#"["secret.>"]"#, r#"["*.>"]"#),
            vec![
                (ProbeKind::LeafImport, true),
                (ProbeKind::LeafImport, false),
                (ProbeKind::LeafExport, false)
            ]
        );
    }

    #[test]
    fn probe_subjects_stay_out_of_application_subjects() {
        let subject = probe_subject("abc", 7);
        assert!(crate::subject::check(&subject).is_ok());
        let patterns = |list: &[&str]| -> Vec<Pattern> {
            list.iter()
                .map(|s| Pattern {
                    subject: s.to_string(),
                    loc: Default::default(),
                })
                .collect()
        };
        assert!(covers_probe_subjects(&patterns(&[">"])));
        assert!(!covers_probe_subjects(&patterns(&["orders.>", "_INBOX.>"])));
    }
}
