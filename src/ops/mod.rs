//! The pipeline behind each command, one file per command: topology -> desired -> plan ->
//! apply -> verify, on whichever target the options name. The CLI commands are thin wrappers
//! around these functions.

mod apply;
mod backup;
mod destroy;
mod env;
mod material;
mod monitor;
mod plan;
mod prepare;
mod render;
mod restore;
mod rotate;
mod verify;

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::lock::DeploymentLock;
use crate::graph::{self, GraphFormat};
use crate::plan::Plan;
use crate::targets::ssh::session::HostKeyPolicy;
use crate::targets::{Target, TargetKind};
use crate::topology::{self, Loaded, TopologyError};
use crate::verify::Progress;

pub use apply::apply;
pub use backup::{BackupReport, backup};
pub use destroy::destroy;
pub use env::{ClientAccess, UserAccess, client_access, client_environment};
pub use monitor::monitor;
pub use plan::{plan, read_plan_file};
pub use render::{Rendered, render};
pub use restore::{RestoreReport, restore, restore_identity};
pub use rotate::rotate_certs;
pub use verify::verify;

/// Megabytes (10^6 bytes) per second.
pub fn throughput(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

/// Callbacks through which apply reports as it goes.
pub struct ApplyEvents<'a> {
    /// The topology's warnings and the plan, before any of it is carried out.
    pub plan: &'a (dyn Fn(&Loaded, &Plan) + Sync),
    pub log: &'a (dyn Fn(String) + Sync),
    /// A step on one host (targets that work host by host: ssh).
    pub host: &'a (dyn Fn(&str, String) + Sync),
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// What `plan` found: the plan, and the topology (with its warnings) it was made from.
pub struct PlanOutcome {
    pub loaded: Loaded,
    pub plan: Plan,
}

/// What every command that works on a deployment is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub topology: PathBuf,
    pub target: TargetKind,
    /// Where deployments keep their state on this machine.
    pub state_root: PathBuf,
    /// The nats-server binary (local target); looked up when not given.
    pub nats_server: Option<PathBuf>,
    /// The image the compose and k8s targets run instead of the topology's.
    pub image: Option<String>,
    /// The kubectl context of the k8s target (otherwise kubectl's current one).
    pub kube_context: Option<String>,
    pub host_keys: HostKeyPolicy,
    /// First port of the local and compose targets' range (kept from the last apply otherwise).
    pub port_base: Option<u16>,
    /// Delete JetStream objects the topology does not name.
    pub prune: bool,
    /// Replace JetStream objects the server cannot update in place (their messages are lost).
    pub allow_replace: bool,
    /// How long a command that changes the deployment waits for another one's lock.
    pub lock_timeout: Duration,
    /// Verification also proves the declared flows live (`--flows`).
    pub flows: bool,
    /// ... and traces each flow's message through the servers (`--trace`).
    pub trace: bool,
}

impl Options {
    /// The deployment's directory on this machine.
    pub fn deployment_dir(&self, topology: &str) -> PathBuf {
        self.target.deployment_dir(&self.state_root, topology)
    }
}

/// The target the options name, for the deployment of `topology`. `starts_servers`: the
/// command may start servers (or compute their digests), so the local nats-server is needed.
fn open_target(opts: &Options, t: &crate::model::Topology, starts_servers: bool) -> Result<Box<dyn Target>> {
    let bin = || -> Result<PathBuf> {
        if starts_servers {
            crate::nats_server::locate_version(opts.nats_server.as_deref(), t.nats_server_version.as_deref())
        } else {
            Ok(opts.nats_server.clone().unwrap_or_else(|| PathBuf::from("nats-server")))
        }
    };
    let place = crate::targets::Place {
        state_root: &opts.state_root,
        topology: t,
        image: opts.image.as_deref(),
        host_keys: &opts.host_keys,
        kube_context: opts.kube_context.as_deref(),
    };
    crate::targets::open(opts.target, place, bin)
}

/// Takes the deployment's lock for `command` (apply, destroy, rotate).
fn lock(opts: &Options, topology: &str, command: &str, log: &(dyn Fn(String) + Sync)) -> Result<DeploymentLock> {
    let what = format!("{command} {} --target {}", opts.topology.display(), opts.target.name());
    DeploymentLock::acquire(&opts.deployment_dir(topology), &what, opts.lock_timeout, log)
}

/// The error for a command that needs an applied deployment.
fn not_applied(opts: &Options, topology: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "topology `{topology}` is not applied on the {} target (no state in `{}`): run `notif-infra apply --target {} {}` first",
        opts.target.name(),
        opts.deployment_dir(topology).display(),
        opts.target.name(),
        opts.topology.display()
    )
}

