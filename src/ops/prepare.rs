//! What plan and apply both start from, on any target: the topology, the deployment's state,
//! its key material, the desired state, the files the target deploys, what runs now, and the
//! plan between them.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

use super::material::{KeyMode, secrets};
use super::{Options, open_target};
use crate::apply::cluster::{ELECTION_TIMEOUT, read_live_jetstream};
use crate::desired::{self, Desired, RenderedFile};
use crate::material::pki::Rotation;
use crate::material::{Keys, NOT_YET_GENERATED};
use crate::plan::{self, DesiredServer, LiveState, ObservedServer, Plan};
use crate::targets::{DeploymentState, HostLog, Target};
use crate::topology::Loaded;

pub(super) struct Prepared {
    pub loaded: Loaded,
    pub target: Box<dyn Target>,
    pub state: DeploymentState,
    pub keys: Keys,
    pub desired: Desired,
    /// Every file the target deploys, by plan path.
    pub files: Vec<RenderedFile>,
    /// Each server's rendered config, includes written out (for `nats-server -t`).
    pub configs: desired::SelfContained,
    pub observed: BTreeMap<String, ObservedServer>,
    pub live_jetstream: LiveState,
    pub plan: Plan,
}

/// Reads everything else for the topology `loaded` (from `load_for_servers`) and makes the
/// plan. With `KeyMode::Generate` missing keys are generated (apply); with `Inspect` nothing is
/// written (plan). The target stays connected.
pub(super) async fn prepare(opts: &Options, loaded: Loaded, mode: KeyMode, host: HostLog<'_>) -> Result<Prepared> {
    let mut target = open_target(opts, &loaded.topology, true)?;
    let deployed = target.deployed(&loaded.topology)?;
    let t = deployed.as_ref();
    let mut state = DeploymentState::load(target.dir())?.unwrap_or_default();
    let addressing = target.addressing(t, &mut state, opts.port_base)?;
    let tree = target.dir().to_path_buf();
    let secrets = secrets(t, &tree, &addressing, mode, Rotation::None)?;
    let desired = desired::build(t, &addressing, &secrets.material(&tree));
    let mut rendered = desired::render_files(&desired).context("cannot render the server configs")?;
    let configs = desired::SelfContained::new(&desired, &rendered);
    if let (true, Some(mesh)) = (target.runs_wireguard(), &t.wireguard) {
        let hosts: Vec<&str> = desired::wireguard::mesh_hosts(t).iter().map(|n| n.name.as_str()).collect();
        let keys = crate::material::wireguard::WgKeyStore::new(&tree).load(&hosts, mesh.preshared_keys, mode == KeyMode::Generate)?;
        rendered.extend(desired::wireguard::configs(t, &keys));
    }
    let files = target.layout(t, &desired, rendered)?;
    target.connect(t, &state, host).await?;
    if let Err(e) = target.open_reach(&desired).await {
        target.close().await;
        return Err(e);
    }
    let read = async {
        let on_target = target.read_files(t, &files, &state).await?;
        let observed = target.observe(&state, &desired).await?;
        Ok::<_, anyhow::Error>((on_target, observed))
    };
    let (on_target, observed) = match read.await {
        Ok(r) => r,
        Err(e) => {
            target.close().await;
            return Err(e);
        }
    };
    let js_nodes = desired.jetstream_nodes();
    let js_running = js_nodes.iter().filter(|s| observed.get(&s.name).is_some_and(|o| o.running)).count();
    // The meta group spans every JetStream node: without a majority of them running (an
    // interrupted bring-up) nothing can answer until apply starts the rest, and apply reads the
    // objects again after its starts.
    let quorum = js_nodes.len() / 2 + 1;
    let read_live = async {
        if js_running < quorum || !secrets.missing.is_empty() || desired.jetstream_accounts.is_empty() {
            return Ok(LiveState::NotRunning);
        }
        match read_live_jetstream(&desired, &secrets.keys, ELECTION_TIMEOUT).await {
            // Part of the meta group down (an interrupted bring-up) can leave the rest without a
            // leader until apply starts the others: as without a quorum, apply reads again then.
            Err(e) if js_running < js_nodes.len() && e.downcast_ref::<crate::jsapi::ApiError>().is_some_and(|a| a.is_transient()) => {
                Ok(LiveState::NotRunning)
            }
            read => read,
        }
    };
    // Plan needs the digests of running servers to compare; apply also checks every config it
    // will start, before anything is written.
    let needs_digest = |name: &str| mode == KeyMode::Generate || observed.get(name).is_some_and(|o| o.running);
    let (servers, live) = tokio::join!(desired_servers(target.as_ref(), &desired, &configs, &needs_digest), read_live);
    let (servers, live_jetstream) = match (servers, live) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => {
            target.close().await;
            return Err(e);
        }
    };
    let keys_changes = secrets.changes.clone();
    let file_changes = plan::file_changes(&files, &on_target);
    let server_changes = plan::server_changes(&servers, &observed);
    let servers_change = !(keys_changes.is_empty() && file_changes.is_empty() && server_changes.is_empty());
    let cluster = match plan::cluster_steps(&desired, servers_change, &server_changes, &live_jetstream) {
        Ok(steps) => steps,
        Err(e) => {
            target.close().await;
            anyhow::bail!("{e}; nothing was changed");
        }
    };
    let plan = Plan {
        topology: t.name.clone(),
        target: target.kind().name().into(),
        cluster,
        keys: keys_changes,
        files: file_changes,
        servers: server_changes,
        jetstream: plan::jetstream_changes(&desired.jetstream, &live_jetstream, opts.prune),
    };
    Ok(Prepared {
        loaded,
        target,
        state,
        keys: secrets.keys,
        desired,
        files,
        configs,
        observed,
        live_jetstream,
        plan,
    })
}

/// nats-server config checks run at once: each is a process.
const PARALLEL_CHECKS: usize = 16;

/// Each server's config with the digest nats-server computes for it where it runs (for the
/// servers `needs_digest` names), checked a few at a time. A config nats-server rejects stops
/// everything here, before anything is written or started.
async fn desired_servers(
    target: &dyn Target,
    desired: &Desired,
    configs: &desired::SelfContained,
    needs_digest: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<DesiredServer>> {
    use futures_util::StreamExt;
    let checks = desired.servers.iter().map(|s| async move {
        let conf = needs_digest(&s.name).then(|| configs.config(&s.name)).flatten();
        let digest = match conf {
            Some(conf) if !conf.contains(NOT_YET_GENERATED) => target.config_digest(&s.name, &conf).await?,
            _ => None,
        };
        Ok::<_, anyhow::Error>(DesiredServer {
            name: s.name.clone(),
            conf: s.conf.clone(),
            digest,
        })
    });
    // `buffered` keeps the topology's order.
    futures_util::stream::iter(checks)
        .buffered(PARALLEL_CHECKS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
