//! `state.json` as written: the configs the servers were given hold their shared blocks (the
//! gateway seed lists, the accounts every node holds, the preloaded account JWTs) once each,
//! referred to by index, instead of a copy in every server's entry, which grew with servers x
//! regions. The file is private: a leafnode's config holds its link key's seed.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::DeploymentState;
use crate::desired::{AccountConf, PreloadedAccount, RemoteGatewayConf};
use crate::fsio::{read_state, write_private};

#[derive(Serialize, Deserialize)]
struct StoredState {
    #[serde(flatten)]
    state: DeploymentState,
    #[serde(default, skip_serializing_if = "SharedBlocks::is_empty")]
    shared: SharedBlocks,
}

/// The distinct shared blocks of the applied configs, and which ones each server was given.
#[derive(Default, Serialize, Deserialize)]
struct SharedBlocks {
    gateways: Vec<Arc<Vec<RemoteGatewayConf>>>,
    accounts: Vec<Arc<Vec<AccountConf>>>,
    #[serde(default)]
    preloads: Vec<Arc<Vec<PreloadedAccount>>>,
    servers: BTreeMap<String, SharedRefs>,
}

#[derive(Default, Serialize, Deserialize)]
struct SharedRefs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateways: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accounts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preload: Option<usize>,
}

impl SharedBlocks {
    fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

/// The index of `block` among `blocks`, added when new. Servers given the same block share one
/// allocation, so the pointer comparison decides almost every time.
fn intern<T: PartialEq>(blocks: &mut Vec<Arc<T>>, block: &Arc<T>) -> usize {
    match blocks.iter().position(|b| Arc::ptr_eq(b, block) || **b == **block) {
        Some(i) => i,
        None => {
            blocks.push(block.clone());
            blocks.len() - 1
        }
    }
}

/// Writes `state` to `path` (0600, atomically and durably), each shared block once.
pub(super) fn save(state: &DeploymentState, path: &Path) -> Result<()> {
    let mut stored = StoredState {
        state: state.clone(),
        shared: SharedBlocks::default(),
    };
    let shared = &mut stored.shared;
    for (server, conf) in &mut stored.state.applied {
        let mut refs = SharedRefs::default();
        if let Some(gateway) = conf.gateway.as_mut().filter(|g| !g.gateways.is_empty()) {
            refs.gateways = Some(intern(&mut shared.gateways, &gateway.gateways));
            gateway.gateways = Arc::default();
        }
        if !conf.accounts.is_empty() {
            refs.accounts = Some(intern(&mut shared.accounts, &conf.accounts));
            conf.accounts = Arc::default();
        }
        if let Some(operator) = conf.operator.as_mut().filter(|o| !o.preload.is_empty()) {
            refs.preload = Some(intern(&mut shared.preloads, &operator.preload));
            operator.preload = Arc::default();
        }
        if refs.gateways.is_some() || refs.accounts.is_some() || refs.preload.is_some() {
            shared.servers.insert(server.clone(), refs);
        }
    }
    write_private(path, serde_json::to_string_pretty(&stored)?.as_bytes())
}

/// Reads the state in `path` (`None` when there is none), each server's config whole again.
/// A state written before the blocks were shared holds them inline and is read as it is.
pub(super) fn load(path: &Path) -> Result<Option<DeploymentState>> {
    let Some(StoredState { mut state, shared }) = read_state::<StoredState>(path)? else {
        return Ok(None);
    };
    let damaged = || format!("`{}` is damaged", path.display());
    for (server, refs) in shared.servers {
        let Some(conf) = state.applied.get_mut(&server) else {
            bail!("{}: shared blocks for `{server}`, which it does not list", damaged());
        };
        if let (Some(i), Some(gateway)) = (refs.gateways, conf.gateway.as_mut()) {
            gateway.gateways = shared.gateways.get(i).cloned().with_context(damaged)?;
        }
        if let Some(i) = refs.accounts {
            conf.accounts = shared.accounts.get(i).cloned().with_context(damaged)?;
        }
        if let (Some(i), Some(operator)) = (refs.preload, conf.operator.as_mut()) {
            operator.preload = shared.preloads.get(i).cloned().with_context(damaged)?;
        }
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn applied(regions: usize) -> BTreeMap<String, crate::desired::ServerConf> {
        let names: String = (0..regions).map(|i| format!("  r{i}:\n    nodes: 3\n")).collect();
        let text = format!(
            "name: t\nregions:\n{names}accounts:\n  SYS:\n    system: true\n  APP:\n    users:\n      - user: app\n        password: ${{APP_PASS}}\nleafnodes:\n  edge:\n    hub: r0\n    account: APP\n"
        );
        crate::desired::build_declared(&text)
            .servers
            .into_iter()
            .map(|s| (s.name, s.conf))
            .collect()
    }

    #[test]
    fn each_shared_block_is_written_once_and_every_config_is_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = DeploymentState {
            applied: applied(4),
            ..Default::default()
        };
        // Mid-rollout one server still runs the seed list from before a change.
        let mut older = state.applied["r1-2"].clone();
        let gateway = older.gateway.as_mut().unwrap();
        gateway.gateways = Arc::new(gateway.gateways[..3].to_vec());
        state.applied.insert("r1-2".into(), older);

        save(&state, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The 12 nodes' seed list and the older one; the nodes' accounts and the leafnode's own.
        assert_eq!(written["shared"]["gateways"].as_array().unwrap().len(), 2, "{text}");
        assert_eq!(written["shared"]["accounts"].as_array().unwrap().len(), 2, "{text}");
        assert_eq!(text.matches("\"nats://r3-1:7222\"").count(), 1, "{text}");
        assert_eq!(written["applied"]["r1-1"]["gateway"]["gateways"], serde_json::json!([]));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let back = load(&path).unwrap().unwrap();
        assert_eq!(back.applied, state.applied);
    }

    #[test]
    fn a_state_with_the_blocks_inline_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = DeploymentState {
            applied: applied(2),
            ..Default::default()
        };
        std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().applied, state.applied);
    }

    #[test]
    fn a_reference_to_a_block_the_file_does_not_hold_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = DeploymentState {
            applied: applied(2),
            ..Default::default()
        };
        save(&state, &path).unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"gateways\": 0", "\"gateways\": 7");
        std::fs::write(&path, text).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{err}");
    }
}
