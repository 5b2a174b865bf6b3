//! TLS blocks, operator-mode settings and the credential files of the desired state, from the
//! model and the key material (keys, certificates, JWTs) generated for it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Addressing, Endpoint, RenderedFile};
use crate::material::auth::{self, Issued};
use crate::material::pki::{CA_CERT, CertRequest, Certs};
use crate::material::{KeyId, Keys};
use crate::model::{AccountLimits, Resolver, TlsListener, Topology};

/// Stem of notif-infra's own client certificate, for listeners that verify clients.
pub const OWN_CLIENT_CERT: &str = "clients/notif-infra";

/// The key material the desired state is built with.
pub struct Material<'a> {
    pub keys: &'a Keys,
    pub certs: &'a Certs,
    pub issued: Option<&'a Issued>,
    /// The output tree on this machine (where notif-infra's own clients read the CA and creds).
    pub tree: &'a Path,
}

/// A `tls { .. }` block: the server's own certificate, the CA, and whether peers must present one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConf {
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
    pub verify: bool,
}

impl TlsConf {
    /// The block as nats-server reads it, on one line.
    pub fn block(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        format!(
            "tls {{ cert_file: {}, key_file: {}, ca_file: {}, verify: {}, timeout: 2 }}",
            q(&self.cert_file),
            q(&self.key_file),
            q(&self.ca_file),
            self.verify
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorConf {
    pub jwt: String,
    /// `None` for the memory resolver; the directory the full resolver keeps JWTs in.
    pub resolver_dir: Option<String>,
    pub preload: Arc<Vec<PreloadedAccount>>,
    /// The shared file (beside the configs) the preloaded accounts are included from; `None`:
    /// written in the config itself (a full resolver's system account).
    #[serde(default)]
    pub preload_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreloadedAccount {
    pub public_key: String,
    pub jwt: String,
}

/// An account's JetStream limits as config-mode accounts write them (unset ones left out).
pub fn account_limits(limits: &AccountLimits) -> Vec<super::AccountLimitConf> {
    [
        ("max_mem", limits.max_memory.map(|v| v as i64)),
        ("max_file", limits.max_file.map(|v| v as i64)),
        ("max_streams", limits.max_streams),
        ("max_consumers", limits.max_consumers),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        Some(super::AccountLimitConf {
            name: name.to_string(),
            value: value?,
        })
    })
    .collect()
}

/// How notif-infra's own clients (verification, JetStream) reach TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    pub ca: PathBuf,
    /// Certificate and key, when a listener verifies clients.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Every certificate the topology needs: one per server (every name and address it is reached
/// by) and client certificates for users that ask for one and for notif-infra itself when
/// clients are verified.
pub fn cert_requests(topology: &Topology, addressing: &Addressing) -> Vec<CertRequest> {
    if !topology.tls.any() {
        return Vec::new();
    }
    let servers = topology
        .regions
        .iter()
        .flat_map(|r| r.nodes.iter().map(|n| (n.name.as_str(), n.host.as_str(), n.ports)))
        .chain(topology.leafnodes.iter().map(|l| (l.name.as_str(), l.host.as_str(), l.ports)));
    let mut requests: Vec<CertRequest> = servers
        .map(|(name, host, ports)| {
            let e = addressing.endpoint(topology, name, host, ports);
            // The host it is dialled by, and the address notif-infra reaches it at when that differs.
            let mut sans = vec![
                e.host.clone(),
                e.reach_host.clone(),
                name.to_string(),
                "localhost".into(),
                "127.0.0.1".into(),
            ];
            sans.extend(addressing.aliases(topology, name));
            let mut seen = std::collections::HashSet::new();
            sans.retain(|s| seen.insert(s.clone()));
            CertRequest {
                stem: name.to_string(),
                common_name: name.to_string(),
                sans,
                server: true,
            }
        })
        .collect();
    let client = |stem: String, cn: String| CertRequest {
        stem,
        common_name: cn,
        sans: Vec::new(),
        server: false,
    };
    if topology.tls.client.is_some_and(|c| c.verify) {
        requests.push(client(OWN_CLIENT_CERT.into(), "notif-infra".into()));
    }
    for a in &topology.accounts {
        for u in a.users.iter().filter(|u| u.client_cert) {
            requests.push(client(format!("clients/{}/{}", a.name, u.name), u.name.clone()));
        }
    }
    requests
}

/// The `tls` block of one listener of server `name`, when the listener uses TLS.
pub fn listener_tls(e: &Endpoint, name: &str, listener: Option<TlsListener>) -> Option<TlsConf> {
    listener.map(|l| TlsConf {
        cert_file: format!("{}/pki/{name}.pem", e.config_dir),
        key_file: format!("{}/pki/{name}-key.pem", e.config_dir),
        ca_file: format!("{}/pki/{CA_CERT}", e.config_dir),
        verify: l.verify,
    })
}

/// Every account's JWT, as a memory resolver preloads them.
pub fn every_account_preload(issued: &Issued) -> Vec<PreloadedAccount> {
    issued
        .accounts
        .iter()
        .map(|a| PreloadedAccount {
            public_key: a.public_key.clone(),
            jwt: a.jwt.clone(),
        })
        .collect()
}

/// The operator settings of one server. With the full resolver, a cluster node preloads only
/// the system account (the others are pushed to it, and a preload that changes would not reach
/// a running account); a leafnode, which does not hear the hub's system account, keeps a
/// memory resolver with every account: `every_account`, included from the shared file.
pub fn operator_conf(
    issued: &Issued,
    e: &Endpoint,
    server: &str,
    is_node: bool,
    every_account: &Arc<Vec<PreloadedAccount>>,
) -> OperatorConf {
    let full = is_node && issued.resolver == Some(Resolver::Full);
    let (preload, preload_file) = if full {
        let system = every_account
            .iter()
            .filter(|a| issued.system_account.as_deref() == Some(a.public_key.as_str()))
            .cloned()
            .collect();
        (Arc::new(system), None)
    } else {
        (every_account.clone(), Some(super::SHARED_PRELOAD_FILE.to_string()))
    };
    OperatorConf {
        jwt: issued.operator_jwt.clone(),
        resolver_dir: full.then(|| format!("{}/resolver/{server}", e.config_dir)),
        preload,
        preload_file,
    }
}

pub fn client_tls(topology: &Topology, tree: &Path) -> Option<ClientTls> {
    let client = topology.tls.client?;
    let pki = tree.join("pki");
    Some(ClientTls {
        ca: pki.join(CA_CERT),
        identity: client.verify.then(|| {
            (
                pki.join(format!("{OWN_CLIENT_CERT}.pem")),
                pki.join(format!("{OWN_CLIENT_CERT}-key.pem")),
            )
        }),
    })
}

/// The files operator mode adds to the output tree: the operator and account JWTs, a `.creds`
/// file per user (secret), and a natscli context per declared user.
pub fn auth_files(issued: &Issued, keys: &Keys, tree: &Path, client_url: Option<&str>, ca: Option<&Path>) -> Vec<RenderedFile> {
    let mut files = vec![RenderedFile {
        path: auth::operator_jwt_path(),
        content: format!("{}\n", issued.operator_jwt),
        secret: false,
    }];
    for account in &issued.accounts {
        files.push(RenderedFile {
            path: auth::account_jwt_path(&account.name),
            content: format!("{}\n", account.jwt),
            secret: false,
        });
    }
    for (path, user) in &issued.users {
        let seed = keys.get(&user.key).map(|k| k.seed.as_str()).unwrap_or_default();
        files.push(RenderedFile {
            path: path.clone(),
            content: crate::material::jwt::creds_file(&user.jwt, seed),
            secret: true,
        });
        if let (KeyId::User(account, name), Some(url)) = (&user.key, client_url) {
            let mut context = BTreeMap::new();
            context.insert("description", format!("user {name} of account {account}"));
            context.insert("url", url.to_string());
            context.insert("creds", tree.join(path).display().to_string());
            if let Some(ca) = ca {
                context.insert("ca", ca.display().to_string());
            }
            files.push(RenderedFile {
                path: PathBuf::from(format!("auth/contexts/{account}-{name}.json")),
                content: serde_json::to_string_pretty(&context).expect("JSON serializes") + "\n",
                secret: false,
            });
        }
    }
    files
}
