//! Operator mode: the operator, account and user JWTs a topology needs, signed with the stored
//! nkeys. A JWT whose claims did not change is kept byte for byte (read back from the output
//! tree), so re-running apply re-signs nothing.

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::NOT_YET_GENERATED;
use super::jwt;
use super::{KeyId, Keys};
use crate::model::{Account, ExportKind, Permissions, Resolver, Rule, Topology, User};

/// Where each JWT lives in an output tree (relative paths).
pub fn operator_jwt_path() -> PathBuf {
    PathBuf::from("auth/jwt/operator.jwt")
}

pub fn account_jwt_path(account: &str) -> PathBuf {
    PathBuf::from(format!("auth/jwt/{account}.jwt"))
}

/// Credentials of a declared user.
pub fn user_creds_path(account: &str, user: &str) -> PathBuf {
    PathBuf::from(format!("auth/{account}/{user}.creds"))
}

/// Credentials of notif-infra's own user in an account (`_` keeps it apart from account names).
pub fn probe_creds_path(account: &str) -> PathBuf {
    PathBuf::from(format!("auth/_notif-infra/{account}.creds"))
}

/// Credentials a leafnode dials its hub with.
pub fn leaf_creds_path(leaf: &str) -> PathBuf {
    PathBuf::from(format!("auth/_links/{leaf}.creds"))
}

/// The directories of an output tree that hold JWTs and credentials.
pub fn tree_dirs(topology: &Topology) -> Vec<String> {
    if topology.operator.is_none() {
        return Vec::new();
    }
    let mut dirs: Vec<String> = ["auth/jwt", "auth/_notif-infra", "auth/_links", "auth/contexts"]
        .map(String::from)
        .to_vec();
    dirs.extend(topology.accounts.iter().map(|a| format!("auth/{}", a.name)));
    dirs
}

/// Every JWT of an operator-mode deployment.
#[derive(Debug, Clone, Default)]
pub struct Issued {
    pub operator_jwt: String,
    pub resolver: Option<Resolver>,
    /// The system account's public key.
    pub system_account: Option<String>,
    /// In topology order.
    pub accounts: Vec<IssuedAccount>,
    /// User JWTs by the path of their `.creds` file (declared users, notif-infra's, leaf links).
    pub users: BTreeMap<PathBuf, UserJwt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccount {
    pub name: String,
    pub public_key: String,
    pub jwt: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserJwt {
    pub jwt: String,
    pub key: KeyId,
}

impl Issued {
    pub fn account_public(&self, name: &str) -> Option<&str> {
        self.accounts.iter().find(|a| a.name == name).map(|a| a.public_key.as_str())
    }
}

/// The keys operator mode needs, beside notif-infra's own users and the leaf links.
pub fn needed_keys(topology: &Topology) -> Vec<KeyId> {
    let Some(op) = &topology.operator else { return Vec::new() };
    let mut ids = vec![KeyId::Operator];
    if op.signing_key {
        ids.push(KeyId::OperatorSigning);
    }
    for a in &topology.accounts {
        ids.push(KeyId::Account(a.name.clone()));
        if a.signing_key {
            ids.push(KeyId::AccountSigning(a.name.clone()));
        }
        ids.extend(a.users.iter().map(|u| KeyId::User(a.name.clone(), u.name.clone())));
    }
    ids
}

/// Previous JWTs, read from the output tree.
pub trait PreviousJwts {
    fn get(&self, path: &Path) -> Option<String>;
}

impl PreviousJwts for BTreeMap<PathBuf, String> {
    fn get(&self, path: &Path) -> Option<String> {
        BTreeMap::get(self, path).cloned()
    }
}

struct Signer<'a> {
    keys: &'a Keys,
    previous: &'a dyn PreviousJwts,
    now: u64,
}

impl Signer<'_> {
    fn pair(&self, id: &KeyId) -> Option<nkeys::KeyPair> {
        let seed = &self.keys.get(id)?.seed;
        (seed != NOT_YET_GENERATED).then(|| nkeys::KeyPair::from_seed(seed).ok()).flatten()
    }

    fn public(&self, id: &KeyId) -> String {
        self.keys
            .get(id)
            .map(|k| k.public.clone())
            .unwrap_or_else(|| NOT_YET_GENERATED.into())
    }

    /// The JWT at `path` if it still says the same, otherwise a newly signed one (a placeholder
    /// while keys are still to be generated).
    fn jwt(&self, previous: Option<String>, issuer: &KeyId, subject: &str, name: &str, nats: Value) -> Result<String> {
        let Some(issuer) = self.pair(issuer) else {
            return Ok(NOT_YET_GENERATED.into());
        };
        if let Some(prev) = previous
            && jwt::unchanged(&prev, &issuer.public_key(), subject, name, &nats)
        {
            return Ok(prev.trim().to_string());
        }
        jwt::sign(&issuer, subject, name, self.now, nats).map_err(|e| anyhow!("cannot sign the JWT of {name}: {e}"))
    }