/// An applied deployment as this machine reaches it: its target (holding what keeps the
/// URLs open, such as port-forwards, until it is dropped), its desired state and its keys
/// (every key must exist). Fails when the deployment was never applied.
pub(crate) struct Reached {
    pub target: Box<dyn Target>,
    pub desired: crate::desired::Desired,
    pub keys: crate::material::Keys,
}

/// The applied deployment `opts` names, on any target.
async fn reach(opts: &Options, t: &crate::model::Topology) -> Result<Reached> {
    use material::{KeyMode, secrets};
    let mut target = open_target(opts, t, false)?;
    let mut state = crate::targets::DeploymentState::load(target.dir())?.ok_or_else(|| not_applied(opts, &t.name))?;
    let deployed = target.deployed(t)?;
    let addressing = target.addressing(&deployed, &mut state, None)?;
    let tree = target.dir();
    let secrets = secrets(&deployed, tree, &addressing, KeyMode::Require, crate::material::pki::Rotation::None)?;
    let desired = crate::desired::build(&deployed, &addressing, &secrets.material(tree));
    target.open_reach(&desired).await?;
    Ok(Reached {
        target,
        desired,
        keys: secrets.keys,
    })
}

/// Moving bytes, as backup and restore report it.
pub enum Transfer<'a> {
    /// A stream's transfer begins; `total` bytes when known.
    Begin {
        label: &'a str,
        total: Option<u64>,
    },
    Bytes(u64),
    End,
}

/// Keeps the latest verification report (JSON) beside the deployment's state, for `graph --live`.
/// Not made durable: it is evidence of one moment, and the next verify writes it again (its
/// fsync was 0.2 s of a 1.7 s verify of 110 servers).
fn record_verification(dir: &Path, report: &crate::verify::Report) -> Result<()> {
    crate::fsio::write_visible(
        &dir.join("last-verify.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
        0o644,
    )
}

pub fn load(path: &Path) -> Result<Loaded, TopologyError> {
    topology::load(path)
}

/// Loads the topology and fails, listing every unset variable, when the servers would need
/// environment values that are missing.
fn load_for_servers(path: &Path) -> Result<Loaded> {
    let loaded = load(path)?;
    let missing = topology::check_env(&loaded.topology, |v| std::env::var(v).ok());
    if !missing.is_empty() {
        return Err(TopologyError::invalid(&loaded.source, missing).into());
    }
    Ok(loaded)
}

/// The topology as Mermaid or DOT; with `live`, as its target runs it, coloured by the last
/// verification of its deployment there.
pub fn graph(opts: &Options, format: GraphFormat, live: bool) -> Result<String> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    if !live {
        return Ok(graph::render(t, format, None));
    }
    let target = open_target(opts, t, false)?;
    let saved = target.dir().join("last-verify.json");
    let report = match std::fs::read_to_string(&saved) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "topology `{}` has not been verified on the {} target (nothing in `{}`): run `notif-infra verify --target {} {}` first",
            t.name,
            opts.target.name(),
            target.dir().display(),
            opts.target.name(),
            opts.topology.display()
        ),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read `{}`", saved.display()))),
    };
    let links = graph::live_links(&report).context("the saved verification report is not readable: run verify again")?;
    let shown = target.deployed(t)?;
    Ok(graph::render(&shown, format, Some(&links)))
}

/// The starter topologies shipped in `topologies/`, by name.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("dev", include_str!("../../topologies/dev.yaml")),
    ("supercluster", include_str!("../../topologies/supercluster.yaml")),
    ("rsfga", include_str!("../../topologies/rsfga.yaml")),
    ("unityplan", include_str!("../../topologies/unityplan.yaml")),
    ("unityplan-production", include_str!("../../topologies/unityplan-production.yaml")),
    ("covenant", include_str!("../../topologies/covenant.yaml")),
    ("notif-hybrid", include_str!("../../topologies/notif-hybrid.yaml")),
    ("mcp", include_str!("../../topologies/mcp.yaml")),
    ("secure", include_str!("../../topologies/secure.yaml")),
];

pub fn example(name: &str) -> Result<&'static str> {
    let names: BTreeMap<_, _> = EXAMPLES.iter().copied().collect();
    names.get(name).copied().ok_or_else(|| {
        let mut msg = format!(
            "no example named `{name}`; the examples are: {}",
            EXAMPLES.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
        );
        if let Some(s) = topology::did_you_mean(name, EXAMPLES.iter().map(|e| e.0)) {
            msg += &format!("\nhelp: did you mean `{s}`?");
        }
        anyhow::anyhow!(msg)
    })
}
