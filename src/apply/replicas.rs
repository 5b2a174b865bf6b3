//! Moving streams' replicas off servers about to leave, so that no stream ever has fewer current
//! replicas than it should. Before the servers stop (`grow`), each stream with a replica on one
//! of them gets as many more replicas as it has there (nats-server places them on servers the
//! stream does not use yet) and waits for them to be current; a leaving server that leads the
//! stream hands leadership on. Once they stopped (`shrink`), the stream returns to its replica
//! count: nats-server keeps the leader and online peers, so the stopped servers drop out; one
//! still in the group is taken out with `STREAM.PEER.REMOVE` (its consumers follow).
//!
//! nats-server cannot remove a peer from a running group without a spare server to put in its
//! place (`peer remap failed`), hence growing first and dropping the stopped peers last.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::desired::Desired;
use crate::jsapi::{ApiError, JsApi};
use crate::material::Keys;
use crate::observed::jetstream::Connections;
use crate::plan::ClusterStep;

/// How long one stage (a new replica catching up, the group settling) may take.
const STAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Each moved stream (by account and name) with its replica count.
type Moved<'a> = BTreeMap<(&'a Option<String>, &'a str), u64>;

/// The streams the plan moves replicas of, and the leaving servers.
fn moves(steps: &[ClusterStep]) -> (Moved<'_>, BTreeSet<&str>) {
    let mut streams = BTreeMap::new();
    let mut leaving = BTreeSet::new();
    for step in steps {
        if let ClusterStep::MoveReplicas {
            account,
            stream,
            from,
            replicas,
        } = step
        {
            streams.insert((account, stream.as_str()), *replicas);
            leaving.insert(from.as_str());
        }
    }
    (streams, leaving)
}

/// Before the leaving servers stop: every moved stream has its full count of current replicas
/// on servers that stay, and a leader that stays.
pub async fn grow(desired: &Desired, keys: &Keys, steps: &[ClusterStep], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    for_each_stream(desired, keys, steps, log, Stage::Grow).await
}

/// After the leaving servers stopped: every moved stream is back to its replica count, on
/// servers that stay, every replica current.
pub async fn shrink(desired: &Desired, keys: &Keys, steps: &[ClusterStep], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    for_each_stream(desired, keys, steps, log, Stage::Shrink).await
}

#[derive(Clone, Copy)]
enum Stage {
    Grow,
    Shrink,
}

async fn for_each_stream(desired: &Desired, keys: &Keys, steps: &[ClusterStep], log: &(dyn Fn(String) + Sync), stage: Stage) -> Result<()> {
    let (streams, leaving) = moves(steps);
    if streams.is_empty() {
        return Ok(());
    }
    let conns = Connections::open(desired, keys)
        .await
        .context("cannot connect to the JetStream API to move replicas")?;
    let mut outcome = Ok(());
    for ((account, stream), replicas) in streams {
        let Some(api) = conns.get(account) else { continue };
        let done = match stage {
            Stage::Grow => grow_stream(api, stream, replicas, &leaving, log).await,
            Stage::Shrink => shrink_stream(api, stream, replicas, &leaving, log).await,
        };
        if let Err(e) = done {
            outcome = Err(e.context(format!("cannot move the replicas of stream {stream} off {}", join(&leaving))));
            break;
        }
    }
    conns.close().await;
    outcome
}

fn join(names: &BTreeSet<&str>) -> String {
    names.iter().copied().collect::<Vec<_>>().join(", ")
}

/// The stream's group as its leader reports it.
struct Group {
    config: serde_json::Map<String, Value>,
    leader: Option<String>,
    peers: Vec<String>,
    all_current: bool,
}

