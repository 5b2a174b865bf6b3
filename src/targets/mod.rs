//! Where servers run. One interface, [`Target`], implemented by every driver: `local`
//! (nats-server processes on this machine), `compose` (a Docker Compose project), `ssh` (real
//! hosts) and `k8s` (a Kubernetes cluster through kubectl). A driver holds only what is
//! specific to its place: how files get there, how a server is started, stopped, signalled and
//! looked at. The rollout that uses them is one, in `apply::rollout`.

pub mod compose;
pub mod k8s;
pub mod local;
pub mod ssh;
mod state_file;

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::desired::{Addressing, Desired, RenderedFile, ServerConf};
use crate::model::{SshHost, Topology};
use crate::plan::{FileChange, ObservedServer};

/// The places a topology can be deployed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Local,
    Compose,
    Ssh,
    K8s,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Local => "local",
            TargetKind::Compose => "compose",
            TargetKind::Ssh => "ssh",
            TargetKind::K8s => "k8s",
        }
    }

    /// Whether others likely hold the deployment's credentials, so that purging its identity
    /// asks first: a local deployment is this machine's own.
    pub fn shared(self) -> bool {
        self != TargetKind::Local
    }

    /// The deployment's directory under the state root: `<topology>` for local, else
    /// `<topology>.<target>`.
    pub fn deployment_dir(self, state_root: &Path, topology: &str) -> PathBuf {
        match self {
            TargetKind::Local => state_root.join(topology),
            other => state_root.join(format!("{topology}.{}", other.name())),
        }
    }
}

/// Where a deployment is and what its driver is told.
pub struct Place<'a> {
    pub state_root: &'a Path,
    pub topology: &'a Topology,
    /// The image the compose and k8s targets run instead of the topology's.
    pub image: Option<&'a str>,
    pub host_keys: &'a ssh::session::HostKeyPolicy,
    /// The k8s target's kubectl context (otherwise kubectl's current one).
    pub kube_context: Option<&'a str>,
}

/// The driver of `kind` for the deployment at `place`; `bin` finds the nats-server that runs
/// (or checks) its servers' configs on this machine, for the drivers that need one.
pub fn open(kind: TargetKind, place: Place<'_>, bin: impl FnOnce() -> Result<PathBuf>) -> Result<Box<dyn Target>> {
    let name = place.topology.name.as_str();
    Ok(match kind {
        TargetKind::Local => Box::new(local::LocalTarget::new(place.state_root, name, bin()?)?),
        TargetKind::Compose => Box::new(compose::ComposeTarget::new(place.state_root, name, place.image, bin()?)?),
        TargetKind::Ssh => Box::new(ssh::SshTarget::new(place.state_root, name, place.host_keys.clone())?),
        TargetKind::K8s => Box::new(k8s::KubernetesTarget::new(
            place.state_root,
            place.topology,
            place.kube_context,
            place.image,
            bin()?,
        )?),
    })
}

/// What a deployment keeps on this machine (`state.json` in its directory), written after
/// every step of a rollout so that an interrupted one can be read and continued.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeploymentState {
    /// local and compose: the first port of the range and each server's slot in it.
    #[serde(default)]
    pub port_base: u16,
    /// Ports between one slot and the next; 0 until the first layout. A state written before
    /// the stride was recorded used 10.
    #[serde(default = "legacy_port_stride")]
    pub port_stride: u16,
    #[serde(default)]
    pub slots: BTreeMap<String, u16>,
    /// The config each server was last given.
    #[serde(default)]
    pub applied: BTreeMap<String, ServerConf>,
    /// The journal: servers whose start is under way. Written and synced before the process
    /// exists, so nothing runs that the state does not name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub starting: BTreeSet<String>,
    /// ssh: the files apply put on each server's host (relative to its config directory).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uploaded: BTreeMap<String, Vec<String>>,
    /// ssh: the hosts that run a WireGuard interface apply brought up: server -> config path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wireguard: BTreeMap<String, String>,
    /// ssh: every host apply reached, so destroy finds the ones that left the topology.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, SshHost>,
}

fn legacy_port_stride() -> u16 {
    10
}

impl DeploymentState {
    fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// The state of the deployment in `dir`; `None` when it was never applied.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        state_file::load(&Self::path(dir))
    }

    /// Saves the state atomically and durably (file and directory synced), readable by the
    /// owner only.
    pub fn save(&self, dir: &Path) -> Result<()> {
        state_file::save(self, &Self::path(dir))
    }

    /// Every server the state names: applied, or with a start under way.
    pub fn servers(&self) -> BTreeSet<String> {
        self.applied.keys().chain(&self.starting).cloned().collect()
    }
}

/// Something a command did, for the progress display.
pub type Log<'a> = &'a (dyn Fn(String) + Sync);
/// One step on one host (the server it runs): a line, and its row of the per-host display.
pub type HostLog<'a> = &'a (dyn Fn(&str, String) + Sync);

/// How a server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGTERM: the server shuts down at once (a removed server, destroy).
    Terminate,
    /// Lame duck (SIGUSR2): no new clients; the connected ones are handed to the other servers
    /// over the lame-duck period, then it exits (rolling restarts and upgrades).
    LameDuck,
}

impl StopMode {
    /// The signal's name as `kill -s` takes it.
    pub fn signal(self) -> &'static str {
        match self {
            StopMode::Terminate => "TERM",
            StopMode::LameDuck => "USR2",
        }
    }
}