    fn previous_user_jwt(&self, creds: &Path) -> Result<Option<String>> {
        let Some(text) = self.previous.get(creds) else { return Ok(None) };
        match jwt::parse_creds(&text) {
            Some((jwt, _)) => Ok(Some(jwt)),
            None => bail!(
                "`{}` is not a credentials file any more (edited by hand?); restore it, or delete it and apply writes it again from the stored key",
                creds.display()
            ),
        }
    }
}

/// Every JWT of an operator-mode topology (`None` with static accounts); new ones are issued
/// at `now` (seconds since the epoch).
pub fn issue(topology: &Topology, keys: &Keys, previous: &dyn PreviousJwts, now: u64) -> Result<Option<Issued>> {
    let Some(op) = &topology.operator else { return Ok(None) };
    let s = Signer { keys, previous, now };
    let account_pub = |name: &str| s.public(&KeyId::Account(name.to_string()));
    let system = topology.system_account().map(|a| account_pub(&a.name));
    let op_signer = if op.signing_key { KeyId::OperatorSigning } else { KeyId::Operator };

    let mut operator_nats = json!({"type": "operator", "version": 2});
    if let Some(sys) = &system {
        operator_nats["system_account"] = json!(sys);
    }
    if op.signing_key {
        operator_nats["signing_keys"] = json!([s.public(&KeyId::OperatorSigning)]);
    }
    let op_pub = s.public(&KeyId::Operator);
    let operator_jwt = s.jwt(
        previous.get(&operator_jwt_path()),
        &KeyId::Operator,
        &op_pub,
        &op.name,
        operator_nats,
    )?;

    let mut issued = Issued {
        operator_jwt,
        resolver: Some(op.resolver),
        system_account: system.clone(),
        ..Issued::default()
    };
    for a in &topology.accounts {
        let nats = account_nats(&s, topology, a)?;
        let public = account_pub(&a.name);
        let jwt = s.jwt(previous.get(&account_jwt_path(&a.name)), &op_signer, &public, &a.name, nats)?;
        issued.accounts.push(IssuedAccount {
            name: a.name.clone(),
            public_key: public,
            jwt,
        });
    }

    let mut user = |account: &Account, key: KeyId, name: &str, nats: Value, creds: PathBuf| -> Result<()> {
        let signer = if account.signing_key {
            KeyId::AccountSigning(account.name.clone())
        } else {
            KeyId::Account(account.name.clone())
        };
        let mut nats = nats;
        if account.signing_key {
            nats["issuer_account"] = json!(account_pub(&account.name));
        }
        let jwt = s.jwt(s.previous_user_jwt(&creds)?, &signer, &s.public(&key), name, nats)?;
        issued.users.insert(creds, UserJwt { jwt, key });
        Ok(())
    };
    for a in &topology.accounts {
        for u in &a.users {
            user(
                a,
                KeyId::User(a.name.clone(), u.name.clone()),
                &u.name,
                user_nats(u),
                user_creds_path(&a.name, &u.name),
            )?;
        }
        user(
            a,
            KeyId::Probe(a.name.clone()),
            "notif-infra",
            unrestricted_user(a, &[]),
            probe_creds_path(&a.name),
        )?;
    }
    for leaf in &topology.leafnodes {
        let Some(account) = leaf.account.as_deref().and_then(|n| topology.account(n)) else {
            continue;
        };
        user(
            account,
            KeyId::LeafLink(leaf.name.clone()),
            &format!("leafnode {}", leaf.name),
            match crate::access::link_permissions(topology, leaf) {
                Some(p) => restricted_user(&p, &["LEAFNODE"]),
                None => unrestricted_user(account, &["LEAFNODE"]),
            },
            leaf_creds_path(&leaf.name),
        )?;
    }
    Ok(Some(issued))
}

