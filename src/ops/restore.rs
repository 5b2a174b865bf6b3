//! `restore`: puts streams from a backup into a running deployment (this topology's or another's):
//! every file's checksum is checked and every stream's fate decided before anything changes; an
//! existing stream that holds messages is only replaced when asked to.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use super::backup::PATIENCE;

/// How long a restored stream's consumers have to answer before it is restored again.
const FIRST_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
use super::{Options, Transfer, reach};
use crate::backup::{self, StreamBackup};
use crate::desired::Desired;
use crate::jsapi::retry_transient;
use crate::observed::jetstream::Connections;

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub streams: Vec<Restored>,
    pub bytes: u64,
    pub seconds: f64,
    /// Megabytes (10^6 bytes) of snapshot per second.
    pub mb_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Restored {
    pub label: String,
    pub messages: u64,
    pub consumers: Vec<String>,
    /// An existing stream was deleted first (empty, or `--replace`).
    pub replaced: bool,
}

/// A stream to restore, as this deployment will hold it.
struct Step<'a> {
    entry: &'a StreamBackup,
    domain: Option<String>,
    config: Value,
    existing: Option<u64>,
}

/// Brings a backup's sealed identity into the deployment's directory on this machine, which
/// must hold none (a new machine, or after `destroy --purge-keys`); returns what it restored.
/// Nothing runs yet: the next apply deploys with it.
pub fn restore_identity(opts: &Options, from: &Path) -> Result<Vec<std::path::PathBuf>> {
    let manifest = backup::read_manifest(from)?;
    let loaded = super::load(&opts.topology)?;
    let sealed = manifest.identity.as_ref().with_context(|| {
        format!(
            "the backup in `{}` holds no identity (it was taken without --identity); nothing was restored",
            from.display()
        )
    })?;
    let passphrase = crate::identity::passphrase()?;
    let path = from.join(&sealed.file);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    if backup::sha256_hex(&bytes) != sealed.sha256 {
        bail!(
            "`{}` is damaged: its SHA-256 is not the one the manifest records; nothing was restored",
            path.display()
        );
    }
    let tree = std::path::absolute(opts.deployment_dir(&loaded.topology.name))?;
    crate::identity::open(&bytes, &path, &passphrase, &tree)
}

pub async fn restore(
    opts: &Options,
    from: &Path,
    names: &[String],
    replace: bool,
    transfer: &(dyn Fn(Transfer) + Sync),
) -> Result<RestoreReport> {
    let manifest = backup::read_manifest(from)?;
    let entries = pick(&manifest.streams, names, from)?;
    backup::check_files(from, entries.iter().copied()).context("nothing was restored")?;
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let reached = reach(opts, t).await?;
    let desired = &reached.desired;
    for e in &entries {
        if !desired.jetstream_accounts.contains(&e.account) {
            bail!(
                "{} belongs to account `{}`, which topology `{}` does not give JetStream; nothing was restored",
                e.label(),
                e.account.as_deref().unwrap_or("$G"),
                t.name
            );
        }
    }
    let conns = Connections::open(desired, &reached.keys)
        .await
        .context("cannot reach the JetStream API")?;
    let outcome = restore_all(&conns, desired, from, entries, replace, transfer).await;
    conns.close().await;
    outcome
}

/// The backup's streams `names` picks (all when none): by stream or bucket name.
fn pick<'a>(streams: &'a [StreamBackup], names: &[String], from: &Path) -> Result<Vec<&'a StreamBackup>> {
    let named = |s: &StreamBackup, n: &str| s.stream == n || s.name == n;
    let unknown: Vec<&String> = names.iter().filter(|n| !streams.iter().any(|s| named(s, n))).collect();
    if !unknown.is_empty() {
        bail!(
            "the backup in `{}` holds no stream named {}; it holds: {}",
            from.display(),
            unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            streams.iter().map(|s| s.stream.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(streams
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| named(s, n)))
        .collect())
}

