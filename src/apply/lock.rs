//! One command at a time changes a deployment: `apply`, `destroy` and `rotate` hold an
//! exclusive lock on `<state-root>/.<deployment>.lock` (an `flock`, released by the kernel when
//! its holder exits, however it exits). The file names the holder, so a second command says
//! who holds it; a holder that died is noticed and its lock taken over.

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Who holds a deployment's lock, as its lock file says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {} (`{}`), since {}", self.pid, self.host, self.command, self.since)
    }
}

/// The lock of one deployment, held until dropped.
pub struct DeploymentLock {
    path: PathBuf,
    file: Flock<File>,
}

impl Drop for DeploymentLock {
    /// A holder that ends normally leaves no name behind: a name left in the file is a
    /// holder that died.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

fn lock_path(deployment_dir: &Path) -> PathBuf {
    let name = deployment_dir.file_name().and_then(|n| n.to_str()).unwrap_or("deployment");
    deployment_dir.with_file_name(format!(".{name}.lock"))
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// The holder a held lock file names. A holder writes its name just after it takes the lock:
/// an empty file is read again for a moment before it counts as nameless.
/// How long a lock whose recorded holder is dead may stay held before it is refused.
const DEAD_HOLDER_GRACE: Duration = Duration::from_secs(3);

fn read_holder(file: &mut File) -> Option<Holder> {
    for _ in 0..25 {
        let mut text = String::new();
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() && !text.is_empty() {
            return serde_json::from_str(&text).ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn alive(pid: u32) -> bool {
    !crate::observed::process::exited(pid)
}

impl DeploymentLock {
    /// Takes the lock of the deployment in `deployment_dir` for `command`, waiting up to
    /// `wait` for its holder; fails naming the holder when it is still held then.
    pub fn acquire(deployment_dir: &Path, command: &str, wait: Duration, log: &(dyn Fn(String) + Sync)) -> Result<Self> {
        let path = lock_path(deployment_dir);
        let root = path.parent().context("a lock path has a parent")?;
        std::fs::create_dir_all(root).with_context(|| format!("cannot create `{}`", root.display()))?;
        let started = Instant::now();
        let mut waiting_said = false;
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot open the lock file `{}`", path.display()))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut locked) => {
                    // A destroy removes the file while holding it: a lock on a removed file
                    // guards nothing, so take the lock of the file now at that path.
                    let same = std::fs::metadata(&path)
                        .ok()
                        .zip(locked.metadata().ok())
                        .is_some_and(|(on_disk, held)| on_disk.ino() == held.ino() && on_disk.dev() == held.dev());
                    if !same {
                        continue;
                    }
                    let mut previous = String::new();
                    let _ = locked.read_to_string(&mut previous);
                    if let Ok(dead) = serde_json::from_str::<Holder>(&previous) {
                        log(format!(
                            "taking over the lock `{}` left by {dead}, which is no longer running",
                            path.display()
                        ));
                    }
                    let holder = Holder {
                        pid: std::process::id(),
                        host: this_host(),
                        command: command.to_string(),
                        since: time::OffsetDateTime::now_utc()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    };
                    locked
                        .set_len(0)
                        .and_then(|_| locked.rewind())
                        .with_context(|| format!("cannot write `{}`", path.display()))?;
                    locked
                        .write_all(serde_json::to_string(&holder)?.as_bytes())
                        .and_then(|_| locked.sync_all())
                        .with_context(|| format!("cannot write `{}`", path.display()))?;
                    return Ok(DeploymentLock { path, file: locked });
                }
                Err((mut file, _)) => {
                    let recorded = read_holder(&mut file);
                    // Held although its holder died: a child it forked still has the file open
                    // until that child execs (moments, but long on a loaded machine).
                    let dead_holder = recorded.as_ref().is_some_and(|h| h.host == this_host() && !alive(h.pid));
                    let holder = recorded
                        .filter(|h| h.host != this_host() || alive(h.pid))
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "another notif-infra command".into());
                    if started.elapsed() >= wait.max(if dead_holder { DEAD_HOLDER_GRACE } else { Duration::ZERO }) {
                        bail!(
                            "deployment `{}` is locked by {holder}\nhelp: wait for it to finish, or give --lock-timeout SECONDS to wait for it",
                            deployment_dir.display()
                        );
                    }
                    if !waiting_said {
                        log(format!("waiting for the lock of `{}`, held by {holder}", deployment_dir.display()));
                        waiting_said = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Removes the lock file (the deployment is gone), still holding it until dropped.
    pub fn remove(&self) -> Result<()> {
        crate::fsio::remove_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_then_gets_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let deployment = dir.path().join("dev");
        let first = DeploymentLock::acquire(&deployment, "apply dev.yaml", Duration::ZERO, &|_| {}).unwrap();
        // flock locks belong to open files: a second open in this process is refused too.
        let e = DeploymentLock::acquire(&deployment, "destroy dev.yaml", Duration::ZERO, &|_| {})
            .err()
            .expect("held");
        let msg = format!("{e:#}");
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert!(msg.contains("`apply dev.yaml`"), "{msg}");
        drop(first);
        let said = std::sync::Mutex::new(Vec::new());
        let _second = DeploymentLock::acquire(&deployment, "destroy dev.yaml", Duration::ZERO, &|l| said.lock().unwrap().push(l)).unwrap();
        assert!(said.lock().unwrap().is_empty(), "a lock released normally names no dead holder");
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let deployment = dir.path().join("dev");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let holder = Holder {
            pid: dead,
            host: this_host(),
            command: "apply dev.yaml".into(),
            since: "2026-12-01T00:00:00Z".into(),
        };
        std::fs::write(lock_path(&deployment), serde_json::to_string(&holder).unwrap()).unwrap();
        let said = std::sync::Mutex::new(Vec::new());
        let _lock = DeploymentLock::acquire(&deployment, "apply dev.yaml", Duration::ZERO, &|l| said.lock().unwrap().push(l)).unwrap();
        let said = said.lock().unwrap().join("\n");
        assert!(
            said.contains(&format!("left by pid {dead}")) && said.contains("no longer running"),
            "{said}"
        );
    }
}