/// How long a stopped server gets before it is killed: its lame-duck period (nats-server's
/// default, 2 minutes, when the topology sets none), and 10 s more. A server in lame duck with
/// no clients left exits in about 2 s; one shut down with SIGTERM at once.
pub fn stop_grace(desired: &Desired, server: &str) -> Duration {
    desired
        .server(server)
        .and_then(|s| s.conf.lame_duck_duration.as_deref())
        .and_then(|d| crate::units::parse_duration(d).ok())
        .unwrap_or(crate::nats_server::DEFAULT_LAME_DUCK)
        + Duration::from_secs(10)
}

/// Where servers run, as the engine sees it. Every method that changes something is called by
/// the one rollout, in its order; every method that reads is called by plan and verify.
#[async_trait]
pub trait Target: Send + Sync {
    fn kind(&self) -> TargetKind;

    /// The deployment's directory on this machine: state, keys, certificates, credentials.
    fn dir(&self) -> &Path;

    /// The topology as this target runs it: on Kubernetes each region's servers are its
    /// StatefulSet's pods. Fails, naming the object, for what the target cannot run.
    fn deployed<'t>(&self, t: &'t Topology) -> Result<std::borrow::Cow<'t, Topology>> {
        Ok(std::borrow::Cow::Borrowed(t))
    }

    /// How servers are addressed here; settles the port layout in `state` where the target
    /// assigns ports (`port_base`: the one asked for, else the one recorded).
    fn addressing(&self, t: &Topology, state: &mut DeploymentState, port_base: Option<u16>) -> Result<Addressing>;

    /// Whether servers here run the topology's WireGuard mesh (their configs are deployed).
    fn runs_wireguard(&self) -> bool {
        false
    }

    /// The files this target deploys, named as plan shows them: the rendered ones placed where
    /// the target keeps them, plus what the target itself needs (a compose project).
    fn layout(&self, t: &Topology, desired: &Desired, rendered: Vec<RenderedFile>) -> Result<Vec<RenderedFile>>;

    /// Opens what later calls need (ssh sessions to every host). Fails, naming each host it
    /// could not reach, before anything is changed.
    async fn connect(&mut self, _t: &Topology, _state: &DeploymentState, _log: HostLog<'_>) -> Result<()> {
        Ok(())
    }

    /// Opens what this machine needs to reach the servers' client and monitoring ports at the
    /// URLs `desired` names (Kubernetes: port-forwards), until `close`.
    async fn open_reach(&mut self, _desired: &Desired) -> Result<()> {
        Ok(())
    }

    /// Closes what `connect` and `open_reach` opened.
    async fn close(&mut self) {}

    /// The deployed files (those in `files` and those apply placed before), by plan path.
    async fn read_files(&self, t: &Topology, files: &[RenderedFile], state: &DeploymentState) -> Result<BTreeMap<PathBuf, String>>;

    /// Every server of this deployment that runs or that the state names: whether it runs, the
    /// digest it runs with, the config apply last gave it.
    async fn observe(&self, state: &DeploymentState, desired: &Desired) -> Result<BTreeMap<String, ObservedServer>>;

    /// The digest nats-server computes for `conf` where `server` runs; `None` when it cannot
    /// be computed there yet (files the config names are not deployed).
    async fn config_digest(&self, server: &str, conf: &str) -> Result<Option<String>>;

    /// Fails, naming server and port, when a server about to start would find its port taken.
    fn check_ports_free(&self, _starting: &[&crate::desired::ServerSpec]) -> Result<()> {
        Ok(())
    }

    /// Writes the changed files and removes the deleted ones (`files`: every deployed file, for
    /// targets that need more than the changes), recording in `state` what it placed.
    async fn write_files(
        &self,
        changes: &[&FileChange],
        files: &[RenderedFile],
        state: &mut DeploymentState,
        log: HostLog<'_>,
    ) -> Result<()>;

    /// Starts the servers (the state already names them in its journal).
    async fn start(&self, servers: &[&str], state: &DeploymentState) -> Result<()>;

    /// Stops a server as `mode` says, SIGKILL after `grace`.
    async fn stop(&self, server: &str, grace: Duration, mode: StopMode) -> Result<()>;

    /// Signals a server to reload its config.
    async fn reload(&self, server: &str) -> Result<()>;

    /// How long a reloaded server may take to show its new config (Kubernetes brings a changed
    /// ConfigMap into a pod within the kubelet's sync period).
    fn reload_patience(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// The order servers are stopped and rolled in, where the target has one (a StatefulSet
    /// removes and rolls its highest ordinals first).
    fn roll_order(&self, _a: &str, _b: &str) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }

    /// The client and monitoring URLs that outlive this command, for the clients of a later
    /// step (`apply --env-file`): where this machine reaches them, unless only a command's
    /// port-forward does.
    fn lasting_urls(&self, s: &crate::desired::ServerSpec) -> (String, String) {
        (s.client_url.clone(), s.monitor_url.clone())
    }

    /// Whether the server's process runs.
    async fn running(&self, server: &str) -> Result<bool>;

    /// The last lines of the server's log, secrets redacted, for error messages.
    async fn log_tail(&self, server: &str) -> String;

    /// Whether a reload reads certificate files replaced on disk (a container's file mount
    /// keeps the old inode: there a rotation restarts the server).
    fn reload_reads_replaced_files(&self) -> bool {
        true
    }

    /// Stops every server of the deployment, wherever it runs, and removes what apply placed
    /// outside this machine's state directory. Returns the servers stopped.
    async fn destroy(&self, state: &DeploymentState, log: HostLog<'_>) -> Result<Vec<String>>;
}
