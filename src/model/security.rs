//! TLS per listener and operator mode (accounts and users as JWTs), as the topology asks.

use serde::Serialize;

/// Which listeners speak TLS. Certificates come from the deployment's own CA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tls {
    pub client: Option<TlsListener>,
    pub cluster: Option<TlsListener>,
    pub gateway: Option<TlsListener>,
    pub leafnode: Option<TlsListener>,
    /// Monitoring over https, with the client listener's certificate.
    pub monitor: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsListener {
    /// Mutual TLS: the peer must present a certificate signed by the CA.
    pub verify: bool,
}

impl Tls {
    pub fn any(&self) -> bool {
        self.client.is_some() || self.cluster.is_some() || self.gateway.is_some() || self.leafnode.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub resolver: Resolver,
    pub signing_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolver {
    /// Account JWTs preloaded from the config; changing one is a config reload.
    Memory,
    /// The nats resolver: JWTs stored by the servers, updated by pushing them.
    Full,
}

/// An account's JetStream limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_memory: Option<u64>,
    pub max_file: Option<u64>,
    pub max_streams: Option<i64>,
    pub max_consumers: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    Stream,
    Service,
}

impl ExportKind {
    pub fn name(self) -> &'static str {
        match self {
            ExportKind::Stream => "stream",
            ExportKind::Service => "service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub kind: ExportKind,
    pub subject: String,
    /// Accounts allowed to import it; empty means public.
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub kind: ExportKind,
    /// The subject as exported.
    pub subject: String,
    pub from: String,
    /// The subject importers see; the exported one when `None`.
    pub local_subject: Option<String>,
    pub loc: crate::model::Loc,
}

impl Import {
    pub fn local(&self) -> &str {
        self.local_subject.as_deref().unwrap_or(&self.subject)
    }
}
