//! The one rollout every target goes through, in this order: files -> new replicas for the
//! streams on servers that leave -> stops (each followed by the server's removal from the
//! JetStream meta group), then those streams back to their replica count -> starts (each
//! confirmed by its expected config digest) -> reloads (each confirmed by the new digest; a
//! digest that cannot be read is a failure) -> rolling restarts, one server at a time, each
//! healthy with its streams current before the next and none begun while a peer of its cluster
//! is unreachable -> cluster steps -> JetStream. The state is saved after every step, a start
//! is journaled before its process exists, and an interrupt stops the rollout between two
//! steps. A step that fails stops the rollout there, naming it and what was and was not done.

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};

use super::cluster::{converge_jetstream, forget_removed_peers, run_cluster_steps};
use super::interrupt::{self, Interrupted};
use crate::desired::Role;
use crate::desired::{Desired, RenderedFile};
use crate::material::Keys;
use crate::observed::Monitor;
use crate::plan::{ClusterStep, LiveState, Plan, ServerAction, ServerChange};
use crate::targets::{DeploymentState, HostLog, Log, StopMode, Target, stop_grace};

/// How long a started server has to answer with its config: 20 s, and a quarter second more
/// for each server started with it. Servers started at once on one machine share its CPUs: on 2
/// cores, 110 took 9.6 s until the last answered, and on a VM 2-3x slower one had not answered
/// after a flat 20 s, though it came up.
fn ready_timeout(started_at_once: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(250) * started_at_once as u32
}
/// A reload not seen yet is asked for again after this long.
const RESIGNAL_AFTER: Duration = Duration::from_secs(5);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

/// What one rollout carries out, and with what.
pub struct Rollout<'a> {
    pub target: &'a dyn Target,
    pub plan: &'a Plan,
    pub desired: &'a Desired,
    pub keys: &'a Keys,
    /// Every file the target deploys (the plan's file changes are among them).
    pub files: &'a [RenderedFile],
    /// Each server's rendered config, by server.
    pub configs: &'a crate::desired::SelfContained,
    /// The live JetStream objects the plan was made from.
    pub live_jetstream: &'a LiveState,
    pub prune: bool,
    pub allow_replace: bool,
    /// How long a rolling restart waits for its cluster's servers to answer before it stops.
    pub peer_wait: Duration,
    /// Where each kind of step's time is recorded.
    pub timings: &'a crate::timings::Timings,
}

/// A rollout that stopped because a step failed: the state is saved and says the same.
#[derive(Debug, thiserror::Error)]
#[error(
    "the roll stopped at `{step}`: {cause}\n  done: {}\n  not done: {}\nhelp: the state is saved; once the cause is mended, run the same command again to finish the roll",
    list(.done),
    list(.not_done)
)]
pub struct Stopped {
    pub step: String,
    /// The failure, with its context.
    pub cause: String,
    pub done: Vec<String>,
    pub not_done: Vec<String>,
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { items.join(", ") }
}

/// How far the rollout got: what is done, under way and still to do, for the report of an
/// interrupt or a failed step.
struct Progress {
    done: Vec<String>,
    not_done: Vec<String>,
    current: Option<String>,
}

impl Progress {
    fn begin(&mut self, step: impl Into<String>) {
        self.current = Some(step.into());
    }

    fn finish(&mut self, step: &str) {
        self.not_done.retain(|s| s != step);
        self.done.push(step.to_string());
    }

    /// A safe point: stops here, with the state saved, when an interrupt was asked for.
    fn checkpoint(&self) -> Result<()> {
        if interrupt::requested() {
            return Err(Interrupted {
                done: self.done.clone(),
                not_done: self.not_done.clone(),
            }
            .into());
        }
        Ok(())
    }
}

fn step_name(c: &ServerChange) -> String {
    let verb = match c.action {
        ServerAction::Start => "start",
        ServerAction::Reload => "reload",
        ServerAction::Restart => "restart",
        ServerAction::Stop => "stop",
    };
    format!("{verb} {}", c.server)
}

