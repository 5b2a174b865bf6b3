//! What one nats-server config says: the types the template renders, one per block.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::security::{OperatorConf, TlsConf};

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
    /// Absent from states written before the setting existed.
    #[serde(default)]
    pub isolate_leafnode_interest: bool,
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