async fn restore_all(
    conns: &Connections,
    desired: &Desired,
    from: &Path,
    entries: Vec<&StreamBackup>,
    replace: bool,
    transfer: &(dyn Fn(Transfer) + Sync),
) -> Result<RestoreReport> {
    let mut steps = Vec::new();
    let mut refused = Vec::new();
    for entry in entries {
        let (domain, config) = placed(desired, entry);
        let api = conns
            .get(&entry.account)
            .context("no JetStream connection")?
            .in_domain(domain.as_deref());
        let existing = match retry_transient(PATIENCE, || api.stream_info(&entry.stream)).await {
            Ok(info) => Some(info["state"]["messages"].as_u64().unwrap_or(0)),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {}; nothing was restored", entry.label()))),
        };
        if let Some(messages) = existing.filter(|m| *m > 0 && !replace) {
            refused.push(format!("{} holds {messages} message(s)", entry.label()));
        }
        steps.push(Step {
            entry,
            domain,
            config,
            existing,
        });
    }
    if !refused.is_empty() {
        bail!(
            "nothing was restored: {}; restore with --replace to delete and replace them",
            refused.join(", ")
        );
    }
    let started = Instant::now();
    let mut restored = Vec::new();
    let mut bytes = 0;
    for step in steps {
        let label = step.entry.label();
        let api = conns
            .get(&step.entry.account)
            .context("no JetStream connection")?
            .in_domain(step.domain.as_deref());
        // nats-server may drop a consumer it has just restored when the replaced stream's consumer
        // of the same name is still being deleted (seen under load): a stream whose consumer does
        // not come back is deleted and restored once more.
        let mut attempt = 1;
        let messages = loop {
            if step.existing.is_some() || attempt > 1 {
                retry_transient(PATIENCE, || api.delete_stream(&step.entry.stream))
                    .await
                    .with_context(|| format!("cannot delete {label} before restoring it"))?;
            }
            let path = from.join(&step.entry.file);
            let mut file = std::fs::File::open(&path).with_context(|| format!("cannot open `{}`", path.display()))?;
            transfer(Transfer::Begin {
                label: &label,
                total: Some(step.entry.bytes),
            });
            let info = api
                .restore(
                    &step.config,
                    &step.entry.state,
                    |buf| file.read(buf),
                    |n| transfer(Transfer::Bytes(n)),
                )
                .await;
            transfer(Transfer::End);
            let info = info.with_context(|| format!("cannot restore {label} from `{}`", path.display()))?;
            let messages = info["state"]["messages"].as_u64().unwrap_or(0);
            if messages != step.entry.messages {
                bail!(
                    "{label} was restored with {messages} message(s), the backup holds {}",
                    step.entry.messages
                );
            }
            // Restored means usable: nats-server recreates the consumers a moment after the
            // stream; each must answer (its leader elected) before restore ends.
            let patience = if attempt == 1 { FIRST_PATIENCE } else { PATIENCE };
            let mut missing = None;
            for consumer in &step.entry.consumers {
                if let Err(e) = consumer_back(&api, &step.entry.stream, consumer, patience).await {
                    missing = Some((consumer, e));
                    break;
                }
            }
            match missing {
                None => break messages,
                Some((_, e)) if attempt == 1 && e.is_not_found() => attempt += 1,
                Some((consumer, e)) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("{label} was restored but its consumer {consumer} did not come back"))
                    );
                }
            }
        };
        bytes += step.entry.bytes;
        restored.push(Restored {
            label,
            messages,
            consumers: step.entry.consumers.clone(),
            replaced: step.existing.is_some(),
        });
    }
    let elapsed = started.elapsed();
    Ok(RestoreReport {
        streams: restored,
        bytes,
        seconds: elapsed.as_secs_f64(),
        mb_per_s: super::throughput(bytes, elapsed),
    })
}

/// Waits until the restored consumer answers, for at most `PATIENCE`.
async fn consumer_back(
    api: &crate::jsapi::JsApi,
    stream: &str,
    consumer: &str,
    patience: std::time::Duration,
) -> Result<(), crate::jsapi::ApiError> {
    let started = Instant::now();
    loop {
        match api.consumer_info(stream, consumer).await {
            Ok(_) => return Ok(()),
            Err(e) if (e.is_not_found() || e.is_transient()) && started.elapsed() < patience => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where and how this deployment holds the stream: a stream the topology declares takes its
/// domain, replicas and placement from the topology (a backup may come from another one, whose
/// regions this one does not have); an undeclared one keeps its own, less the placement.
fn placed(desired: &Desired, entry: &StreamBackup) -> (Option<String>, Value) {
    let mut config = entry.config.clone();
    let declared = desired
        .jetstream
        .iter()
        .find(|o| o.account == entry.account && o.stream == entry.stream && o.kind == entry.kind);
    let Some(obj) = config.as_object_mut() else {
        return (entry.leaf_domain.clone(), config);
    };
    obj.remove("placement");
    match declared {
        Some(d) => {
            for field in ["num_replicas", "placement"] {
                if let Some(v) = d.config.get(field) {
                    obj.insert(field.into(), v.clone());
                }
            }
            (d.leaf_domain.clone(), config)
        }
        None => (entry.leaf_domain.clone(), config),
    }
}
