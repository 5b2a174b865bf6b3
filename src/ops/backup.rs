//! `backup`: snapshots the declared streams, KV buckets and object stores (or those named)
//! through the JetStream API into a new directory, with a checksum manifest written last.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Options, Transfer, reach};
use crate::backup::{self, SnapshotWriter, StreamBackup};
use crate::desired::{JsObject, ObjectKind};
use crate::jsapi::retry_transient;
use crate::observed::jetstream::Connections;

/// How long a busy or electing cluster is waited for.
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub dir: String,
    pub streams: Vec<StreamBackup>,
    pub bytes: u64,
    /// The sealed identity's file, when it was asked for.
    pub identity: Option<String>,
    pub seconds: f64,
    /// Megabytes (10^6 bytes) of snapshot per second.
    pub mb_per_s: f64,
}

/// The declared streams that hold data (not consumers), or those `names` picks by stream or
/// bucket name; a name the topology does not declare is an error.
pub(super) fn select<'a>(declared: &'a [JsObject], names: &[String]) -> Result<Vec<&'a JsObject>> {
    let streams: Vec<&JsObject> = declared.iter().filter(|o| o.kind != ObjectKind::Consumer).collect();
    if names.is_empty() {
        return Ok(streams);
    }
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !streams.iter().any(|o| &o.stream == *n || &o.name == *n))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the topology declares no stream, KV bucket or object store named {}; it declares: {}",
            unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            streams.iter().map(|o| o.stream.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(streams
        .into_iter()
        .filter(|o| names.iter().any(|n| n == &o.stream || n == &o.name))
        .collect())
}

/// Snapshots the streams `names` picks (every declared one when empty) into `to`; with
/// `identity`, the deployment's identity too, sealed under the passphrase from the environment.
pub async fn backup(
    opts: &Options,
    names: &[String],
    to: &Path,
    identity: bool,
    transfer: &(dyn Fn(Transfer) + Sync),
) -> Result<BackupReport> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    // The passphrase is checked before anything is read or written.
    let passphrase = identity.then(crate::identity::passphrase).transpose()?;
    let reached = reach(opts, t).await?;
    let objects = select(&reached.desired.jetstream, names)?;
    if objects.is_empty() && passphrase.is_none() {
        bail!(
            "topology `{}` declares no streams, KV buckets or object stores: there is nothing to back up",
            t.name
        );
    }
    let existed = to.exists();
    backup::create_dir(to)?;
    let started = Instant::now();
    let taken = async {
        let sealed = match &passphrase {
            Some(p) => Some(seal_identity(reached.target.dir(), p, to)?),
            None => None,
        };
        Ok::<_, anyhow::Error>((snapshot_all(&reached, &objects, to, transfer).await?, sealed))
    }
    .await;
    let (streams, sealed) = match taken {
        Ok(s) => s,
        Err(e) => {
            // What was written is no backup: leave the directory as it was found.
            if existed {
                for entry in std::fs::read_dir(to)?.flatten() {
                    let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
                }
            } else {
                let _ = std::fs::remove_dir_all(to);
            }
            return Err(e);
        }
    };
    let identity = sealed.as_ref().map(|s| s.file.clone());
    backup::write_manifest(to, &backup::new_manifest(&t.name, streams.clone(), sealed))?;
    let elapsed = started.elapsed();
    let bytes = streams.iter().map(|s| s.bytes).sum();
    Ok(BackupReport {
        dir: to.display().to_string(),
        streams,
        bytes,
        identity,
        seconds: elapsed.as_secs_f64(),
        mb_per_s: super::throughput(bytes, elapsed),
    })
}

/// Seals the identity of the deployment tree `tree` into the backup directory `to`.
fn seal_identity(tree: &Path, passphrase: &age::secrecy::SecretString, to: &Path) -> Result<backup::SealedFile> {
    let sealed = crate::identity::seal(tree, passphrase)?;
    crate::fsio::write_atomic(&to.join(crate::identity::FILE), &sealed, 0o600)?;
    Ok(backup::SealedFile {
        file: crate::identity::FILE.into(),
        bytes: sealed.len() as u64,
        sha256: backup::sha256_hex(&sealed),
    })
}

async fn snapshot_all(
    reached: &super::Reached,
    objects: &[&JsObject],
    to: &Path,
    transfer: &(dyn Fn(Transfer) + Sync),
) -> Result<Vec<StreamBackup>> {
    let conns = Connections::open(&reached.desired, &reached.keys)
        .await
        .context("cannot reach the JetStream API")?;
    let mut taken = Vec::new();
    for o in objects {
        let entry = snapshot_one(&conns, o, to, transfer).await;
        transfer(Transfer::End);
        match entry {
            Ok(e) => taken.push(e),
            Err(e) => {
                conns.close().await;
                return Err(e.context(format!("cannot back up {}", o.label())));
            }
        }
    }
    conns.close().await;
    Ok(taken)
}

async fn snapshot_one(conns: &Connections, o: &JsObject, to: &Path, transfer: &(dyn Fn(Transfer) + Sync)) -> Result<StreamBackup> {
    let api = conns
        .get(&o.account)
        .context("no JetStream connection for its account")?
        .in_domain(o.leaf_domain.as_deref());
    let consumers = retry_transient(PATIENCE, || api.consumers(&o.stream))
        .await?
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let label = o.label();
    // The snapshot is compressed: its size is known only at its end.
    transfer(Transfer::Begin {
        label: &label,
        total: None,
    });
    let file = backup::file_name(&o.account, &o.stream);
    let mut writer = SnapshotWriter::create(to, &file)?;
    let header = api
        .snapshot(&o.stream, |chunk| {
            writer.write(chunk)?;
            transfer(Transfer::Bytes(chunk.len() as u64));
            Ok(())
        })
        .await?;
    let (bytes, sha256) = writer.finish()?;
    Ok(StreamBackup {
        kind: o.kind,
        account: o.account.clone(),
        leaf_domain: o.leaf_domain.clone(),
        name: o.name.clone(),
        stream: o.stream.clone(),
        file,
        bytes,
        sha256,
        messages: header.state["messages"].as_u64().unwrap_or(0),
        consumers,
        config: header.config,
        state: header.state,
    })
}
