//! A backup on disk: one snapshot file per stream, as nats-server streamed it, and a manifest
//! (`manifest.json`) with each file's size and SHA-256 and the stream's configuration, state and
//! consumers when it was taken. The manifest is written last: a directory without one is an
//! unfinished backup. Files are private to their owner (0600): they hold the messages.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::desired::ObjectKind;
use crate::model::AccountName;

pub const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The topology the streams were taken from.
    pub topology: String,
    /// When the backup finished (RFC 3339, UTC).
    pub created: String,
    pub streams: Vec<StreamBackup>,
    /// The deployment's identity, sealed (`backup --identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<SealedFile>,
}

/// A file of the backup with its checksum.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedFile {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One stream (or KV bucket, or object store) in a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamBackup {
    pub kind: ObjectKind,
    pub account: AccountName,
    /// The JetStream domain of the leafnode that held it; `None`: the regions'.
    pub leaf_domain: Option<String>,
    /// The object's own name (the bucket's, for KV buckets and object stores).
    pub name: String,
    pub stream: String,
    /// The snapshot file, relative to the backup directory.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub messages: u64,
    /// Durable consumers whose configuration and position the snapshot holds.
    pub consumers: Vec<String>,
    pub config: Value,
    pub state: Value,
}

impl StreamBackup {
    pub fn label(&self) -> String {
        crate::desired::object_label(self.kind, &self.account, &self.stream, &self.name)
    }
}

/// Where a stream's snapshot goes inside the backup directory.
pub fn file_name(account: &AccountName, stream: &str) -> String {
    match account {
        Some(a) => format!("accounts/{a}/{stream}.tar.s2"),
        None => format!("{stream}.tar.s2"),
    }
}

/// Prepares an empty directory for a backup: an existing backup is never overwritten.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.join(MANIFEST).exists() {
        bail!(
            "`{}` already holds a backup (it has a {MANIFEST}): choose another directory",
            dir.display()
        );
    }
    if dir.is_dir() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("`{}` is not empty: back up into a new or empty directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    set_mode(dir, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of `{}`", path.display()))
}

/// A snapshot file being written, hashed as it goes.
pub struct SnapshotWriter {
    path: PathBuf,
    file: std::fs::File,
    hash: Sha256,
    pub bytes: u64,
}

impl SnapshotWriter {
    pub fn create(dir: &Path, relative: &str) -> Result<SnapshotWriter> {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(SnapshotWriter {
            path,
            file,
            hash: Sha256::new(),
            bytes: 0,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.hash.update(chunk);
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Flushes the file to disk; its size and SHA-256 (hex).
    pub fn finish(self) -> Result<(u64, String)> {
        self.file
            .sync_all()
            .with_context(|| format!("cannot write `{}`", self.path.display()))?;
        Ok((self.bytes, hex(&self.hash.finalize())))
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    crate::fsio::write_atomic(&dir.join(MANIFEST), serde_json::to_string_pretty(manifest)?.as_bytes(), 0o600)
}

pub fn new_manifest(topology: &str, streams: Vec<StreamBackup>, identity: Option<SealedFile>) -> Manifest {
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Manifest {
        format: FORMAT,
        topology: topology.to_string(),
        created,
        streams,
        identity,
    }
}

/// Reads a backup's manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`{}` is not a backup: it has no {MANIFEST} (an interrupted backup never writes one)",
            dir.display()
        ),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))),
    };
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("`{}` is not a notif-infra backup manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "`{}` is a backup of format {}; this notif-infra reads format {FORMAT}",
            path.display(),
            manifest.format
        );
    }
    Ok(manifest)
}

/// Checks that each snapshot file is whole: its size and SHA-256 as the manifest records them.
pub fn check_files<'a>(dir: &Path, streams: impl IntoIterator<Item = &'a StreamBackup>) -> Result<()> {
    for s in streams {
        let path = dir.join(&s.file);
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("backup file `{}` of {} is missing", path.display(), s.label()))?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf).with_context(|| format!("cannot read `{}`", path.display()))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            bytes += n as u64;
        }
        let sha256 = hex(&hash.finalize());
        if sha256 != s.sha256 || bytes != s.bytes {
            bail!(
                "backup file `{}` is damaged: its SHA-256 is {sha256} ({bytes} bytes), the manifest records {} ({} bytes)",
                path.display(),
                s.sha256,
                s.bytes
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup_of(dir: &Path, content: &[u8]) -> StreamBackup {
        let mut w = SnapshotWriter::create(dir, &file_name(&None, "EVENTS")).unwrap();
        w.write(content).unwrap();
        let (bytes, sha256) = w.finish().unwrap();
        StreamBackup {
            kind: ObjectKind::Stream,
            account: None,
            leaf_domain: None,
            name: "EVENTS".into(),
            stream: "EVENTS".into(),
            file: file_name(&None, "EVENTS"),
            bytes,
            sha256,
            messages: 1,
            consumers: vec![],
            config: Value::Null,
            state: Value::Null,
        }
    }

    #[test]
    fn a_whole_file_passes_and_one_changed_byte_is_named_with_both_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let entry = backup_of(dir.path(), b"snapshot bytes");
        check_files(dir.path(), [&entry]).unwrap();
        std::fs::write(dir.path().join(&entry.file), b"snapshot bytez").unwrap();
        let err = check_files(dir.path(), [&entry]).unwrap_err().to_string();
        assert!(err.contains("EVENTS.tar.s2` is damaged"), "{err}");
        assert!(err.contains(&entry.sha256), "{err}");
    }

    #[test]
    fn snapshot_files_are_private_and_an_existing_backup_is_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b");
        create_dir(&target).unwrap();
        let entry = backup_of(&target, b"x");
        let mode = std::fs::metadata(target.join(&entry.file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write_manifest(&target, &new_manifest("dev", vec![entry], None)).unwrap();
        assert!(create_dir(&target).unwrap_err().to_string().contains("already holds a backup"));
        assert_eq!(read_manifest(&target).unwrap().streams.len(), 1);
    }
}
