//! The plan is data: every file, key and server change apply will make, computed purely from
//! the desired state and what was observed. Apply does exactly what the plan says.

mod display;
mod jetstream;

pub use display::{files_section, render_human};
pub use jetstream::{FieldChange, JsAction, JsChange, LiveState, changes as jetstream_changes};

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::desired::{JetStreamConf, ObjectKind, RenderedFile, ServerConf};
use crate::material::KeyId;
use crate::material::redact;
use crate::observed::jetstream::LiveObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    pub action: FileAction,
    /// Unified diff of a changed file, with secrets redacted (empty for a created or deleted one).
    pub diff: String,
    #[serde(skip)]
    pub content: Option<String>,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyChange {
    pub key: String,
    pub description: String,
    pub action: FileAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerAction {
    Start,
    Reload,
    Restart,
    Stop,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerChange {
    pub server: String,
    pub action: ServerAction,
    pub reason: String,
    /// The digest the server must show once the change is applied (start, reload, restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_digest: Option<String>,
}

/// A change to the cluster as a whole, made through the servers' APIs once the servers run
/// their new configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ClusterStep {
    /// Before `from` stops, a stream with a replica on it gets one more replica on a server that
    /// stays; once `from` stopped, the stream returns to its `replicas` without it: it never has
    /// fewer current replicas than it should.
    MoveReplicas {
        account: Option<String>,
        stream: String,
        from: String,
        replicas: u64,
    },
    /// A server that left the topology is removed from the JetStream meta group right after it
    /// stops (before the next one does), so the group shrinks to the servers that remain.
    RemoveMetaPeer { server: String },
    /// The same, without a system account to do it with: apply says how to do it by hand.
    MetaPeerStays { server: String },
    /// An account's JWT pushed to the servers' full resolver (`$SYS.REQ.CLAIMS.UPDATE`).
    PushAccountJwt { account: String, path: PathBuf },
}

impl ClusterStep {
    pub fn describe(&self) -> String {
        match self {
            ClusterStep::MoveReplicas {
                account,
                stream,
                from,
                replicas,
            } => format!(
                "move the replica of stream {stream}{} off {from}: R{} before it stops, back to R{replicas} without it after",
                account.as_deref().map(|a| format!(" (account {a})")).unwrap_or_default(),
                replicas + 1,
            ),
            ClusterStep::RemoveMetaPeer { server } => format!("remove {server} from the JetStream meta group"),
            ClusterStep::MetaPeerStays { server } => format!(
                "{server} stays in the JetStream meta group as an offline peer (no system account): run `nats server raft peer-remove {server}`"
            ),
            ClusterStep::PushAccountJwt { account, path } => {
                format!("push the JWT of account `{account}` ({}) to the nats resolver", path.display())
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub topology: String,
    pub target: String,
    pub keys: Vec<KeyChange>,
    pub files: Vec<FileChange>,
    pub servers: Vec<ServerChange>,
    pub cluster: Vec<ClusterStep>,
    pub jetstream: Vec<JsChange>,
}

impl Plan {
    /// Whether apply has anything to do (unmanaged objects are only reported).
    pub fn has_changes(&self) -> bool {
        self.servers_change() || !self.cluster.is_empty() || self.jetstream_work().next().is_some()
    }

    /// Whether keys, files or servers change: then JetStream is read again after the rollout.
    pub fn servers_change(&self) -> bool {
        !(self.keys.is_empty() && self.files.is_empty() && self.servers.is_empty())
    }

    pub fn jetstream_work(&self) -> impl Iterator<Item = &JsChange> {
        self.jetstream.iter().filter(|c| c.action != JsAction::Unmanaged)
    }

    pub fn replacements(&self) -> impl Iterator<Item = &JsChange> {
        self.jetstream.iter().filter(|c| c.action == JsAction::Replace)
    }
}

/// A server as observed on the target.
#[derive(Debug, Clone, Default)]
pub struct ObservedServer {
    pub running: bool,
    /// `/varz.config_digest` of the running server.
    pub digest: Option<String>,
    /// The config apply last gave this server.
    pub applied: Option<ServerConf>,
    /// Why the target says the server must restart to run as deployed (a pod template
    /// changed), whatever its config.
    pub must_restart: Option<String>,
}

/// A server as desired: its config and the digest nats-server computes for it (`None` when it
/// cannot be computed yet, e.g. keys still to be generated).
#[derive(Debug, Clone)]
pub struct DesiredServer {
    pub name: String,
    pub conf: ServerConf,
    pub digest: Option<String>,
}

pub fn file_changes(desired: &[RenderedFile], on_disk: &BTreeMap<PathBuf, String>) -> Vec<FileChange> {
    let mut changes = Vec::new();
    for f in desired {
        let old = on_disk.get(&f.path);
        if old == Some(&f.content) {
            continue;
        }
        // A new file's diff would be the file itself: only changes carry one.
        let diff = match old {
            Some(old_text) => {
                let diff = similar::TextDiff::from_lines(old_text.as_str(), &f.content)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", f.path.display()), &format!("b/{}", f.path.display()))
                    .to_string();
                shown_diff(f, &diff)
            }
            None => String::new(),
        };
        changes.push(FileChange {
            path: f.path.clone(),
            action: if old.is_some() { FileAction::Update } else { FileAction::Create },
            diff,
            content: Some(f.content.clone()),
            secret: f.secret,
        });
    }
    let wanted: std::collections::BTreeSet<&PathBuf> = desired.iter().map(|f| &f.path).collect();
    for path in on_disk.keys() {
        if !wanted.contains(path) {
            changes.push(FileChange {
                path: path.clone(),
                action: FileAction::Delete,
                diff: String::new(),
                content: None,
                secret: false,
            });
        }
    }
    changes
}

/// What a file's diff may show: credentials and Kubernetes secrets by presence only; WireGuard
/// configs with their keys masked (the peers are what changes); others with seeds redacted.
fn shown_diff(f: &RenderedFile, diff: &str) -> String {
    let ext = f.path.extension().and_then(|e| e.to_str());
    if ext == Some("creds") || (f.secret && ext == Some("yaml")) {
        return String::new();
    }
    if f.path.starts_with("wireguard") {
        return diff
            .lines()
            .map(|l| match l.split_once(" = ") {
                Some((k, _)) if k.ends_with("PrivateKey") || k.ends_with("PresharedKey") => format!("{k} = <secret>\n"),
                _ => format!("{l}\n"),
            })
            .collect();
    }
    redact(diff)
}

pub fn key_changes(missing: &[KeyId]) -> Vec<KeyChange> {
    missing
        .iter()
        .map(|id| KeyChange {
            key: id.file_stem(),
            description: format!("{} (generated, seed stored 0600)", id.describe()),
            action: FileAction::Create,
        })
        .collect()
}

/// A certificate to issue, as plan shows it: presence only.
pub fn cert_change(e: crate::material::pki::CertEvent) -> KeyChange {
    KeyChange {
        key: e.file,
        description: match e.action {
            crate::material::pki::CertAction::Create => "certificate and key to issue (key stored 0600)".into(),
            crate::material::pki::CertAction::Rotate => format!("certificate and key to reissue: {}", e.reason),
        },
        action: match e.action {
            crate::material::pki::CertAction::Create => FileAction::Create,
            crate::material::pki::CertAction::Rotate => FileAction::Update,
        },
    }
}

/// The cluster steps a rollout of `servers` needs: each stream with a replica on a server that
/// leaves moves that replica first; servers that leave are taken out of the JetStream meta
/// group; with the full resolver, every application account's JWT is pushed whenever servers
/// changed (a started server's resolver store begins empty). A stream whose cluster would keep
/// fewer servers than its replicas is an error naming it.
pub fn cluster_steps(
    desired: &crate::desired::Desired,
    servers_change: bool,
    servers: &[ServerChange],
    live: &LiveState,
) -> Result<Vec<ClusterStep>, String> {
    let mut steps = Vec::new();
    let leaving: Vec<&str> = servers
        .iter()
        .filter(|c| c.action == ServerAction::Stop)
        .map(|c| c.server.as_str())
        .collect();
    if let LiveState::Read(objects) = live {
        steps.extend(replica_moves(desired, &leaving, objects)?);
    }
    if !desired.jetstream_meta.is_empty() {
        for server in &leaving {
            let server = server.to_string();
            steps.push(match desired.system_account {
                Some(_) => ClusterStep::RemoveMetaPeer { server },
                None => ClusterStep::MetaPeerStays { server },
            });
        }
    }
    let resolving = desired
        .servers
        .iter()
        .any(|s| s.conf.operator.as_ref().is_some_and(|o| o.resolver_dir.is_some()));
    if let (true, true, Some(system)) = (servers_change, resolving, &desired.system_account) {
        let system_file = crate::material::auth::account_jwt_path(system);
        for f in desired
            .auth_files
            .iter()
            .filter(|f| f.path.starts_with("auth/jwt") && f.path != crate::material::auth::operator_jwt_path() && f.path != system_file)
        {
            let account = f.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            steps.push(ClusterStep::PushAccountJwt {
                account,
                path: f.path.clone(),
            });
        }
    }
    Ok(steps)
}

/// The replicas on `leaving` servers that must move before those stop, read from the streams'
/// groups as their leaders report them.
fn replica_moves(desired: &crate::desired::Desired, leaving: &[&str], objects: &[LiveObject]) -> Result<Vec<ClusterStep>, String> {
    let mut moves = Vec::new();
    for o in objects.iter().filter(|o| o.kind != ObjectKind::Consumer && o.leaf_domain.is_none()) {
        let peers: Vec<&str> = o.cluster["leader"]
            .as_str()
            .into_iter()
            .chain(
                o.cluster["replicas"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["name"].as_str()),
            )
            .collect();
        // The topology's count for a declared stream: an interrupted move leaves one more live.
        let declared = desired
            .jetstream
            .iter()
            .find(|d| d.kind == o.kind && d.account == o.account && d.stream == o.stream);
        let replicas = match declared {
            Some(d) => u64::from(d.replicas),
            None => o.config.get("num_replicas").and_then(serde_json::Value::as_u64).unwrap_or(1),
        };
        let cluster = o.cluster["name"].as_str().unwrap_or_default();
        for from in leaving.iter().filter(|l| peers.contains(l)) {
            let staying = desired.jetstream_nodes().iter().filter(|s| s.region == cluster).count() as u64;
            if staying < replicas {
                return Err(format!(
                    "{} has R{replicas} in region {cluster}, which would keep {staying} JetStream server(s) once {from} leaves: lower its replicas or move it (placement) first",
                    crate::desired::object_label(o.kind, &o.account, &o.stream, &o.name)
                ));
            }
            moves.push(ClusterStep::MoveReplicas {
                account: o.account.clone(),
                stream: o.stream.clone(),
                from: from.to_string(),
                replicas,
            });
        }
    }
    Ok(moves)
}

/// What each server needs: start what does not run, reload or restart what runs another
/// config, stop what the topology no longer names.
pub fn server_changes(desired: &[DesiredServer], observed: &BTreeMap<String, ObservedServer>) -> Vec<ServerChange> {
    let mut changes = Vec::new();
    for d in desired {
        let change = |action, reason: String| ServerChange {
            server: d.name.clone(),
            action,
            reason,
            expected_digest: d.digest.clone(),
        };
        let o = observed.get(&d.name).cloned().unwrap_or_default();
        if !o.running {
            changes.push(change(ServerAction::Start, "not running".into()));
            continue;
        }
        if let Some(why) = &o.must_restart {
            changes.push(change(ServerAction::Restart, why.clone()));
            continue;
        }
        if d.digest.is_some() && o.digest == d.digest {
            // The digest ignores comments, where the version and the certificate's fingerprint
            // are written.
            if let Some(a) = o.applied.as_ref().filter(|a| a.version != d.conf.version) {
                let reason = format!(
                    "nats-server version changed ({} -> {})",
                    a.version.as_deref().unwrap_or("unpinned"),
                    d.conf.version.as_deref().unwrap_or("unpinned")
                );
                changes.push(change(ServerAction::Restart, reason));
            } else if o.applied.as_ref().is_some_and(|a| a.certificate != d.conf.certificate) {
                changes.push(change(ServerAction::Reload, "TLS certificate replaced".into()));
            }
            continue;
        }
        match &o.applied {
            None => changes.push(change(ServerAction::Restart, "no record of the config it was started with".into())),
            Some(prev) if classify(prev, &d.conf).1.is_empty() => changes.push(change(
                ServerAction::Reload,
                "the running config differs from the rendered one (edited by hand or changed environment)".into(),
            )),
            Some(prev) => {
                let (restart, fields) = classify(prev, &d.conf);
                let reason = fields.join(", ") + " changed";
                changes.push(change(if restart { ServerAction::Restart } else { ServerAction::Reload }, reason));
            }
        }
    }
    for (name, o) in observed {
        if o.running && !desired.iter().any(|d| &d.name == name) {
            changes.push(ServerChange {
                server: name.clone(),
                action: ServerAction::Stop,
                reason: "no longer in the topology".into(),
                expected_digest: None,
            });
        }
    }
    changes
}

/// Which settings differ, and whether any of them needs a restart. nats-server reloads routes,
/// accounts, users, leaf remotes, tags, limits and logging; it needs a restart for gateways,
/// names, ports, the leafnode listener and JetStream's store, domain or lower limits.
pub fn classify(old: &ServerConf, new: &ServerConf) -> (bool, Vec<&'static str>) {
    let mut restart = false;
    let mut fields = Vec::new();
    let mut field = |name: &'static str, changed: bool, needs_restart: bool| {
        if changed {
            fields.push(name);
            restart |= needs_restart;
        }
    };
    field("server_name", old.server_name != new.server_name, true);
    field("nats-server version", old.version != new.version, true);
    field("client listen address", old.listen != new.listen, true);
    field(
        "monitoring address",
        (&old.http, old.monitor_https) != (&new.http, new.monitor_https),
        true,
    );
    field("TLS certificate", old.certificate != new.certificate, false);
    // Certificates reload; turning TLS on or off, or mutual verification, needs a restart.
    let tls_mode = |c: &ServerConf| {
        let v = |t: &Option<crate::desired::TlsConf>| t.as_ref().map(|t| t.verify);
        (
            v(&c.tls),
            v(&c.cluster.as_ref().and_then(|c| c.tls.clone())),
            v(&c.gateway.as_ref().and_then(|g| g.tls.clone())),
            v(&c.leafnode_listener.as_ref().and_then(|l| l.tls.clone())),
        )
    };
    field("TLS", tls_mode(old) != tls_mode(new), true);
    // Preloaded accounts are read at start (the full resolver preloads only the system
    // account; it takes the others pushed while it runs).
    field("operator or preloaded accounts", old.operator != new.operator, true);
    let cluster_id = |c: &ServerConf| c.cluster.as_ref().map(|c| (c.name.clone(), c.listen.clone()));
    field("cluster listener", cluster_id(old) != cluster_id(new), true);
    let routes = |c: &ServerConf| c.cluster.as_ref().map(|c| c.routes.clone());
    field("routes", routes(old) != routes(new), false);
    // Not in nats-server's list of reloadable route options: restarted, one server at a time.
    let route_options = |c: &ServerConf| c.cluster.as_ref().map(|c| (c.compression.clone(), c.advertise.clone()));
    field("route compression or advertise", route_options(old) != route_options(new), true);
    // Which shared file holds the seeds, and the entry of the server's own region (which
    // nats-server ignores), say nothing about the gateways it forms.
    let gateways = |c: &ServerConf| {
        c.gateway.as_ref().map(|g| {
            let remotes: Vec<crate::desired::RemoteGatewayConf> = g.gateways.iter().filter(|r| r.name != g.name).cloned().collect();
            (g.name.clone(), g.listen.clone(), remotes, g.tls.clone(), g.advertise.clone())
        })
    };
    field("gateways", gateways(old) != gateways(new), true);
    field("leafnode listener", old.leafnode_listener != new.leafnode_listener, true);
    field("leafnode remotes", old.leaf_remotes != new.leaf_remotes, false);
    field(
        "jetstream",
        old.jetstream != new.jetstream,
        jetstream_needs_restart(&old.jetstream, &new.jetstream),
    );
    field("system account", old.system_account != new.system_account, true);
    field("accounts", old.accounts != new.accounts, false);
    field("server tags", old.server_tags != new.server_tags, false);
    field("max_payload", old.max_payload != new.max_payload, false);
    field(
        "client limits",
        (old.max_connections, old.max_control_line) != (new.max_connections, new.max_control_line),
        false,
    );
    field("client_advertise", old.client_advertise != new.client_advertise, false);
    field("no_auth_user", old.no_auth_user != new.no_auth_user, false);
    field(
        "lame duck",
        (&old.lame_duck_duration, &old.lame_duck_grace_period) != (&new.lame_duck_duration, &new.lame_duck_grace_period),
        false,
    );
    field(
        "logging",
        (old.debug, old.trace, old.logtime) != (new.debug, new.trace, new.logtime),
        false,
    );
    (restart, fields)
}

fn jetstream_needs_restart(old: &Option<JetStreamConf>, new: &Option<JetStreamConf>) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => {
            let lowered = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) => b < a,
                (None, None) => false,
                _ => true,
            };
            // A store written with one key (or none) is read with it: a new key needs a restart.
            o.store_dir != n.store_dir
                || o.domain != n.domain
                || (&o.cipher, &o.key_var) != (&n.cipher, &n.key_var)
                || lowered(o.max_memory_store, n.max_memory_store)
                || lowered(o.max_file_store, n.max_file_store)
        }
        (None, None) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{ClusterConf, GatewayConf, RemoteGatewayConf};

    fn conf() -> ServerConf {
        ServerConf {
            server_name: "a".into(),
            version: None,
            certificate: None,
            listen: "127.0.0.1:1".into(),
            tls: None,
            http: "127.0.0.1:2".into(),
            monitor_https: false,
            server_tags: vec![],
            max_payload: None,
            lame_duck_duration: None,
            lame_duck_grace_period: None,
            client_advertise: None,
            max_connections: None,
            max_control_line: None,
            no_auth_user: None,
            debug: false,
            trace: false,
            logtime: true,
            cluster: Some(ClusterConf {
                name: "east".into(),
                listen: "127.0.0.1:3".into(),
                routes: vec!["nats-route://b:3".into()],
                tls: None,
                compression: None,
                advertise: None,
            }),
            gateway: None,
            leafnode_listener: None,
            leaf_remotes: vec![],
            leaf_reconnect: None,
            jetstream: Some(JetStreamConf {
                store_dir: "/d".into(),
                max_memory_store: Some(10),
                max_file_store: None,
                domain: None,
                cipher: None,
                key_var: None,
            }),
            system_account: None,
            operator: None,
            accounts: Default::default(),
            accounts_file: None,
        }
    }

    #[test]
    fn new_route_reloads_new_gateway_restarts() {
        let old = conf();
        let mut routes = conf();
        routes.cluster.as_mut().unwrap().routes.push("nats-route://c:3".into());
        assert_eq!(classify(&old, &routes), (false, vec!["routes"]));
        let mut gw = conf();
        gw.gateway = Some(GatewayConf {
            name: "east".into(),
            listen: "x:4".into(),
            gateways: Default::default(),
            gateways_file: "_gateways-0.conf".into(),
            tls: None,
            advertise: None,
        });
        assert_eq!(classify(&old, &gw), (true, vec!["gateways"]));
    }

    #[test]
    fn gateways_compare_without_the_shared_file_and_the_own_region() {
        let remote = |name: &str, url: &str| RemoteGatewayConf {
            name: name.into(),
            urls: vec![url.into()],
        };
        let with = |gateways: Vec<RemoteGatewayConf>, file: &str| {
            let mut c = conf();
            c.gateway = Some(GatewayConf {
                name: "east".into(),
                listen: "x:4".into(),
                gateways: std::sync::Arc::new(gateways),
                gateways_file: file.into(),
                tls: None,
                advertise: None,
            });
            c
        };
        // A config written before the seeds were shared listed only the other regions, inline.
        let inline = with(vec![remote("west", "nats://w:4")], "");
        let shared = with(vec![remote("east", "nats://e:4"), remote("west", "nats://w:4")], "_gateways-0.conf");
        assert_eq!(classify(&inline, &shared), (false, vec![]));
        let moved = with(vec![remote("east", "nats://e:4"), remote("west", "nats://w:5")], "_gateways-0.conf");
        assert_eq!(classify(&shared, &moved), (true, vec!["gateways"]));
    }

    #[test]
    fn jetstream_limit_raise_reloads_lower_restarts() {
        let old = conf();
        let mut up = conf();
        up.jetstream.as_mut().unwrap().max_memory_store = Some(20);
        assert!(!classify(&old, &up).0);
        let mut down = conf();
        down.jetstream.as_mut().unwrap().max_memory_store = Some(5);
        assert!(classify(&old, &down).0);
    }

    #[test]
    fn server_actions() {
        let d = |name: &str| DesiredServer {
            name: name.into(),
            conf: conf(),
            digest: Some("sha256:1".into()),
        };
        let mut observed = BTreeMap::new();
        observed.insert(
            "same".to_string(),
            ObservedServer {
                running: true,
                digest: Some("sha256:1".into()),
                applied: Some(conf()),
                must_restart: None,
            },
        );
        observed.insert(
            "drifted".to_string(),
            ObservedServer {
                running: true,
                digest: Some("sha256:0".into()),
                applied: Some(conf()),
                must_restart: None,
            },
        );
        observed.insert(
            "gone".to_string(),
            ObservedServer {
                running: true,
                digest: None,
                applied: None,
                must_restart: None,
            },
        );
        // Its config is as rendered, but the target says it runs an older pod template.
        observed.insert(
            "outdated".to_string(),
            ObservedServer {
                running: true,
                digest: Some("sha256:1".into()),
                applied: Some(conf()),
                must_restart: Some("its pod template changed".into()),
            },
        );
        let changes = server_changes(&[d("same"), d("drifted"), d("new"), d("outdated")], &observed);
        let got: Vec<_> = changes.iter().map(|c| (c.server.as_str(), c.action)).collect();
        assert_eq!(
            got,
            vec![
                ("drifted", ServerAction::Reload),
                ("new", ServerAction::Start),
                ("outdated", ServerAction::Restart),
                ("gone", ServerAction::Stop)
            ]
        );
        assert_eq!(changes[2].reason, "its pod template changed");
    }
}
