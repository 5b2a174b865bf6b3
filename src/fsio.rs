//! File writing and state reading helpers shared by every stage that touches the disk: atomic
//! writes with an exact mode, owner-only writes for secrets, JSON state files read back.
//! A leaf: it knows nothing of the topology.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `content` to `path` atomically (temporary file + rename), readable by the owner only.
pub fn write_private(path: &Path, content: &[u8]) -> Result<()> {
    write_atomic(path, content, 0o600)
}

/// A JSON state file read back: `None` when there is none yet, an error naming it when damaged.
pub fn read_state<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("`{}` is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Writes `content` to `path` through a temporary file of this process (two processes writing
/// the same file never share one), synced, renamed into place, and the directory synced: after
/// a crash the file holds either the old or the new content.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let (tmp, f) = write_temporary(dir, path, content, mode)?;
    f.sync_all().with_context(|| format!("cannot write `{}`", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync `{}`", dir.display()))
}

/// The temporary file of this process beside `path` (in `dir`), holding `content` with
/// exactly `mode`, not yet synced.
fn write_temporary(dir: &Path, path: &Path, content: &[u8], mode: u32) -> Result<(PathBuf, fs::File)> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write `{}`", tmp.display()))?;
    f.write_all(content).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    // The mode given to open() is masked by the umask; set it exactly.
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("cannot set the mode of `{}`", tmp.display()))?;
    Ok((tmp, f))
}

/// Writes many files atomically, as `write_atomic` does each, with one flush of the filesystem
/// for all of them instead of two syncs per file: every temporary file is written, the
/// filesystem synced once, then each renamed into place and each directory synced. After a
/// crash each file holds either its old or its new content. Paths are relative to `root`.
pub fn write_batch_atomic<'a>(root: &Path, files: impl IntoIterator<Item = (&'a Path, &'a [u8], u32)>) -> Result<()> {
    let mut renames = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for (rel, content, mode) in files {
        let path = root.join(rel);
        let dir = path.parent().unwrap_or(root).to_path_buf();
        if dirs.insert(dir.clone()) {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let (tmp, _) = write_temporary(&dir, &path, content, mode)?;
        renames.push((tmp, path));
    }
    if renames.is_empty() {
        return Ok(());
    }
    let root_dir = fs::File::open(root).with_context(|| format!("cannot open `{}`", root.display()))?;
    nix::unistd::syncfs(&root_dir).with_context(|| format!("cannot sync the filesystem of `{}`", root.display()))?;
    for (tmp, path) in &renames {
        fs::rename(tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))?;
    }
    for dir in &dirs {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync `{}`", dir.display()))?;
    }
    Ok(())
}

/// Removes a file; one already gone is not an error.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove `{}`", path.display())),
        _ => Ok(()),
    }
}

/// Removes a directory tree; one already gone is not an error.
pub fn remove_dir_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove `{}`", path.display())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_sets_the_exact_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.txt");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn batch_write_places_every_file_with_its_mode_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/old.conf"), "old").unwrap();
        let files = [
            (Path::new("a/old.conf"), b"new".as_slice(), 0o644),
            (Path::new("a/b/secret"), b"seed".as_slice(), 0o600),
        ];
        write_batch_atomic(dir.path(), files).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("a/old.conf")).unwrap(), "new");
        assert_eq!(fs::read_to_string(dir.path().join("a/b/secret")).unwrap(), "seed");
        let mode = |p: &str| fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("a/old.conf"), mode("a/b/secret")), (0o644, 0o600));
        let names: Vec<_> = fs::read_dir(dir.path().join("a"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn damaged_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{").unwrap();
        let e = read_state::<serde_json::Value>(&path).unwrap_err();
        assert!(format!("{e:#}").contains("state.json"));
        assert!(read_state::<serde_json::Value>(&dir.path().join("none.json")).unwrap().is_none());
    }
}
