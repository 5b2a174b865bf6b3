//! The key material of an output tree: nkeys, certificates and JWTs, generated or looked at.

use anyhow::{Result, bail};
use std::path::Path;

use crate::desired::Material;
use crate::desired::{self, Addressing};
use crate::material::auth::{self, Issued};
use crate::material::pki::{Certs, PkiStore, Rotation};
use crate::material::{KeyStore, Keys};
use crate::plan;

/// How a command treats key material that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyMode {
    /// Generate and store it (render, apply).
    Generate,
    /// Stand in placeholders and write nothing (plan).
    Inspect,
    /// Fail: the deployment must already have it (verify).
    Require,
}

/// The keys, certificates and JWTs of one output tree, and what generating them changes.
pub(super) struct Secrets {
    pub(super) keys: Keys,
    pub(super) certs: Certs,
    pub(super) issued: Option<Issued>,
    pub(super) changes: Vec<plan::KeyChange>,
    /// Keys still to be generated (plan only).
    pub(super) missing: Vec<crate::material::KeyId>,
}

impl Secrets {
    pub(super) fn material<'a>(&'a self, tree: &'a Path) -> Material<'a> {
        Material {
            keys: &self.keys,
            certs: &self.certs,
            issued: self.issued.as_ref(),
            tree,
        }
    }
}

pub(super) fn secrets(
    t: &crate::model::Topology,
    tree: &Path,
    addressing: &Addressing,
    mode: KeyMode,
    rotation: Rotation,
) -> Result<Secrets> {
    secrets_for(t, tree, &desired::cert_requests(t, addressing), mode, rotation)
}

/// Like `secrets`, for the certificates `requests` names.
pub(super) fn secrets_for(
    t: &crate::model::Topology,
    tree: &Path,
    requests: &[crate::material::pki::CertRequest],
    mode: KeyMode,
    rotation: Rotation,
) -> Result<Secrets> {
    let store = KeyStore::new(tree);
    let needed = crate::material::needed_keys(t);
    let (keys, missing) = match mode {
        KeyMode::Generate => store.load_or_generate(&needed)?,
        KeyMode::Inspect => store.load_or_placeholder(&needed)?,
        KeyMode::Require => {
            let (keys, missing) = store.load(&needed)?;
            if !missing.is_empty() {
                bail!(
                    "{} missing from `{}`: run apply to create them",
                    missing.iter().map(|k| k.describe()).collect::<Vec<_>>().join(", "),
                    tree.display()
                );
            }
            (keys, missing)
        }
    };
    let pki = PkiStore::new(tree);
    let (certs, cert_events) = match mode {
        KeyMode::Generate => pki.load_or_issue(requests, rotation)?,
        KeyMode::Inspect | KeyMode::Require => pki.inspect(requests)?,
    };
    let previous = crate::observed::files::read_tree(tree, &auth::tree_dirs(t))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let issued = auth::issue(t, &keys, &previous, now)?;
    let mut changes = plan::key_changes(&missing);
    changes.extend(cert_events.into_iter().map(plan::cert_change));
    Ok(Secrets {
        keys,
        certs,
        issued,
        changes,
        missing,
    })
}
