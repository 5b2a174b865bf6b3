//! Schema -> model: every check that needs more than the YAML grammar, all problems collected
//! in one pass so the user sees the whole list at once.

use serde_saphyr::Spanned;
use std::collections::HashMap;

mod apps;
mod flows;
mod jetstream;
mod monitoring;
mod security;
mod ssh;
mod wireguard;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::schema::*;
use crate::model::*;
use crate::{subject, units};

/// Servers of each remote region a gateway block lists unless the topology says otherwise.
pub const DEFAULT_GATEWAY_SEEDS: usize = 3;

pub fn loc<T>(s: &Spanned<T>) -> Loc {
    Loc {
        line: s.referenced.line() as u32,
        col: s.referenced.column() as u32,
    }
}

/// The outcome of validation: the model when there were no errors, and every diagnostic
/// (warnings included) either way.
pub struct Validated {
    pub topology: Option<Topology>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn validate(file: TopologyFile) -> Validated {
    let mut v = Validator::default();
    let topology = v.topology(file);
    let has_errors = v.diags.iter().any(|d| d.severity == super::Severity::Error);
    Validated {
        topology: if has_errors { None } else { Some(topology) },
        diagnostics: v.diags,
    }
}

/// Errors for environment variables the topology names but the environment lacks, for targets
/// that start servers and so need the values.
pub fn check_env(topology: &Topology, lookup: impl Fn(&str) -> Option<String>) -> Vec<Diagnostic> {
    topology
        .env_refs()
        .into_iter()
        .filter(|r| lookup(&r.var).is_none())
        .map(|r| {
            Diagnostic::error(format!("environment variable `{}` is not set", r.var))
                .at(r.loc)
                .object(r.object)
                .help(format!(
                    "export {}=... before running this command; the servers read it at start",
                    r.var
                ))
        })
        .collect()
}

#[derive(Default)]
struct Validator {
    diags: Vec<Diagnostic>,
    /// Every server name seen so far, with where it was defined.
    servers: HashMap<String, Loc>,
}

/// A listening socket of one server, for the port-clash check.
struct Listener<'a> {
    server: &'a str,
    host: &'a str,
    kind: &'static str,
    port: u16,
    loc: Loc,
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Validator {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn name(&mut self, name: &Spanned<String>, what: &str) {
        if !is_identifier(&name.value) {
            self.error(
                Diagnostic::error(format!("invalid {what} name `{}`", name.value))
                    .at(loc(name))
                    .help("use letters, digits, `-` and `_`, starting with a letter or digit"),
            );
        }
    }

    fn server_name(&mut self, name: &str, at: Loc) {
        if let Some(first) = self.servers.get(name) {
            let first = *first;
            self.error(Diagnostic::error(format!("duplicate server name `{name}`")).at(at).help(format!(
                "`{name}` is already defined at line {}; server names must be unique across regions and leafnodes",
                first.line
            )));
        } else {
            self.servers.insert(name.to_string(), at);
        }
    }

    /// `defaults.gateway_seeds`: 3 unless given, and never fewer than 2, so that a server still
    /// finds every remote region while one of its seeds there is down.
    fn gateway_seeds(&mut self, value: &Option<Spanned<u32>>) -> usize {
        match value {
            None => DEFAULT_GATEWAY_SEEDS,
            Some(s) if s.value < 2 => {
                self.error(
                    Diagnostic::error(format!(
                        "gateway_seeds is {}: with fewer than 2 seeds per remote region a server cannot reach that region while its one seed is down",
                        s.value
                    ))
                    .at(loc(s))
                    .help("write 2 or more (the default is 3); nats-server learns the other servers by gossip"),
                );
                DEFAULT_GATEWAY_SEEDS
            }
            Some(s) => s.value as usize,
        }
    }

    /// The account and name of the `no_auth_user`, a declared user of a static account.
    fn no_auth_user(&mut self, user: &Spanned<String>, accounts: &[Account], operator_mode: bool) -> Option<(String, String)> {
        if operator_mode {
            self.error(
                Diagnostic::error("`no_auth_user` needs static accounts")
                    .at(loc(user))
                    .help("in operator mode every client presents credentials; remove `no_auth_user` or give the clients a `.creds` file"),
            );
            return None;
        }
        let found = accounts.iter().filter(|a| !a.system).find_map(|a| {
            a.users
                .iter()
                .find(|u| u.name == user.value)
                .map(|u| (a.name.clone(), u.name.clone()))
        });
        if found.is_none() {
            let names = accounts.iter().flat_map(|a| a.users.iter().map(|u| u.name.as_str()));
            let d = Diagnostic::error(format!(
                "`no_auth_user` names `{}`, which is not a user of an application account",
                user.value
            ))
            .at(loc(user));
            self.error(match did_you_mean(&user.value, names) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("name one of the users declared under `accounts:`"),
            });
        }
        found
    }

