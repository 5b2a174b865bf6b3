//! The desired state, computed purely from the model: one server config per server, the links
//! that must exist between them, and the message probes that prove the links carry traffic.

mod addressing;
mod compose;
mod conf;
mod flows;
mod gateways;
pub mod hosts;
pub mod jetstream;
pub mod kubernetes;
mod links;
pub mod monitoring;
mod render;
mod security;
mod servers;
mod users;
pub mod wireguard;

pub use addressing::{Addressing, DECLARED_CONFIG_DIR, DEFAULT_LOCAL_PORT_BASE, Endpoint, LOCAL_PORT_STRIDE, assign_slots};
pub use compose::{COMPOSE_FILE, DEFAULT_IMAGE, Publish, compose_file, host_projects};
pub use conf::{
    AccountConf, AccountLimitConf, ClusterConf, DefaultPermissionsConf, ExportConf, GatewayConf, ImportConf, JetStreamConf,
    LeafListenerConf, LeafRemoteConf, MappingConf, RemoteGatewayConf, ResponsesConf, RuleConf, ServerConf, UserConf,
};
pub use flows::{
    Answerer, BucketUse, ConsumerReader, ExpectedFlow, ExpectedTarget, FlowClient, Login, RequestCheck, TargetKind, user_login,
};
pub use jetstream::{JsObject, ObjectKind, object_label};
pub use links::{Link, Probe, ProbeKind, probe_account, probe_subject};
pub use render::{RenderedFile, SelfContained, config_files, config_path, render_files};
pub use security::{ClientTls, Material, OperatorConf, PreloadedAccount, TlsConf, cert_requests};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::model::Topology;

/// The account every client lands in when the topology declares none.
pub const GLOBAL_ACCOUNT: &str = "$G";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Node,
    Leaf,
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
    /// How full (percent of its limit) a JetStream store may be before verify names it.
    pub store_full_percent: u8,
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
    /// Each TLS server's certificate as notif-infra issued it (this machine's copy), by server.
    pub certificates: Vec<(String, PathBuf)>,
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
        self.expected.links.get_or_init(|| links::expected_links(&self.expected.topology))
    }

    /// The message probes that prove the links carry traffic.
    pub fn probes(&self) -> &[Probe] {
        self.expected.probes.get_or_init(|| links::probes(&self.expected.topology))
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

    /// The streams, buckets and object stores of the super-cluster (not in a leafnode's own
    /// domain), each with the region it lives in: its placement, else the first region running
    /// JetStream.
    pub fn streams_by_region(&self) -> impl Iterator<Item = (&JsObject, &str)> {
        let first = self.jetstream_nodes().first().map(|s| s.region.as_str());
        self.jetstream
            .iter()
            .filter(|o| o.kind != ObjectKind::Consumer && o.leaf_domain.is_none())
            .filter_map(move |o| Some((o, o.region.as_deref().or(first)?)))
    }
}

pub(super) fn host_port(host: &str, port: u16) -> String {
    format!("{host}:{port}")
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

/// Builds the desired state. The material must hold every key `needed_keys` names, the
/// certificates `cert_requests` names and, in operator mode, the issued JWTs.
pub fn build(topology: &Topology, addressing: &Addressing, material: &Material) -> Desired {
    let keys = material.keys;
    let issued = material.issued;
    let account_ids: BTreeMap<String, String> = topology
        .accounts
        .iter()
        .map(|a| {
            let id = issued.and_then(|i| i.account_public(&a.name)).unwrap_or(&a.name);
            (a.name.clone(), id.to_string())
        })
        .collect();
    let endpoints: BTreeMap<&str, Endpoint> = topology
        .regions
        .iter()
        .flat_map(|r| r.nodes.iter().map(|n| (n.name.as_str(), &n.host, n.ports)))
        .chain(topology.leafnodes.iter().map(|l| (l.name.as_str(), &l.host, l.ports)))
        .map(|(name, host, ports)| (name, addressing.endpoint(topology, name, host, ports)))
        .collect();
    // Every memory resolver (all servers but a full resolver's nodes) preloads every account.
    let every_account = Arc::new(issued.map(security::every_account_preload).unwrap_or_default());
    let of = servers::Servers {
        topology,
        material,
        endpoints: &endpoints,
        account_ids: &account_ids,
        every_account: every_account.clone(),
    };

    let mut shared = Vec::new();
    // The nodes hold the link users of every leafnode, in the one accounts file they share; a
    // link user may only make leafnode connections, into its own account.
    let node_accounts = Arc::new(of.account_confs(&mut topology.accounts.iter().map(|a| a.name.as_str()), true));
    let accounts_file = (!node_accounts.is_empty()).then(|| {
        shared.push(SharedBlock::Accounts {
            file: SHARED_ACCOUNTS_FILE.into(),
            accounts: node_accounts.clone(),
        });
        SHARED_ACCOUNTS_FILE.to_string()
    });
    let gateway_lists = if topology.is_super_cluster() {
        gateways::gateway_lists(topology, &endpoints, &mut shared)
    } else {
        Vec::new()
    };
    let mut servers = Vec::new();
    for region in &topology.regions {
        for (index, node) in region.nodes.iter().enumerate() {
            // The `index`-th node of every region dials the same gateway seeds.
            let node_shared = servers::NodeShared {
                accounts: &node_accounts,
                accounts_file: &accounts_file,
                gateways: gateway_lists.get(index),
            };
            servers.push(of.node(region, node, &node_shared));
        }
    }
    servers.extend(topology.leafnodes.iter().map(|leaf| of.leaf(leaf)));

    // A natscli context lists every node: the client fails over as nats clients do.
    let node_urls: Vec<&str> = servers
        .iter()
        .filter(|s| s.role == Role::Node)
        .map(|s| s.client_url.as_str())
        .collect();
    let context_url = (!node_urls.is_empty()).then(|| node_urls.join(","));
    let client_tls = security::client_tls(topology, material.tree);
    let certificates = if topology.tls.any() {
        servers
            .iter()
            .map(|s| (s.name.clone(), material.tree.join("pki").join(format!("{}.pem", s.name))))
            .collect()
    } else {
        Vec::new()
    };
    let auth_files = issued
        .map(|i| {
            security::auth_files(
                i,
                keys,
                material.tree,
                context_url.as_deref(),
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
        store_full_percent: topology.monitoring.store_full_percent,
        jetstream_meta: links::jetstream_meta(topology),
        jetstream_urls: jetstream_urls(topology, &servers),
        jetstream: jetstream::objects(topology),
        jetstream_accounts: jetstream_accounts(topology),
        system_account: topology.system_account().map(|a| a.name.clone()),
        servers,
        account_ids,
        own_jwts,
        client_tls,
        certificates,
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