impl Rollout<'_> {
    /// Carries out the plan. `log` reports the deployment's steps, `host` each server's.
    pub async fn run(&self, state: &mut DeploymentState, log: Log<'_>, host: HostLog<'_>) -> Result<()> {
        let mut progress = Progress {
            done: Vec::new(),
            not_done: Vec::new(),
            current: None,
        };
        let result = self.carry_out(&mut progress, state, log, host).await;
        match (result, progress.current) {
            (Err(e), Some(step)) if e.downcast_ref::<Interrupted>().is_none() => Err(Stopped {
                step,
                cause: format!("{e:#}"),
                done: progress.done,
                not_done: progress.not_done,
            }
            .into()),
            (result, _) => result,
        }
    }

    async fn carry_out(&self, progress: &mut Progress, state: &mut DeploymentState, log: Log<'_>, host: HostLog<'_>) -> Result<()> {
        let target = self.target;
        let dir = target.dir();
        let plan = self.plan;
        if !plan.files.is_empty() {
            progress.not_done.push("files".into());
        }
        let moves = plan.cluster.iter().any(|c| matches!(c, ClusterStep::MoveReplicas { .. }));
        if moves {
            progress.not_done.push("new replicas".into());
        }
        progress.not_done.extend(plan.servers.iter().map(step_name));
        if !plan.cluster.is_empty() {
            progress.not_done.push("cluster steps".into());
        }
        progress.not_done.push("JetStream".into());
        progress.checkpoint()?;

        // A container's file mount keeps the replaced certificate's old inode: there a
        // rotation restarts the server instead of reloading it.
        let certificate_moved =
            |name: &str| state.applied.get(name).map(|a| &a.certificate) != self.desired.server(name).map(|s| &s.conf.certificate);
        let promoted: Vec<String> = plan
            .servers
            .iter()
            .filter(|c| c.action == ServerAction::Reload && !target.reload_reads_replaced_files() && certificate_moved(&c.server))
            .map(|c| c.server.clone())
            .collect();

        let timings = self.timings;
        let changes: Vec<_> = plan.files.iter().collect();
        let phase = Instant::now();
        if !changes.is_empty() {
            progress.begin("files");
            target.write_files(&changes, self.files, state, host).await?;
            state.save(dir)?;
            progress.finish("files");
            log(format!("wrote {} file(s)", changes.len()));
            timings.record(format!("rollout: files ({})", changes.len()), phase);
            progress.checkpoint()?;
        }
        state
            .applied
            .retain(|name, _| self.desired.server(name).is_some() || plan.servers.iter().any(|c| &c.server == name));
        state.save(dir)?;

        if moves {
            progress.begin("new replicas");
            super::replicas::grow(self.desired, self.keys, &plan.cluster, log).await?;
            progress.finish("new replicas");
            progress.checkpoint()?;
        }
        let monitor = Monitor::for_desired(self.desired);
        let in_order = |action: ServerAction| {
            let mut changes: Vec<&ServerChange> = plan
                .servers
                .iter()
                .filter(|c| c.action == action || (action == ServerAction::Restart && promoted.contains(&c.server)))
                .collect();
            changes.sort_by(|a, b| target.roll_order(&a.server, &b.server));
            changes
        };
        let phase = Instant::now();
        let stops = in_order(ServerAction::Stop);
        for c in &stops {
            let c = *c;
            progress.begin(step_name(c));
            target
                .stop(&c.server, stop_grace(self.desired, &c.server), StopMode::Terminate)
                .await?;
            state.applied.remove(&c.server);
            state.starting.remove(&c.server);
            state.save(dir)?;
            progress.finish(&step_name(c));
            host(&c.server, "stopped".into());
            // Out of the meta group before the next one stops: taking several servers away at
            // once must never leave the group without a quorum of the members it counts.
            if plan.cluster.contains(&ClusterStep::RemoveMetaPeer { server: c.server.clone() }) {
                forget_removed_peers(self.desired, self.keys, &[c.server.as_str()], log).await?;
            }
            progress.checkpoint()?;
        }
        if moves {
            super::replicas::shrink(self.desired, self.keys, &plan.cluster, log).await?;
        }
        if !stops.is_empty() {
            timings.record(format!("rollout: stops ({})", stops.len()), phase);
        }

        let starts: Vec<&ServerChange> = plan.servers.iter().filter(|c| c.action == ServerAction::Start).collect();
        let phase = Instant::now();
        if !starts.is_empty() {
            progress.begin(starts.iter().map(|c| step_name(c)).collect::<Vec<_>>().join(", "));
            let mut digests = Vec::new();
            for c in &starts {
                digests.push(self.expected_digest(c).await?);
            }
            // The journal first: no server runs that the state does not name.
            state.starting.extend(starts.iter().map(|c| c.server.clone()));
            state.save(dir)?;
            let names: Vec<&str> = starts.iter().map(|c| c.server.as_str()).collect();
            target.start(&names, state).await?;
            for name in &names {
                host(name, "started".into());
            }
            let patience = ready_timeout(starts.len());
            let ready = starts
                .iter()
                .zip(&digests)
                .map(|(c, d)| self.wait_ready(&monitor, &c.server, d, patience));
            let results = futures_util::future::join_all(ready).await;
            // Each started server runs its config, answering or not: one save for them all.
            for c in &starts {
                if let Some(s) = self.desired.server(&c.server) {
                    state.applied.insert(c.server.clone(), s.conf.clone());
                }
                state.starting.remove(&c.server);
            }
            state.save(dir)?;
            for (c, result) in starts.iter().zip(results) {
                result?;
                progress.finish(&step_name(c));
                host(&c.server, "answering".into());
            }
            timings.record(format!("rollout: starts, each answering with its digest ({})", starts.len()), phase);
            progress.checkpoint()?;
        }

        let phase = Instant::now();
        let mut reloads = 0;
        for c in plan
            .servers
            .iter()
            .filter(|c| c.action == ServerAction::Reload && !promoted.contains(&c.server))
        {
            reloads += 1;
            progress.begin(step_name(c));
            self.reload(&monitor, c).await?;
            if let Some(s) = self.desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            state.save(dir)?;
            progress.finish(&step_name(c));
            host(&c.server, format!("reloaded ({})", c.reason));
            progress.checkpoint()?;
        }
        if reloads > 0 {
            timings.record(format!("rollout: reloads ({reloads})"), phase);
        }

        let phase = Instant::now();
        let restarts = in_order(ServerAction::Restart);
        for c in &restarts {
            let c = *c;
            progress.begin(step_name(c));
            self.wait_for_cluster(&monitor, &c.server, host).await?;
            let digest = self.expected_digest(c).await?;
            // Lame duck hands the server's clients to the others before it goes.
            target
                .stop(&c.server, stop_grace(self.desired, &c.server), StopMode::LameDuck)
                .await?;
            state.starting.insert(c.server.clone());
            state.save(dir)?;
            target.start(&[&c.server], state).await?;
            if let Some(s) = self.desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            state.starting.remove(&c.server);
            state.save(dir)?;
            self.wait_ready(&monitor, &c.server, &digest, ready_timeout(1)).await?;
            // One server at a time, and the next only once this one's streams have caught up:
            // R3 streams keep their quorum through the whole roll.
            if let Some(spec) = self.desired.server(&c.server) {
                monitor.wait_healthy(&spec.monitor_url, HEALTHY_TIMEOUT).await.map_err(|last| {
                    anyhow::anyhow!(
                        "server {} is not healthy {} s after its restart ({last}); the roll stops here",
                        c.server,
                        HEALTHY_TIMEOUT.as_secs()
                    )
                })?;
            }
            progress.finish(&step_name(c));
            host(&c.server, format!("restarted ({})", c.reason));
            progress.checkpoint()?;
        }

        if !restarts.is_empty() {
            timings.record(format!("rollout: rolling restarts ({})", restarts.len()), phase);
        }
        if !plan.cluster.is_empty() {
            let phase = Instant::now();
            progress.begin("cluster steps");
            run_cluster_steps(self.desired, self.keys, &plan.cluster, log).await?;
            progress.finish("cluster steps");
            timings.record("rollout: cluster steps", phase);
            progress.checkpoint()?;
        }

        progress.begin("JetStream");
        converge_jetstream(
            self.desired,
            self.keys,
            plan,
            self.live_jetstream,
            (self.prune, self.allow_replace),
            log,
            timings,
        )
        .await
    }

    /// Waits until `server` answers and every other server of its cluster is healthy: a
    /// restart while a peer is unreachable could leave the meta group and the replicated
    /// streams without a quorum. Fails, changing nothing, after `peer_wait`.
    async fn wait_for_cluster(&self, monitor: &Monitor, server: &str, host: HostLog<'_>) -> Result<()> {
        let Some(spec) = self.desired.server(server) else {
            return Ok(());
        };
        let cluster: Vec<_> = match spec.role {
            Role::Node => self
                .desired
                .servers
                .iter()
                .filter(|s| s.role == Role::Node && s.region == spec.region)
                .collect(),
            Role::Leaf => vec![spec],
        };
        let started = Instant::now();
        let mut reported = None;
        loop {
            let answers = cluster.iter().map(|s| async move { (*s, monitor.health(&s.monitor_url).await) });
            let waiting_for = futures_util::future::join_all(answers)
                .await
                .into_iter()
                .find_map(|(s, answer)| match answer {
                    // The server itself need only answer: the restart may be what mends it.
                    Ok(_) if s.name == server => None,
                    Ok(Ok(())) => None,
                    Ok(Err(reason)) => Some((s, format!("it is not healthy: {reason}"))),
                    Err(reason) => Some((s, format!("it does not answer: {reason}"))),
                });
            let Some((peer, why)) = waiting_for else {
                return Ok(());
            };
            if reported.as_deref() != Some(peer.name.as_str()) {
                host(
                    server,
                    format!("waits for {} at {} before its restart: {why}", peer.name, peer.host),
                );
                reported = Some(peer.name.clone());
            }
            if started.elapsed() >= self.peer_wait {
                let whose = if peer.name == server {
                    "it".to_string()
                } else {
                    format!("its peer {}", peer.name)
                };
                bail!(
                    "{server} was not restarted: {whose} at {} has been unreachable or unhealthy for {} s ({why}); a restart now could leave the cluster {} without a quorum. Nothing of {server} was changed",
                    peer.host,
                    self.peer_wait.as_secs(),
                    spec.region
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The digest `c`'s server must show once changed: the plan's, else computed where the
    /// server runs now that its files are there. One that cannot be computed is a failure.
    async fn expected_digest(&self, c: &ServerChange) -> Result<String> {
        if let Some(d) = &c.expected_digest {
            return Ok(d.clone());
        }
        let conf = self
            .configs
            .config(&c.server)
            .with_context(|| format!("server {} has no rendered config", c.server))?;
        self.target.config_digest(&c.server, &conf).await?.with_context(|| {
            format!(
                "cannot compute the config digest of server {} where it runs (nats-server -t refused its config), so its change cannot be confirmed; nothing of it was changed",
                c.server
            )
        })
    }

    /// Waits until the server answers on its monitoring port with the expected digest; fails,
    /// with its log, when the process exits or `patience` is up.
    async fn wait_ready(&self, monitor: &Monitor, server: &str, digest: &str, patience: Duration) -> Result<()> {
        let spec = self
            .desired
            .server(server)
            .with_context(|| format!("server {server} is not in the topology"))?;
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut seen = None;
        loop {
            if let Ok((now, _)) = monitor.config_digest(&spec.monitor_url).await {
                if now.as_deref() == Some(digest) {
                    return Ok(());
                }
                seen = now;
            }
            // Asking where the server runs may cost a round trip: look every 20th try.
            attempts += 1;
            if attempts.is_multiple_of(20) && !self.target.running(server).await? {
                bail!("server {server} exited right after start:\n{}", self.target.log_tail(server).await);
            }
            if started.elapsed() > patience {
                let why = match seen {
                    Some(other) => format!("it runs config digest {other}, not the expected {digest}"),
                    None => format!("it did not answer on {}", spec.monitor_url),
                };
                bail!(
                    "server {server} is not ready {} s after its start: {why}\n{}",
                    patience.as_secs(),
                    self.target.log_tail(server).await
                );
            }
            tokio::time::sleep(Monitor::poll_interval(self.desired.servers.len())).await;
        }
    }

    /// Signals the reload and confirms it through `/varz`: the signal succeeds even when the
    /// reload fails, and a failed reload applies nothing.
    async fn reload(&self, monitor: &Monitor, c: &ServerChange) -> Result<()> {
        let digest = self.expected_digest(c).await?;
        let spec = self.desired.server(&c.server).context("reload of a server not in the topology")?;
        // A rotated certificate leaves the digest as it was: the load time shows the reload.
        let loaded_before = monitor.config_digest(&spec.monitor_url).await.ok().and_then(|(_, t)| t);
        self.target.reload(&c.server).await?;
        let started = Instant::now();
        let mut signalled = Instant::now();
        while started.elapsed() < self.target.reload_patience() {
            if let Ok((seen, loaded)) = monitor.config_digest(&spec.monitor_url).await
                && seen.as_deref() == Some(digest.as_str())
                && loaded != loaded_before
            {
                return Ok(());
            }
            // Where the new files arrive late (a ConfigMap), the reload is asked for again.
            if signalled.elapsed() > RESIGNAL_AFTER {
                self.target.reload(&c.server).await?;
                signalled = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "server {} did not take the new config on reload (its /varz config_digest did not change to {digest}):\n{}",
            c.server,
            self.target.log_tail(&c.server).await
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_started_together_have_longer_to_answer() {
        assert_eq!(ready_timeout(1), Duration::from_millis(20_250));
        assert_eq!(ready_timeout(110), Duration::from_millis(47_500));
    }
}