    /// The key must be an environment reference: a key in the topology would be in clear in
    /// every rendered config and in version control.
    fn encryption(&mut self, spec: &Spanned<EncryptionSpec>) -> Encryption {
        let key = &spec.value.key;
        let var = key.value.trim().strip_prefix("${").and_then(|k| k.strip_suffix('}')).filter(|v| {
            v.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if var.is_none() {
            self.error(
                Diagnostic::error("the JetStream encryption key must be an environment reference, not a literal key")
                    .at(loc(key))
                    .help("write `key: ${JS_ENCRYPTION_KEY}` and set that variable where the servers run; the rendered configs name the variable, never the key"),
            );
        }
        Encryption {
            cipher: match spec.value.cipher.as_ref().map(|c| c.value) {
                Some(Cipher::Aes) => "aes",
                Some(Cipher::Chachapoly) | None => "chachapoly",
            },
            key_var: var.unwrap_or_default().to_string(),
            loc: loc(key),
        }
    }

    /// `2.14.6` (a leading `v` is dropped): three numbers, as nats-server releases are named.
    fn nats_server_version(&mut self, version: &Spanned<String>) -> String {
        let v = version.value.trim().trim_start_matches('v').to_string();
        let parts: Vec<&str> = v.split('.').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit())) {
            self.error(
                Diagnostic::error(format!("`{}` is not a nats-server version", version.value))
                    .at(loc(version))
                    .help("write a release as MAJOR.MINOR.PATCH, e.g. `2.15.1`"),
            );
        }
        v
    }

    /// nats-server refuses a lame-duck duration under 30 s (`minimum is 30 seconds`).
    fn lame_duck_duration(&mut self, value: &Spanned<Scalar>) -> std::time::Duration {
        let d = self.duration(value);
        if !d.is_zero() && d < std::time::Duration::from_secs(30) {
            self.error(
                Diagnostic::error(format!("a lame-duck duration of {} is shorter than nats-server accepts", value.value.0))
                    .at(loc(value))
                    .help("nats-server refuses less than 30s (`minimum is 30 seconds`); a server without clients leaves lame duck in about 2 s anyway"),
            );
        }
        d
    }

