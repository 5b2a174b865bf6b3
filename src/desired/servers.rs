//! Each server's config: what every server says alike (its name, listeners, limits, lame duck,
//! logging, operator), then what a node of a region adds (routes, gateways, the leafnode
//! listener, JetStream, the shared accounts) or what a leafnode adds (its remote to the hub, the
//! one account it binds to, its own JetStream domain).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::security::{self, Material, PreloadedAccount};
use super::users::{rule_conf, user_confs};
use super::{
    AccountConf, ClusterConf, DefaultPermissionsConf, Endpoint, ExportConf, GatewayConf, ImportConf, JetStreamConf, LeafListenerConf,
    LeafRemoteConf, MappingConf, RemoteGatewayConf, Role, ServerConf, ServerSpec, host_port,
};
use crate::material::KeyId;
use crate::model::{Leafnode, Node, Region, TlsListener, Topology, subjects};
use crate::units::format_duration;

/// What every server's config is built from.
pub(super) struct Servers<'a> {
    pub topology: &'a Topology,
    pub material: &'a Material<'a>,
    /// Where each server listens and is reached, by server.
    pub endpoints: &'a BTreeMap<&'a str, Endpoint>,
    /// How the servers name each account (its public key in operator mode).
    pub account_ids: &'a BTreeMap<String, String>,
    /// Every account's JWT, for the memory resolvers' preload (operator mode).
    pub every_account: Arc<Vec<PreloadedAccount>>,
}

/// What a node holds alike with the other nodes: the accounts (in one shared file) and its
/// index's gateway seed list.
pub(super) struct NodeShared<'a> {
    pub accounts: &'a Arc<Vec<AccountConf>>,
    pub accounts_file: &'a Option<String>,
    pub gateways: Option<&'a (String, Arc<Vec<RemoteGatewayConf>>)>,
}

impl Servers<'_> {
    /// The accounts `names` as a server holds them (none in operator mode: the resolver has
    /// them); `with_links`: with the link users of the leafnodes bound to each (the nodes').
    pub fn account_confs(&self, names: &mut dyn Iterator<Item = &str>, with_links: bool) -> Vec<AccountConf> {
        if self.material.issued.is_some() {
            return Vec::new();
        }
        let topology = self.topology;
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
                users: user_confs(topology, &a.name, self.material.keys, with_links),
            })
            .collect()
    }

    /// What every server's config says, node or leafnode.
    fn base_conf(&self, name: &str, e: &Endpoint) -> ServerConf {
        let (topology, settings, tls) = (self.topology, &self.topology.settings, self.topology.tls);
        let issued = self.material.issued;
        ServerConf {
            server_name: name.to_string(),
            version: topology.nats_server_version.clone(),
            certificate: self.material.certs.fingerprints.get(name).cloned(),
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
            system_account: topology.system_account().map(|a| self.account_ids[&a.name].clone()),
            operator: issued.map(|i| security::operator_conf(i, e, name, true, &self.every_account)),
            accounts: Arc::default(),
            accounts_file: None,
        }
    }

    fn spec(&self, name: &str, region: &str, role: Role, conf: ServerConf) -> ServerSpec {
        let tls = self.topology.tls;
        let client_scheme = if tls.client.is_some() { "tls" } else { "nats" };
        let monitor_scheme = if tls.monitor { "https" } else { "http" };
        let e = &self.endpoints[name];
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
    }

    /// A node of `region`.
    pub fn node(&self, region: &Region, node: &Node, shared: &NodeShared) -> ServerSpec {
        let (topology, settings, tls) = (self.topology, &self.topology.settings, self.topology.tls);
        let e = &self.endpoints[node.name.as_str()];
        let mut conf = self.base_conf(&node.name, e);
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
                        let pe = &self.endpoints[p.name.as_str()];
                        format!("nats-route://{}", host_port(&pe.host, pe.ports.cluster))
                    })
                    .collect(),
                tls: security::listener_tls(e, &node.name, tls.cluster),
                compression: settings.compression.map(String::from),
                advertise: settings.advertise.then(|| host_port(&e.host, e.ports.cluster)),
            });
        }
        if let Some((file, remotes)) = shared.gateways {
            conf.gateway = Some(GatewayConf {
                name: region.name.clone(),
                listen: host_port(&e.listen_host, e.ports.gateway),
                gateways: remotes.clone(),
                gateways_file: file.clone(),
                tls: security::listener_tls(e, &node.name, tls.gateway),
                advertise: settings.advertise.then(|| host_port(&e.host, e.ports.gateway)),
            });
        }
        if topology.leafnodes.iter().any(|l| l.hub == region.name) {
            conf.leafnode_listener = Some(LeafListenerConf {
                listen: host_port(&e.listen_host, e.ports.leafnode),
                tls: security::listener_tls(e, &node.name, tls.leafnode),
                isolate_leafnode_interest: region.isolate_leafnode_interest,
            });
        }
        conf.jetstream = region.jetstream.map(|limits| JetStreamConf {
            store_dir: e.store_dir.clone(),
            max_memory_store: limits.max_memory_store,
            max_file_store: limits.max_file_store,
            domain: settings.jetstream_domain.clone(),
            cipher: settings.encryption.as_ref().map(|e| e.cipher.to_string()),
            key_var: settings.encryption.as_ref().map(|e| e.key_var.clone()),
        });
        conf.accounts = shared.accounts.clone();
        conf.accounts_file = shared.accounts_file.clone();
        self.spec(&node.name, &region.name, Role::Node, conf)
    }

    pub fn leaf(&self, leaf: &Leafnode) -> ServerSpec {
        let (topology, settings, tls) = (self.topology, &self.topology.settings, self.topology.tls);
        let issued = self.material.issued;
        let e = &self.endpoints[leaf.name.as_str()];
        let mut conf = self.base_conf(&leaf.name, e);
        let hub_urls = topology
            .region(&leaf.hub)
            .map(|r| {
                r.nodes
                    .iter()
                    .map(|n| {
                        let ne = &self.endpoints[n.name.as_str()];
                        format!("nats-leaf://{}", host_port(&ne.host, ne.ports.leafnode))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let operator_mode = issued.is_some();
        conf.operator = issued.map(|i| security::operator_conf(i, e, &leaf.name, false, &self.every_account));
        conf.leaf_reconnect = leaf.reconnect.map(format_duration);
        conf.leaf_remotes = vec![LeafRemoteConf {
            urls: hub_urls,
            account: leaf.account.as_ref().map(|a| self.account_ids[a].clone()),
            nkey_seed: self
                .material
                .keys
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
        let mut own_account = self.account_confs(&mut leaf.account.iter().map(String::as_str), false);
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
                cipher: settings.encryption.as_ref().map(|e| e.cipher.to_string()),
                key_var: settings.encryption.as_ref().map(|e| e.key_var.clone()),
            });
            for account in &mut own_account {
                account.jetstream = true;
            }
        }
        conf.accounts = Arc::new(own_account);
        self.spec(&leaf.name, &leaf.hub, Role::Leaf, conf)
    }
}
