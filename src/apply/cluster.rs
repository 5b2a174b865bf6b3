//! Work on the running servers through their APIs: JetStream readiness and objects, and the
//! plan's cluster steps (the meta group's peers, account JWTs pushed to the nats resolver).

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::desired::{self, Desired};
use crate::jsapi::{self, JsApi};
use crate::material::Keys;
use crate::observed::Monitor;
use crate::observed::jetstream::{self, Connections};
use crate::plan::{ClusterStep, JsAction, JsChange, LiveState};

/// How long apply waits for JetStream to be ready once the servers run (a super-cluster elects
/// its meta leader in about 5 s).
const JETSTREAM_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading the live objects waits out a leader election before giving up (seen taking
/// over 15 s on this 2-core machine with the whole test suite running beside it).
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until every JetStream server answers `/healthz` (which nats-server holds back until
/// the meta group has a leader) and the leader sees, in each region that holds streams, as many
/// members current as its streams have replicas: before that, API requests go unanswered or
/// placement finds peers offline (10005). It does not wait for the whole meta group: at 66
/// servers nats-server admits its members about 7 a second, 13 s after launch (measured), and
/// the streams are placed meanwhile; verify then waits for the whole group.
async fn wait_jetstream_ready(desired: &Desired) -> Result<()> {
    let monitor = Monitor::for_desired(desired);
    // Every JetStream node of the super-cluster: the meta leader may be in any region.
    let servers = desired.jetstream_nodes();
    let needs = replicas_by_region(desired);
    let started = std::time::Instant::now();
    let mut healthy = BTreeSet::new();
    loop {
        let Some(waiting) = jetstream_not_ready(&monitor, &servers, &needs, desired.jetstream_meta.is_empty(), &mut healthy).await else {
            return Ok(());
        };
        if started.elapsed() >= JETSTREAM_READY_TIMEOUT {
            bail!(
                "JetStream is not ready after {} s, so no stream or consumer was applied: {waiting}",
                JETSTREAM_READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Monitor::poll_interval(servers.len() - healthy.len() + 2)).await;
    }
}

/// The most replicas of a stream (or bucket) placed in each region of the super-cluster;
/// streams without a placement live in the first region running JetStream.
fn replicas_by_region(desired: &Desired) -> BTreeMap<String, usize> {
    let mut needs = BTreeMap::new();
    for (o, region) in desired.streams_by_region() {
        let most = needs.entry(region.to_string()).or_insert(0);
        *most = (*most).max(usize::from(o.replicas));
    }
    needs
}

/// What JetStream still waits for, if anything. Servers seen healthy (`healthy`) are not asked
/// again: each round asks the others, then the meta leader alone for its view.
async fn jetstream_not_ready(
    monitor: &Monitor,
    servers: &[&desired::ServerSpec],
    needs: &BTreeMap<String, usize>,
    lone: bool,
    healthy: &mut BTreeSet<String>,
) -> Option<String> {
    let pending: Vec<&&desired::ServerSpec> = servers.iter().filter(|s| !healthy.contains(&s.name)).collect();
    let checks = futures_util::future::join_all(pending.iter().map(|s| monitor.health(&s.monitor_url))).await;
    let mut waiting = None;
    for (s, check) in pending.iter().zip(checks) {
        match check {
            Ok(Ok(())) => {
                healthy.insert(s.name.clone());
            }
            Ok(Err(reason)) | Err(reason) => {
                waiting.get_or_insert(format!("{}: {reason}", s.name));
            }
        }
    }
    if waiting.is_some() {
        return waiting;
    }
    if lone {
        // A lone server runs JetStream without a meta group.
        return None;
    }
    let no_leader = || Some("the JetStream meta group has no leader yet".to_string());
    let asked = servers.first()?;
    let named = match monitor.meta_peers(&asked.monitor_url).await {
        Ok((named, _)) => named,
        Err(e) => return Some(format!("{}: {e}", asked.name)),
    };
    let Some(leader) = named.and_then(|n| servers.iter().find(|s| s.name == n)) else {
        return no_leader();
    };
    let peers = match monitor.meta_peers(&leader.monitor_url).await {
        Ok((Some(claimed), peers)) if claimed == leader.name => peers,
        _ => return no_leader(),
    };
    let region_of = |name: &str| servers.iter().find(|s| s.name == name).map(|s| s.region.as_str());
    needs.iter().find_map(|(region, needed)| {
        let current = peers
            .iter()
            .filter(|p| p.current && !p.offline)
            .map(|p| p.name.as_str())
            .chain([leader.name.as_str()])
            .filter(|name| region_of(name) == Some(region.as_str()))
            .count();
        (current < *needed)
            .then(|| format!("the meta leader sees {current} member(s) of region {region} current, its streams need {needed}"))
    })
}

/// Reads the live JetStream objects of the managed accounts: from the servers' monitoring
/// endpoints (one request per server), or through the JetStream API when one of them does not
/// answer. The API is retried while the meta group or a stream elects a leader, since a partial
/// listing would show existing objects as missing.
pub async fn read_live_jetstream(desired: &Desired, keys: &Keys, patience: Duration) -> Result<LiveState> {
    if let Ok(live) = jetstream::read_monitoring(&Monitor::for_desired(desired), desired).await {
        return Ok(LiveState::Read(live));
    }
    let started = std::time::Instant::now();
    let live = loop {
        // A fresh connection per attempt: one the servers dropped while starting stays closed.
        let attempt = match Connections::open(desired, keys).await {
            Ok(conns) => {
                let read = jetstream::read_api(&conns).await;
                conns.close().await;
                read
            }
            Err(e) => Err(e),
        };
        match attempt {
            Ok(live) => break live,
            Err(e) if e.is_transient() && started.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot read the live JetStream objects")),
        }
    };
    Ok(LiveState::Read(live))
}

async fn open_jetstream(desired: &Desired, keys: &Keys) -> Result<Connections> {
    Connections::open(desired, keys)
        .await
        .map_err(|e| anyhow::Error::new(e).context("cannot connect to the JetStream API"))
}

/// Removes servers that left the topology from the JetStream meta group, through the system
/// account.
pub async fn forget_removed_peers(desired: &Desired, keys: &Keys, removed: &[&str], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let Some(system) = &desired.system_account else { return Ok(()) };
    let api = JsApi::connect(desired, &Some(system.clone()), keys)
        .await
        .context("cannot connect to the system account to update the JetStream meta group")?;
    let started = std::time::Instant::now();
    for server in removed {
        loop {
            match api.remove_peer(server).await {
                Ok(_) => {
                    log(format!("removed {server} from the JetStream meta group"));
                    break;
                }
                // Not a member (it ran no JetStream, or is already gone): nothing to do.
                Err(e) if e.err_code() == Some(jsapi::PEER_NOT_MEMBER) => break,
                Err(e) if e.is_transient() && started.elapsed() < JETSTREAM_READY_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    api.close().await;
                    return Err(anyhow::Error::new(e).context(format!("cannot remove {server} from the JetStream meta group")));
                }
            }
        }
    }
    api.close().await;
    Ok(())
}

/// Pushes account JWTs (files of `desired.auth_files`) through the system account
/// (`$SYS.REQ.CLAIMS.UPDATE`), which reaches every server of the super-cluster.
async fn push_account_jwts(desired: &Desired, keys: &Keys, paths: &[&std::path::Path], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let Some(system) = &desired.system_account else { return Ok(()) };
    let urls: Vec<async_nats::ServerAddr> = desired
        .servers
        .iter()
        .filter(|s| s.conf.operator.as_ref().is_some_and(|o| o.resolver_dir.is_some()))
        .filter_map(|s| s.client_url.parse().ok())
        .collect();
    let client = crate::client::nats_options(desired, keys, &Some(system.clone()))
        .map_err(anyhow::Error::msg)?
        .connection_timeout(Duration::from_secs(2))
        .retry_on_initial_connect()
        .connect(urls);
    let client = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .context("cannot connect to the system account to push account JWTs within 10 s")?
        .context("cannot connect to the system account to push account JWTs")?;
    for path in paths {
        let f = desired
            .auth_files
            .iter()
            .find(|f| f.path == *path)
            .with_context(|| format!("the plan pushes {}, which the topology no longer issues", path.display()))?;
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            client.request("$SYS.REQ.CLAIMS.UPDATE", f.content.trim().as_bytes().to_vec().into()),
        )
        .await
        .with_context(|| format!("no server answered the update of {}", f.path.display()))?
        .with_context(|| format!("cannot push {}", f.path.display()))?;
        let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
        if let Some(e) = answer.get("error") {
            bail!("the servers refused {}: {e}", f.path.display());
        }
        let message = answer["data"]["message"].as_str().unwrap_or("no answer");
        log(format!("pushed {} to the nats resolver: {message}", f.path.display()));
    }
    client.drain().await.ok();
    Ok(())
}

/// Carries out the plan's cluster steps that follow the servers' changes: JWT pushes, and the
/// warning for servers that stay in the meta group. (Replica moves and meta-group removals go
/// with the stops: `rollout`.)
pub async fn run_cluster_steps(desired: &Desired, keys: &Keys, steps: &[ClusterStep], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let mut pushed = Vec::new();
    for step in steps {
        match step {
            ClusterStep::MetaPeerStays { .. } => log(format!("warning: {}", step.describe())),
            ClusterStep::PushAccountJwt { path, .. } => pushed.push(path.as_path()),
            ClusterStep::MoveReplicas { .. } | ClusterStep::RemoveMetaPeer { .. } => {}
        }
    }
    if !pushed.is_empty() {
        push_account_jwts(desired, keys, &pushed, log).await?;
    }
    Ok(())
}

/// Without `--allow-replace`, a change that would delete and recreate a stream or consumer
/// stops apply before it touches anything.
pub fn refuse_replacements(changes: &[JsChange], allowed: bool) -> Result<()> {
    let replacements: Vec<String> = changes
        .iter()
        .filter(|c| c.action == JsAction::Replace)
        .map(|c| {
            let reasons: Vec<String> = c
                .fields
                .iter()
                .filter_map(|f| f.replace_reason.as_ref().map(|r| format!("{}: {r}", f.field)))
                .collect();
            format!(
                "  -/+ {} ({}; replacing loses {})",
                c.label(),
                reasons.join("; "),
                c.kind.replacement_loss()
            )
        })
        .collect();
    if allowed || replacements.is_empty() {
        return Ok(());
    }
    bail!(
        "apply stopped before changing anything: these objects can only be replaced, deleting them first:\n{}\nrun apply again with --allow-replace to replace them",
        replacements.join("\n")
    )
}

/// After the rollout changed the servers, or when the plan could not read the live objects: waits for
/// JetStream and applies what the live objects now need. Otherwise the plan's changes still hold.
pub async fn converge_jetstream(
    desired: &Desired,
    keys: &Keys,
    plan: &crate::plan::Plan,
    planned_from: &LiveState,
    (prune, allow_replace): (bool, bool),
    log: &(dyn Fn(String) + Sync),
    timings: &crate::timings::Timings,
) -> Result<()> {
    let phase = std::time::Instant::now();
    if plan.servers_change() || !matches!(planned_from, LiveState::Read(_)) {
        if !desired.jetstream_accounts.is_empty() {
            wait_jetstream_ready(desired).await?;
            timings.record(
                "rollout: JetStream ready (every server healthy, each stream's region current at the meta leader)",
                phase,
            );
            let phase = std::time::Instant::now();
            let live = read_live_jetstream(desired, keys, ELECTION_TIMEOUT).await?;
            timings.record("rollout: JetStream objects read", phase);
            let phase = std::time::Instant::now();
            let changes = crate::plan::jetstream_changes(&desired.jetstream, &live, prune);
            apply_jetstream(desired, keys, &changes, allow_replace, log).await?;
            timings.record(format!("rollout: JetStream objects applied ({})", changes.len()), phase);
        }
    } else if plan.jetstream_work().next().is_some() {
        apply_jetstream(desired, keys, &plan.jetstream, allow_replace, log).await?;
        timings.record(format!("rollout: JetStream objects applied ({})", plan.jetstream.len()), phase);
    }
    Ok(())
}

/// Brings the JetStream objects to the topology: creates, updates, replaces and (with --prune)
/// deletes.
async fn apply_jetstream(
    desired: &Desired,
    keys: &Keys,
    changes: &[JsChange],
    allow_replace: bool,
    log: &(dyn Fn(String) + Sync),
) -> Result<()> {
    refuse_replacements(changes, allow_replace)?;
    if !changes.iter().any(|c| c.action != JsAction::Unmanaged) {
        return Ok(());
    }
    let conns = open_jetstream(desired, keys).await?;
    let outcome = crate::apply::jetstream::apply(&conns, changes, log).await;
    conns.close().await;
    if !outcome.ok() {
        bail!("{}", outcome.failure_report());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_needs_as_many_current_members_as_its_widest_stream() {
        let desired = desired::build_declared(
            "name: t\nregions:\n  east:\n    nodes: 3\n    jetstream: true\n  west:\n    nodes: 5\n    jetstream: true\n\
             accounts:\n  SYS:\n    system: true\n  APP:\n    jetstream: true\n\
             streams:\n  A:\n    subjects: [a]\n    replicas: 3\n    placement: { region: west }\n\
             \x20 B:\n    subjects: [b]\n    replicas: 5\n    placement: { region: west }\n\
             \x20 C:\n    subjects: [c]\n",
        );
        let needs = replicas_by_region(&desired);
        // C has no placement: it lives in the first region running JetStream.
        assert_eq!(needs, BTreeMap::from([("east".to_string(), 1), ("west".to_string(), 5)]));
    }
}