    fn size(&mut self, value: &Option<Spanned<Scalar>>, fallback: Option<u64>) -> Option<u64> {
        match value {
            None => fallback,
            Some(s) => match units::parse_size(&s.value.0) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.error(Diagnostic::error(e).at(loc(s)));
                    fallback
                }
            },
        }
    }

    fn duration(&mut self, value: &Spanned<Scalar>) -> std::time::Duration {
        units::parse_duration(&value.value.0).unwrap_or_else(|e| {
            self.error(Diagnostic::error(e).at(loc(value)));
            std::time::Duration::ZERO
        })
    }

    fn ports(&mut self, spec: &PortsSpec, base: Ports) -> Ports {
        let mut pick = |p: &Option<Spanned<u16>>, fallback: u16| match p {
            Some(s) if s.value == 0 => {
                self.diags.push(Diagnostic::error("port 0 is not a usable port").at(loc(s)));
                fallback
            }
            Some(s) => s.value,
            None => fallback,
        };
        Ports {
            client: pick(&spec.client, base.client),
            cluster: pick(&spec.cluster, base.cluster),
            gateway: pick(&spec.gateway, base.gateway),
            leafnode: pick(&spec.leafnode, base.leafnode),
            monitor: pick(&spec.monitor, base.monitor),
        }
    }

    fn subjects(&mut self, list: &[Spanned<String>], object: &str) -> Vec<Pattern> {
        for s in list {
            if let Err(e) = subject::check(&s.value) {
                self.error(
                    Diagnostic::error(format!("invalid subject `{}`: {e}", s.value))
                        .at(loc(s))
                        .object(object.to_string()),
                );
            }
        }
        list.iter()
            .map(|s| Pattern {
                subject: s.value.clone(),
                loc: loc(s),
            })
            .collect()
    }

    fn topology(&mut self, file: TopologyFile) -> Topology {
        self.name(&file.name, "topology");
        let defaults = &file.defaults;
        let base_ports = self.ports(&defaults.ports, Ports::default());
        let js_defaults = JetStreamLimits {
            max_memory_store: self.size(&defaults.jetstream.max_memory_store, None),
            max_file_store: self.size(&defaults.jetstream.max_file_store, None),
        };
        let lame_duck = defaults.lame_duck.as_ref().map(|ld| LameDuck {
            duration: self.lame_duck_duration(&ld.duration),
            grace_period: ld
                .grace_period
                .as_ref()
                .map(|g| self.duration(g))
                .unwrap_or(std::time::Duration::from_secs(10)),
        });
        let settings = ServerSettings {
            listen_host: defaults
                .listen
                .as_ref()
                .map(|l| l.value.clone())
                .unwrap_or_else(|| "0.0.0.0".into()),
            max_payload: self.size(&defaults.max_payload, None),
            lame_duck,
            logging: Logging {
                debug: defaults.logging.debug.unwrap_or(false),
                trace: defaults.logging.trace.unwrap_or(false),
                time: defaults.logging.time.unwrap_or(true),
            },
            jetstream_store_dir: defaults
                .jetstream
                .store_dir
                .as_ref()
                .map(|d| d.value.clone())
                .unwrap_or_else(|| "/data/jetstream".into()),
            jetstream_limits: js_defaults,
            jetstream_domain: defaults.jetstream.domain.as_ref().map(|d| {
                self.name(d, "JetStream domain");
                d.value.clone()
            }),
            encryption: defaults.jetstream.encryption.as_ref().map(|e| self.encryption(e)),
            gateway_seeds: self.gateway_seeds(&defaults.gateway_seeds),
            compression: defaults.compression.as_ref().map(|c| match c.value {
                Compression::Off => "off",
                Compression::Accept => "accept",
                Compression::S2 => {
                    // Measured on nats-server 2.15: `nats-server -t` passes it, the server then
                    // exits at start with `unsupported compression mode "s2"`.
                    self.error(
                        Diagnostic::error("nats-server refuses route compression `s2` at start (`unsupported compression mode \"s2\"`), though `nats-server -t` accepts it")
                            .at(loc(c))
                            .help("write `s2_fast` (S2 at its fastest level, what `s2` names elsewhere), `s2_better`, `s2_best` or `s2_auto` (the level follows the route's latency)"),
                    );
                    "s2_fast"
                }
                Compression::S2Fast => "s2_fast",
                Compression::S2Better => "s2_better",
                Compression::S2Best => "s2_best",
                Compression::S2Auto => "s2_auto",
            }),
            advertise: defaults.advertise.as_ref().is_some_and(|a| a.value),
            max_connections: defaults.max_connections.as_ref().map(|m| m.value),
            max_control_line: self.size(&defaults.max_control_line, None),
            no_auth_user: None,
        };

        if file.regions.is_empty() {
            self.error(
                Diagnostic::error("the topology has no regions")
                    .at(loc(&file.name))
                    .help("add `regions:` with at least one region and its nodes"),
            );
        }
        let regions: Vec<Region> = file
            .regions
            .iter()
            .map(|(name, spec)| self.region(name, spec, base_ports, js_defaults, file.ssh.as_ref()))
            .collect();
        let operator = self.operator(&file.operator);
        let accounts = self.accounts(&file.accounts, operator.is_some());
        let leafnodes: Vec<Leafnode> = file
            .leafnodes
            .iter()
            .map(|(name, spec)| self.leafnode(name, spec, base_ports, &regions, &accounts, &file))
            .collect();

        let mut settings = settings;
        settings.no_auth_user = defaults
            .no_auth_user
            .as_ref()
            .and_then(|u| self.no_auth_user(u, &accounts, operator.is_some()));
        let mut topology = Topology {
            name: file.name.value.clone(),
            settings,
            regions,
            leafnodes,
            accounts,
            jetstream: JetStreamObjects::default(),
            apps: Vec::new(),
            flows: Vec::new(),
            tls: self.tls(&file.tls),
            operator,
            kubernetes: None,
            compose_image: file.compose.as_ref().and_then(|c| c.value.image.as_ref()).map(|i| i.value.clone()),
            nats_server_version: file.nats_server.as_ref().map(|n| self.nats_server_version(&n.value.version)),
            wireguard: None,
            monitoring: Monitoring::default(),
        };
        topology.kubernetes = self.kubernetes(&file, &topology);
        topology.wireguard = self.wireguard(&file, &topology);
        self.port_clashes(&topology);
        self.security(&file, &topology);
        topology.jetstream = self.jetstream_objects(&file, &topology);
        topology.apps = self.apps(&file, &topology);
        self.app_permissions(&mut topology);
        topology.flows = self.flows(&file, &topology);
        topology.monitoring = self.monitoring(&file, &topology);
        // The proof walks the rules, so it needs them sound.
        if !self.diags.iter().any(|d| d.severity == super::Severity::Error) {
            self.prove_flows(&topology);
        }
        if topology.is_super_cluster() && !topology.leafnodes.is_empty() && topology.system_account().is_none() {
            self.error(
                Diagnostic::error("gateways and leafnodes together need a system account")
                    .at(loc(&file.name))
                    .help("declare one under `accounts:` with `system: true` (nats-server refuses to start without it)"),
            );
        }
        topology
    }

    fn region(
        &mut self,
        name: &Spanned<String>,
        spec: &RegionSpec,
        base_ports: Ports,
        js_defaults: JetStreamLimits,
        ssh_defaults: Option<&Spanned<SshSpec>>,
    ) -> Region {
        self.name(name, "region");
        let empty = matches!(&spec.nodes.value, NodesSpec::Count(0)) || matches!(&spec.nodes.value, NodesSpec::List(l) if l.is_empty());
        if empty {
            self.error(Diagnostic::error(format!("region `{}` has no nodes", name.value)).at(loc(&spec.nodes)));
        }
        let nodes: Vec<Node> = match &spec.nodes.value {
            NodesSpec::Count(n) => (1..=*n)
                .map(|i| {
                    let node_name = format!("{}-{i}", name.value);
                    self.server_name(&node_name, loc(&spec.nodes));
                    Node {
                        ssh: self.ssh_host(ssh_defaults, None, &format!("node `{node_name}`"), &node_name),
                        host: node_name.clone(),
                        name: node_name,
                        ports: base_ports,
                        tags: Vec::new(),
                        wireguard: None,
                        loc: loc(&spec.nodes),
                    }
                })
                .collect(),
            NodesSpec::List(list) => list
                .iter()
                .map(|n| {
                    self.name(&n.name, "node");
                    self.server_name(&n.name.value, loc(&n.name));
                    let wireguard = self.node_wireguard(n);
                    let host = match (&n.host, &wireguard) {
                        (Some(h), _) => h.value.clone(),
                        (None, Some(wg)) => wg.address.to_string(),
                        (None, None) => n.name.value.clone(),
                    };
                    // A mesh host is logged into at its public endpoint: the VPN is what apply sets up.
                    let reach = wireguard.as_ref().map(|w| w.endpoint.clone()).unwrap_or_else(|| host.clone());
                    let ssh = self.ssh_host(ssh_defaults, n.ssh.as_ref(), &format!("node `{}`", n.name.value), &reach);
                    Node {
                        ssh,
                        name: n.name.value.clone(),
                        host,
                        ports: self.ports(&n.ports, base_ports),
                        tags: n.tags.iter().map(|t| t.value.clone()).collect(),
                        wireguard,
                        loc: loc(&n.name),
                    }
                })
                .collect(),
        };
        let jetstream = spec.jetstream.as_ref().and_then(|js| match &js.value {
            JetStreamSpec::Enabled(false) => None,
            JetStreamSpec::Enabled(true) => Some(js_defaults),
            JetStreamSpec::Limits(l) => Some(JetStreamLimits {
                max_memory_store: self.size(&l.max_memory_store, js_defaults.max_memory_store),
                max_file_store: self.size(&l.max_file_store, js_defaults.max_file_store),
            }),
        });
        if let (Some(js), true) = (&spec.jetstream, jetstream.is_some() && !nodes.is_empty() && nodes.len() < 3) {
            self.diags.push(
                Diagnostic::warning(format!("region `{}` runs JetStream on {} node(s)", name.value, nodes.len()))
                    .at(loc(js))
                    .help("with fewer than 3 nodes streams cannot be R3 and losing one node stops the JetStream meta group"),
            );
        }
        Region {
            name: name.value.clone(),
            nodes,
            jetstream,
            isolate_leafnode_interest: spec.isolate_leafnode_interest.as_ref().is_some_and(|b| b.value),
            loc: loc(name),
        }
    }

    fn leafnode(
        &mut self,
        name: &Spanned<String>,
        spec: &LeafnodeSpec,
        base_ports: Ports,
        regions: &[Region],
        accounts: &[Account],
        file: &TopologyFile,
    ) -> Leafnode {
        self.name(name, "leafnode");
        self.server_name(&name.value, loc(name));
        let object = format!("leafnode `{}`", name.value);
        if !regions.iter().any(|r| r.name == spec.hub.value) {
            let mut d = Diagnostic::error(format!(
                "leafnode `{}` names hub region `{}`, which does not exist",
                name.value, spec.hub.value
            ))
            .at(loc(&spec.hub));
            if let Some(s) = did_you_mean(&spec.hub.value, regions.iter().map(|r| r.name.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            self.error(d);
        }
        match &spec.account {
            Some(account) => match accounts.iter().find(|a| a.name == account.value) {
                None => {
                    let mut d = Diagnostic::error(format!(
                        "leafnode `{}` binds to account `{}`, which is not declared",
                        name.value, account.value
                    ))
                    .at(loc(account));
                    d = match did_you_mean(&account.value, accounts.iter().map(|a| a.name.as_str())) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help("declare it under `accounts:`"),
                    };
                    self.error(d);
                }
                Some(a) if a.system => self.error(
                    Diagnostic::error(format!("leafnode `{}` binds to the system account `{}`", name.value, a.name))
                        .at(loc(account))
                        .help("bind it to an application account"),
                ),
                Some(_) => {}
            },
            None if !file.accounts.is_empty() => self.error(
                Diagnostic::error(format!("leafnode `{}` does not say which account it binds to", name.value))
                    .at(loc(name))
                    .help("add `account: <name>` naming one of the accounts under `accounts:`"),
            ),
            None => {}
        }
        let jetstream = spec.jetstream.as_ref().map(|js| {
            let domain = match &js.domain {
                Some(d) => {
                    self.name(d, "JetStream domain");
                    if file.defaults.jetstream.domain.as_ref().is_some_and(|hub| hub.value == d.value) {
                        self.error(
                            Diagnostic::error(format!("leafnode `{}` uses the regions' JetStream domain `{}`", name.value, d.value))
                                .at(loc(d))
                                .help("a leaf's JetStream needs a domain of its own; clients reach the regions' streams through `$JS.<regions' domain>.API`"),
                        );
                    }
                    d.value.clone()
                }
                None => {
                    self.error(
                        Diagnostic::error(format!("leafnode `{}` runs JetStream without a domain", name.value))
                            .at(loc(name))
                            .help("set `jetstream: { domain: <name> }` so the leaf's JetStream stays apart from the hub's"),
                    );
                    String::new()
                }
            };
            LeafJetStream {
                domain,
                limits: JetStreamLimits {
                    max_memory_store: self.size(&js.max_memory_store, None),
                    max_file_store: self.size(&js.max_file_store, None),
                },
            }
        });
        if let Some(all) = spec.deny_import.iter().find(|d| d.value == ">") {
            self.diags.push(
                Diagnostic::warning(format!("leafnode `{}` imports nothing from hub region `{}`", name.value, spec.hub.value))
                    .at(loc(all))
                    .help("deny_import `>` keeps every message in the hub, JetStream API replies included; to let only some subjects in, list them under `imports:` (the link user's allow list)"),
            );
        }
        let hub_clustered = regions.len() > 1 || regions.iter().any(|r| r.name == spec.hub.value && r.nodes.len() > 1);
        if let (true, Some(first)) = (hub_clustered, spec.deny_import.first()) {
            // Measured on nats-server 2.15: a leaf whose hub runs a cluster block does not forward
            // its own messages on subjects its deny_import covers (a lone hub node does).
            self.diags.push(
                Diagnostic::warning(format!(
                    "leafnode `{}` cannot publish to hub region `{}` on subjects its deny_import covers",
                    name.value, spec.hub.value
                ))
                .at(loc(first))
                .help("nats-server applies deny_import in both directions when the hub is clustered; publish those subjects from the hub side"),
            );
        }
        let host = spec.host.as_ref().map(|h| h.value.clone()).unwrap_or_else(|| name.value.clone());
        Leafnode {
            ssh: self.ssh_host(file.ssh.as_ref(), spec.ssh.as_ref(), &object, &host),
            name: name.value.clone(),
            hub: spec.hub.value.clone(),
            account: spec.account.as_ref().map(|a| a.value.clone()),
            imports: spec.imports.as_ref().map(|list| self.subjects(list, &object)),
            exports: spec.exports.as_ref().map(|list| self.subjects(list, &object)),
            deny_import: self.subjects(&spec.deny_import, &object),
            deny_export: self.subjects(&spec.deny_export, &object),
            jetstream,
            listen: spec.listen.as_ref().map(|l| l.value.clone()),
            reconnect: spec.reconnect.as_ref().map(|r| self.duration(r)),
            host,
            ports: self.ports(&spec.ports, base_ports),
            loc: loc(name),
        }
    }

    fn accounts(&mut self, specs: &Named<AccountSpec>, operator_mode: bool) -> Vec<Account> {
        let mut system_seen: Option<String> = None;
        let mut users_seen: HashMap<String, (String, Loc)> = HashMap::new();
        let mut accounts = Vec::new();
        for (name, spec) in specs {
            self.name(name, "account");
            let system = spec.system.as_ref().is_some_and(|s| s.value);
            let (jetstream, jetstream_limits) = self.account_jetstream(&spec.jetstream);
            if let (true, Some(flag)) = (system, &spec.system) {
                if let Some(first) = &system_seen {
                    self.error(
                        Diagnostic::error(format!("more than one system account: `{first}` and `{}`", name.value))
                            .at(loc(flag))
                            .help("a deployment has exactly one system account; keep `system: true` on one"),
                    );
                } else {
                    system_seen = Some(name.value.clone());
                }
                if jetstream {
                    self.error(
                        Diagnostic::error(format!("the system account `{}` cannot have JetStream", name.value))
                            .at(loc(name))
                            .help("enable JetStream on an application account instead"),
                    );
                }
            }
            let mut users = Vec::new();
            for u in &spec.users {
                let object = format!("user `{}` of account `{}`", u.user.value, name.value);
                if u.user.value.is_empty() {
                    self.error(Diagnostic::error("a user name cannot be empty").at(loc(&u.user)));
                }
                match users_seen.get(&u.user.value) {
                    Some((other, first)) => self.error(
                        Diagnostic::error(format!("duplicate user `{}`", u.user.value))
                            .at(loc(&u.user))
                            .help(format!(
                                "already defined in account `{other}` at line {}; user names must be unique across accounts",
                                first.line
                            )),
                    ),
                    None => {
                        users_seen.insert(u.user.value.clone(), (name.value.clone(), loc(&u.user)));
                    }
                }
                users.push(self.user(u, &object, operator_mode));
            }
            accounts.push(Account {
                name: name.value.clone(),
                system,
                jetstream,
                jetstream_limits,
                signing_key: spec.signing_key,
                exports: self.exports(spec, &name.value),
                imports: self.imports(spec, &name.value),
                mappings: self.mappings(spec, &name.value),
                default_permissions: spec
                    .default_permissions
                    .as_ref()
                    .map(|p| self.permissions(p, &format!("default permissions of account `{}`", name.value))),
                users,
                loc: loc(name),
            });
        }
        accounts
    }

    fn user(&mut self, u: &UserSpec, object: &str, operator_mode: bool) -> User {
        let password = match (&u.password, operator_mode) {
            (Some(p), false) => Some(self.password(p, object)),
            (None, false) => {
                self.error(
                    Diagnostic::error(format!("user `{}` has no password", u.user.value))
                        .at(loc(&u.user))
                        .object(object.to_string())
                        .help("give it `password: ${VAR}` or a bcrypt hash, or declare an `operator:` so users get credentials files"),
                );
                None
            }
            (Some(p), true) => {
                self.error(
                    Diagnostic::error("a password in operator mode")
                        .at(loc(p))
                        .object(object.to_string())
                        .help("operator-mode users authenticate with their generated `.creds` file; remove `password`"),
                );
                None
            }
            (None, true) => None,
        };
        let permissions = self.permissions(&u.permissions, object);
        let bearer = u.bearer.as_ref().is_some_and(|b| b.value);
        if let (Some(b), false) = (&u.bearer, operator_mode)
            && b.value
        {
            self.error(
                Diagnostic::error("`bearer` needs operator mode")
                    .at(loc(b))
                    .object(object.to_string())
                    .help("bearer tokens are user JWTs; declare an `operator:`"),
            );
        }
        User {
            name: u.user.value.clone(),
            password,
            permissions,
            derived_for: Vec::new(),
            allowed_connection_types: self.connection_types(&u.allowed_connection_types, object),
            bearer,
            client_cert: u.client_cert,
            loc: loc(&u.user),
        }
    }

    fn permissions(&mut self, spec: &PermissionsSpec, object: &str) -> Permissions {
        let mut rule = |r: &Option<RuleSpec>| match r {
            None => Rule::default(),
            Some(r) => Rule {
                allow: self.subjects(&r.allow, object),
                deny: self.subjects(&r.deny, object),
            },
        };
        let publish = rule(&spec.publish);
        let subscribe = rule(&spec.subscribe);
        let responses = spec.allow_responses.as_ref().map(|r| Responses {
            max: r.value.max.unwrap_or(1),
            ttl: r.value.ttl.as_ref().map(|t| {
                units::parse_duration(&t.0).unwrap_or_else(|e| {
                    self.error(Diagnostic::error(e).at(loc(r)));
                    std::time::Duration::ZERO
                })
            }),
        });
        Permissions {
            publish,
            subscribe,
            responses,
        }
    }

    /// `from: to` pairs: `from` a subject pattern, `to` a subject whose `{{wildcard(n)}}` (or
    /// `$n`) names one of `from`'s wildcards.
    fn mappings(&mut self, spec: &AccountSpec, account: &str) -> Vec<Mapping> {
        let object = format!("account `{account}`");
        let mut out = Vec::new();
        for (from, to) in &spec.mappings {
            self.subjects(std::slice::from_ref(from), &object);
            let wildcards = from.value.split('.').filter(|t| *t == "*" || *t == ">").count();
            let mut bad = None;
            let instance: Vec<String> = to
                .value
                .split('.')
                .map(|t| match crate::subject::mapping_wildcard(t) {
                    Some(n) if n >= 1 && n <= wildcards => "x".to_string(),
                    Some(n) => {
                        bad = Some(format!("`{t}` names wildcard {n}, but `{}` has {wildcards}", from.value));
                        "x".to_string()
                    }
                    None => t.to_string(),
                })
                .collect();
            if let Some(why) = bad {
                self.error(
                    Diagnostic::error(format!("invalid mapping destination `{}`: {why}", to.value))
                        .at(loc(to))
                        .object(object.clone()),
                );
            } else if let Err(why) = subject::check(&instance.join(".")) {
                self.error(
                    Diagnostic::error(format!("invalid mapping destination `{}`: {why}", to.value))
                        .at(loc(to))
                        .object(object.clone()),
                );
            }
            out.push(Mapping {
                from: from.value.clone(),
                to: to.value.clone(),
                loc: loc(from),
            });
        }
        out
    }

    fn password(&mut self, value: &Spanned<String>, object: &str) -> Password {
        let text = value.value.trim();
        if let Some(var) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
            let valid = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                return Password::Env {
                    var: var.to_string(),
                    loc: loc(value),
                };
            }
            self.error(
                Diagnostic::error(format!("`{text}` is not a valid environment variable reference"))
                    .at(loc(value))
                    .object(object.to_string()),
            );
        } else if text.starts_with("$2a$") || text.starts_with("$2b$") || text.starts_with("$2y$") {
            return Password::Bcrypt(text.to_string());
        } else {
            self.error(
                Diagnostic::error("literal password in the topology")
                    .at(loc(value))
                    .object(object.to_string())
                    .help("write it as an environment reference such as `${WRITER_PASS}`, or as a bcrypt hash"),
            );
        }
        Password::Env {
            var: String::new(),
            loc: loc(value),
        }
    }

    fn port_clashes(&mut self, topology: &Topology) {
        let mut listeners: Vec<Listener> = Vec::new();
        for region in &topology.regions {
            let clustered = topology.is_clustered(region);
            let hub = topology.leafnodes.iter().any(|l| l.hub == region.name);
            for n in &region.nodes {
                let mut add = |kind, port| {
                    listeners.push(Listener {
                        server: &n.name,
                        host: &n.host,
                        kind,
                        port,
                        loc: n.loc,
                    })
                };
                add("client", n.ports.client);
                add("monitor", n.ports.monitor);
                if clustered {
                    add("cluster", n.ports.cluster);
                }
                if topology.is_super_cluster() {
                    add("gateway", n.ports.gateway);
                }
                if hub {
                    add("leafnode", n.ports.leafnode);
                }
            }
        }
        for l in &topology.leafnodes {
            listeners.push(Listener {
                server: &l.name,
                host: &l.host,
                kind: "client",
                port: l.ports.client,
                loc: l.loc,
            });
            listeners.push(Listener {
                server: &l.name,
                host: &l.host,
                kind: "monitor",
                port: l.ports.monitor,
                loc: l.loc,
            });
        }
        let mut seen: HashMap<(&str, u16), &Listener> = HashMap::new();
        let mut clashes = Vec::new();
        for l in &listeners {
            match seen.get(&(l.host, l.port)) {
                Some(first) => clashes.push(
                    Diagnostic::error(format!(
                        "port {} on host `{}` is used twice: {} port of `{}` and {} port of `{}`",
                        l.port, l.host, first.kind, first.server, l.kind, l.server
                    ))
                    .at(l.loc)
                    .object(format!("node `{}`", l.server))
                    .help("give one of them another port under `ports:`, or another host"),
                ),
                None => {
                    seen.insert((l.host, l.port), l);
                }
            }
        }
        self.diags.extend(clashes);
    }
}