async fn group(api: &JsApi, stream: &str) -> Result<Group, ApiError> {
    let info = api.stream_info(stream).await?;
    let cluster = &info["cluster"];
    let leader = cluster["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_string);
    let followers = cluster["replicas"].as_array().cloned().unwrap_or_default();
    let all_current = leader.is_some() && followers.iter().all(|r| r["current"] == true && r["offline"] != true);
    let peers = leader
        .iter()
        .cloned()
        .chain(followers.iter().filter_map(|r| r["name"].as_str().map(str::to_string)))
        .collect();
    Ok(Group {
        config: info["config"].as_object().cloned().unwrap_or_default(),
        leader,
        peers,
        all_current,
    })
}

/// Reads the group until `settled` holds, asking again through elections and busy answers.
async fn until(api: &JsApi, stream: &str, what: &str, settled: impl Fn(&Group) -> bool) -> Result<Group> {
    let started = Instant::now();
    loop {
        match group(api, stream).await {
            Ok(g) if settled(&g) => return Ok(g),
            Ok(_) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read stream {stream}"))),
        }
        if started.elapsed() > STAGE_TIMEOUT {
            bail!("stream {stream}: {what} not within {} s", STAGE_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends one change, again while the cluster answers that it is busy.
async fn change<F, Fut>(what: &str, call: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    crate::jsapi::retry_transient(STAGE_TIMEOUT, call)
        .await
        .map(drop)
        .map_err(|e| anyhow::Error::new(e).context(what.to_string()))
}

/// Current replicas on servers that stay.
fn staying_current(g: &Group, leaving: &BTreeSet<&str>) -> u64 {
    g.peers.iter().filter(|p| !leaving.contains(p.as_str())).count() as u64
}

async fn grow_stream(api: &JsApi, stream: &str, replicas: u64, leaving: &BTreeSet<&str>, log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let started = Instant::now();
    let mut g = until(api, stream, "a leader with every replica current", |g| g.all_current).await?;
    // A new replica can land on another leaving server: ask for one more until enough stay.
    while staying_current(&g, leaving) < replicas {
        let want = g.peers.len() as u64 + replicas - staying_current(&g, leaving);
        let mut config = g.config.clone();
        config.insert("num_replicas".into(), Value::from(want));
        change(&format!("cannot grow to R{want}"), || api.update_stream(&config)).await?;
        g = until(api, stream, &format!("R{want} with every replica current"), |g| {
            g.peers.len() as u64 == want && g.all_current
        })
        .await?;
        log(format!("stream {stream}: R{want} on {}", g.peers.join(", ")));
    }
    if let Some(leader) = g.leader.clone().filter(|l| leaving.contains(l.as_str())) {
        change("cannot move the leadership", || api.stream_leader_stepdown(stream)).await?;
        let moved = until(api, stream, &format!("a leader other than {leader}"), |g| {
            g.leader.as_deref().is_some_and(|l| !leaving.contains(l)) && g.all_current
        })
        .await?;
        log(format!(
            "stream {stream}: leader {leader} -> {}",
            moved.leader.as_deref().unwrap_or("?")
        ));
    }
    log(format!(
        "stream {stream}: {replicas} current replica(s) on servers that stay ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

async fn shrink_stream(api: &JsApi, stream: &str, replicas: u64, leaving: &BTreeSet<&str>, log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let g = until(api, stream, "a leader", |g| g.leader.is_some()).await?;
    if g.config.get("num_replicas").and_then(Value::as_u64) != Some(replicas) {
        let mut config = g.config.clone();
        config.insert("num_replicas".into(), Value::from(replicas));
        change(&format!("cannot return to R{replicas}"), || api.update_stream(&config)).await?;
    }
    let settle = |g: &Group| g.peers.len() as u64 == replicas && !g.peers.iter().any(|p| leaving.contains(p.as_str()));
    let started = Instant::now();
    // The group drops offline peers when it shrinks; one not yet seen offline stays in it.
    let g = loop {
        let g = until(api, stream, &format!("R{replicas}"), |g| g.peers.len() as u64 == replicas).await?;
        if settle(&g) || started.elapsed() > Duration::from_secs(5) {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for from in g.peers.iter().filter(|p| leaving.contains(p.as_str())) {
        change(&format!("cannot take {from} out of the group"), || {
            api.remove_stream_peer(stream, from)
        })
        .await?;
    }
    let g = until(
        api,
        stream,
        &format!("R{replicas} off {}, every replica current", join(leaving)),
        |g| settle(g) && g.all_current,
    )
    .await?;
    log(format!("stream {stream}: R{replicas} on {}", g.peers.join(", ")));
    Ok(())
}
