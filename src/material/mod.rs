//! Generated material, made once and kept in a deployment's key store: nkeys and their ids,
//! the TLS PKI, operator/account/user JWTs and credentials, WireGuard keys. Depends only on
//! the model and the file helpers.

pub mod auth;
pub mod jwt;
pub mod nkeys;
pub mod pki;
pub mod wireguard;

/// The directories of a deployment's tree that hold its identity: the CA and certificates
/// (`pki/`), the operator, account, user and WireGuard keys and what they signed (`auth/`).
/// Losing them invalidates every credential handed out; destroy keeps them unless asked.
pub const IDENTITY_DIRS: &[&str] = &["pki", "auth"];

use std::collections::BTreeMap;

use crate::model::Topology;

pub use self::nkeys::{KeyStore, NOT_YET_GENERATED, redact};

/// An nkey pair the tool generated; the seed is a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NkeyPair {
    pub public: String,
    pub seed: String,
}

/// Which generated keys a topology needs, by id (also their file names in the secret store).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyId {
    /// notif-infra's own user in an account: it sends the probes and, in the system account,
    /// manages the JetStream meta group.
    Probe(String),
    /// The nkey a leafnode authenticates to its hub with.
    LeafLink(String),
    Operator,
    OperatorSigning,
    Account(String),
    AccountSigning(String),
    /// A declared user of an account (operator mode).
    User(String, String),
}

impl KeyId {
    pub fn file_stem(&self) -> String {
        match self {
            KeyId::Probe(account) => format!("probe-{account}"),
            KeyId::LeafLink(leaf) => format!("leaf-{leaf}"),
            KeyId::Operator => "operator".into(),
            KeyId::OperatorSigning => "operator-signing".into(),
            KeyId::Account(a) => format!("account-{a}"),
            KeyId::AccountSigning(a) => format!("account-signing-{a}"),
            KeyId::User(a, u) => format!("user-{a}-{u}"),
        }
    }

    /// The nkey type, which the seed's prefix shows.
    pub fn kind(&self) -> ::nkeys::KeyPairType {
        match self {
            KeyId::Operator | KeyId::OperatorSigning => ::nkeys::KeyPairType::Operator,
            KeyId::Account(_) | KeyId::AccountSigning(_) => ::nkeys::KeyPairType::Account,
            KeyId::Probe(_) | KeyId::LeafLink(_) | KeyId::User(..) => ::nkeys::KeyPairType::User,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            KeyId::Probe(account) => format!("notif-infra user of account `{account}`"),
            KeyId::LeafLink(leaf) => format!("leafnode link key of `{leaf}`"),
            KeyId::Operator => "operator identity key".into(),
            KeyId::OperatorSigning => "operator signing key".into(),
            KeyId::Account(a) => format!("identity key of account `{a}`"),
            KeyId::AccountSigning(a) => format!("signing key of account `{a}`"),
            KeyId::User(a, u) => format!("key of user `{u}` in account `{a}`"),
        }
    }
}

/// Keys needed by `topology`: a notif-infra user per account (none without accounts, where
/// clients need no credentials) and a link key per leafnode bound to an account.
pub fn needed_keys(topology: &Topology) -> Vec<KeyId> {
    let probes = topology.accounts.iter().map(|a| KeyId::Probe(a.name.clone()));
    let leafs = topology
        .leafnodes
        .iter()
        .filter(|l| l.account.is_some())
        .map(|l| KeyId::LeafLink(l.name.clone()));
    probes.chain(leafs).chain(auth::needed_keys(topology)).collect()
}

pub type Keys = BTreeMap<KeyId, NkeyPair>;
