//! `destroy`: under the deployment's lock, stops every server of the deployment wherever it
//! runs (those an interrupted apply left included), removes what apply placed, then the runtime
//! state. The identity (CA, keys, what they signed) stays unless purged: a later apply reuses
//! it, so the credentials handed out keep working.

use anyhow::Result;
use std::path::{Path, PathBuf};

use super::{Options, lock, open_target};
use crate::targets::{DeploymentState, HostLog};

/// What destroy did.
pub struct Destroyed {
    pub stopped: Vec<String>,
    /// The deployment's directory on this machine.
    pub dir: PathBuf,
    /// The identity directories kept in it (none when purged or when it had none).
    pub kept: Vec<PathBuf>,
}

/// Stops and removes the deployment; with `purge_keys` its identity goes too.
pub async fn destroy(opts: &Options, purge_keys: bool, log: &(dyn Fn(String) + Sync), host: HostLog<'_>) -> Result<Destroyed> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let lock = lock(opts, &t.name, "destroy", log)?;
    let mut target = open_target(opts, t, false)?;
    let state = DeploymentState::load(target.dir())?;
    // Hosts are only reached when apply reached them; processes on this machine are found
    // by their configs whatever the state says.
    if let Some(state) = &state {
        target.connect(t, state, host).await?;
    }
    let stopped = target.destroy(&state.unwrap_or_default(), host).await;
    target.close().await;
    let stopped = stopped?;
    let dir = target.dir().to_path_buf();
    let kept = if purge_keys { Vec::new() } else { identity_in(&dir) };
    if kept.is_empty() {
        crate::fsio::remove_dir_all(&dir)?;
    } else {
        remove_all_but(&dir, &kept)?;
    }
    lock.remove()?;
    if let Some(root) = dir.parent() {
        // Only removes the state root when no other deployment lives there.
        let _ = std::fs::remove_dir(root);
    }
    Ok(Destroyed { stopped, dir, kept })
}

/// The identity directories `dir` holds.
fn identity_in(dir: &Path) -> Vec<PathBuf> {
    crate::material::IDENTITY_DIRS
        .iter()
        .map(|d| dir.join(d))
        .filter(|d| d.is_dir())
        .collect()
}

/// Removes everything in `dir` but `keep`.
fn remove_all_but(dir: &Path, keep: &[PathBuf]) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if keep.contains(&path) {
            continue;
        }
        if path.is_dir() {
            crate::fsio::remove_dir_all(&path)?;
        } else {
            crate::fsio::remove_file(&path)?;
        }
    }
    Ok(())
}