fn account_nats(s: &Signer, topology: &Topology, a: &Account) -> Result<Value> {
    let limits = &a.jetstream_limits;
    let js = |v: Option<u64>| if a.jetstream { v.map(|v| v as i64).unwrap_or(-1) } else { 0 };
    let count = |v: Option<i64>| if a.jetstream { v.unwrap_or(-1) } else { 0 };
    let mut nats = json!({
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
            "conn": -1, "leaf": -1,
            "mem_storage": js(limits.max_memory), "disk_storage": js(limits.max_file),
            "streams": count(limits.max_streams), "consumer": count(limits.max_consumers),
        },
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    });
    if a.signing_key {
        nats["signing_keys"] = json!([s.public(&KeyId::AccountSigning(a.name.clone()))]);
    }
    if let Some(p) = &a.default_permissions {
        nats["default_permissions"] = json!({"pub": rule_json(&p.publish), "sub": rule_json(&p.subscribe)});
    }
    if !a.mappings.is_empty() {
        let mappings: serde_json::Map<String, Value> = a
            .mappings
            .iter()
            .map(|m| (m.from.clone(), json!([{"subject": m.to, "weight": 100}])))
            .collect();
        nats["mappings"] = Value::Object(mappings);
    }
    let kind = ExportKind::name;
    if !a.exports.is_empty() {
        nats["exports"] = a
            .exports
            .iter()
            .map(|e| {
                let mut x = json!({"name": e.subject, "subject": e.subject, "type": kind(e.kind)});
                if !e.to.is_empty() {
                    x["token_req"] = json!(true);
                }
                x
            })
            .collect();
    }
    if !a.imports.is_empty() {
        let mut imports = Vec::new();
        for i in &a.imports {
            let exporter = topology.account(&i.from).expect("validated: the exporting account exists");
            let mut x = json!({
                "name": format!("{} from {}", i.subject, i.from),
                "subject": i.subject,
                "account": s.public(&KeyId::Account(exporter.name.clone())),
                "type": kind(i.kind),
            });
            if let Some(local) = &i.local_subject {
                x["local_subject"] = json!(local);
            }
            let export = exporter
                .exports
                .iter()
                .find(|e| e.kind == i.kind && crate::subject::is_subset(&i.subject, &e.subject))
                .expect("validated: the import names an export");
            if !export.to.is_empty() {
                x["token"] = json!(activation(s, exporter, a, &export.subject, kind(i.kind))?);
            }
            imports.push(x);
        }
        nats["imports"] = Value::Array(imports);
    }
    Ok(nats)
}

/// The exporter's permission for `importer` to import a private export. Its `iat` makes it
/// differ on every signing, so a previous one is kept as long as the account JWT holds it.
fn activation(s: &Signer, exporter: &Account, importer: &Account, subject: &str, kind: &str) -> Result<String> {
    let signer = if exporter.signing_key {
        KeyId::AccountSigning(exporter.name.clone())
    } else {
        KeyId::Account(exporter.name.clone())
    };
    let mut nats = json!({"subject": subject, "kind": kind, "type": "activation", "version": 2});
    if exporter.signing_key {
        nats["issuer_account"] = json!(s.public(&KeyId::Account(exporter.name.clone())));
    }
    let importer_pub = s.public(&KeyId::Account(importer.name.clone()));
    let previous = s
        .previous
        .get(&account_jwt_path(&importer.name))
        .and_then(|jwt| jwt::verified_claims(&jwt))
        .and_then(|c| {
            c["nats"]["imports"]
                .as_array()?
                .iter()
                .filter_map(|i| i["token"].as_str())
                .find(|t| {
                    jwt::verified_claims(t).is_some_and(|tc| tc["nats"]["subject"] == json!(subject) && tc["sub"] == json!(importer_pub))
                })
                .map(String::from)
        });
    s.jwt(previous, &signer, &importer_pub, subject, nats)
}

fn rule_json(rule: &Rule) -> Value {
    let mut r = json!({});
    if !rule.allow.is_empty() {
        r["allow"] = json!(rule.allow);
    }
    if !rule.deny.is_empty() {
        r["deny"] = json!(rule.deny);
    }
    r
}

fn user_nats(u: &User) -> Value {
    let mut nats = restricted_user(&u.permissions, &[]);
    if u.bearer {
        nats["bearer_token"] = json!(true);
    }
    if !u.allowed_connection_types.is_empty() {
        nats["allowed_connection_types"] = json!(u.allowed_connection_types);
    }
    nats
}

/// A user's JWT claims under `permissions`.
fn restricted_user(permissions: &Permissions, connection_types: &[&str]) -> Value {
    let Permissions {
        publish,
        subscribe,
        responses,
    } = permissions;
    let mut nats = json!({
        "pub": rule_json(publish),
        "sub": rule_json(subscribe),
        "subs": -1, "data": -1, "payload": -1,
        "type": "user",
        "version": 2,
    });
    if let Some(r) = responses {
        nats["resp"] = json!({"max": r.max, "ttl": r.ttl.map(|t| t.as_nanos() as u64).unwrap_or(0)});
    }
    if !connection_types.is_empty() {
        nats["allowed_connection_types"] = json!(connection_types);
    }
    nats
}

/// A user of notif-infra's own (verification, leaf links without allow lists): allowed everything, explicitly so
/// where the account's default permissions would otherwise bind it.
fn unrestricted_user(account: &Account, connection_types: &[&str]) -> Value {
    let mut nats = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2});
    if account.default_permissions.is_some() {
        nats["pub"] = json!({"allow": [">"]});
        nats["sub"] = json!({"allow": [">"]});
    }
    if !connection_types.is_empty() {
        nats["allowed_connection_types"] = json!(connection_types);
    }
    nats
}
