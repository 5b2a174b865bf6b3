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
    let dir = parent_dir(path);
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let (tmp, f) = write_temporary(dir, path, content, mode)?;
    f.sync_all().with_context(|| format!("cannot write `{}`", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync `{}`", dir.display()))
}

/// Writes `content` to `path` through a temporary file and a rename, so that readers see the
/// old or the new content, without making it durable: for files that mean nothing after the
/// machine restarts (a running process's pid). Two fsyncs per pid file made the starts of 66
/// servers wait seconds on a busy disk.
pub fn write_visible(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let (tmp, _) = write_temporary(dir, path, content, mode)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
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

/// Writes many files atomically, as `write_atomic` does each, without two syncs per file in a
/// row: every temporary file is written, all are made durable at once (`sync_all_of`), then
/// each is renamed into place and each directory synced. After a crash each file holds either
/// its old or its new content. Paths are relative to `root`.
pub fn write_batch_atomic<'a>(root: &Path, files: impl IntoIterator<Item = (&'a Path, &'a [u8], u32)>) -> Result<()> {
    let mut renames = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let mut bytes = 0u64;
    for (rel, content, mode) in files {
        let path = root.join(rel);
        let dir = path.parent().unwrap_or(root).to_path_buf();
        if dirs.insert(dir.clone()) {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        let (tmp, _) = write_temporary(&dir, &path, content, mode)?;
        bytes += content.len() as u64;
        renames.push((tmp, path));
    }
    if renames.is_empty() {
        return Ok(());
    }
    let temporaries: Vec<&Path> = renames.iter().map(|(tmp, _)| tmp.as_path()).collect();
    sync_all_of(root, &temporaries, bytes)?;
    for (tmp, path) in &renames {
        fs::rename(tmp, path).with_context(|| format!("cannot move `{}` into place", path.display()))?;
    }
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    sync_each(&dirs)
}

/// Dirty pages of other processes beyond which one `syncfs` costs more than syncing each file.
const OTHERS_DIRTY_LIMIT: u64 = 64 << 20;

/// Makes `files` (`bytes` in all, under `root`) durable. One `syncfs` is cheapest when they are
/// most of what the machine has dirty (3000 files: 0.07 s), but it also waits for every other
/// process's dirty pages (3.0 s beside 3 GB another process wrote). An fsync of each file, many
/// at once, pays for these files only (0.29-0.31 s either way; measured on this project's
/// 2-core VM). So `syncfs` while the machine's dirty pages are about these files alone.
fn sync_all_of(root: &Path, files: &[&Path], bytes: u64) -> Result<()> {
    match machine_dirty_bytes() {
        Some(dirty) if dirty <= bytes + OTHERS_DIRTY_LIMIT => {
            let root_dir = fs::File::open(root).with_context(|| format!("cannot open `{}`", root.display()))?;
            nix::unistd::syncfs(&root_dir).with_context(|| format!("cannot sync the filesystem of `{}`", root.display()))
        }
        _ => sync_each(files),
    }
}

/// The machine's dirty and under-writeback page cache, from `/proc/meminfo`.
fn machine_dirty_bytes() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(field))?;
        line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some((kib("Dirty:")? + kib("Writeback:")?) * 1024)
}

/// Syncs each path (a file or a directory), 32 at once: the device serves concurrent flushes
/// together (3000 files: 2.3 s one at a time, 0.3 s 32 at once).
fn sync_each(paths: &[&Path]) -> Result<()> {
    const AT_ONCE: usize = 32;
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..AT_ONCE.min(paths.len()))
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while let Some(path) = paths.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        fs::File::open(path)
                            .and_then(|f| f.sync_all())
                            .with_context(|| format!("cannot sync `{}`", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a sync thread does not panic"))
    })
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
    fn syncing_each_file_names_the_one_that_cannot_be_synced() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        fs::write(&present, "x").unwrap();
        let missing = dir.path().join("missing");
        sync_each(&[present.as_path()]).unwrap();
        let e = sync_each(&[present.as_path(), missing.as_path()]).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
    }

    #[test]
    fn the_machine_dirty_pages_are_read_from_meminfo() {
        assert!(machine_dirty_bytes().is_some());
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
