//! `destroy`: under the deployment's lock, stops every server of the deployment wherever it
//! runs (those an interrupted apply left included), removes what apply placed, then the state.

use anyhow::Result;
use std::path::PathBuf;

use super::{Options, lock, open_target};
use crate::targets::{DeploymentState, HostLog};

/// Returns the servers stopped and the state directory removed.
pub async fn destroy(opts: &Options, log: &(dyn Fn(String) + Sync), host: HostLog<'_>) -> Result<(Vec<String>, PathBuf)> {
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
    crate::fsio::remove_dir_all(&dir)?;
    lock.remove()?;
    if let Some(root) = dir.parent() {
        // Only removes the state root when no other deployment lives there.
        let _ = std::fs::remove_dir(root);
    }
    Ok((stopped, dir))
}
