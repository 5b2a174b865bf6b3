//! The pipeline behind each command, target by target: topology -> desired -> plan -> apply ->
//! verify. The CLI commands are thin wrappers around these functions.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::{LocalState, LocalTarget};
use crate::desired::{self, Addressing, DEFAULT_LOCAL_PORT_BASE, Desired, Keys, RenderedFile};
use crate::graph::{self, GraphFormat};
use crate::jsapi::{self, JsApi};
use crate::observed::Monitor;
use crate::observed::jetstream::{self, Connections};
use crate::plan::{self, DesiredServer, JsAction, JsChange, LiveState, Plan};
use crate::secrets::{KeyStore, NOT_YET_GENERATED};
use crate::topology::{self, Loaded, TopologyError};
use crate::verify::{self, Progress, Report};
use crate::{nats_server, secrets};

/// How long apply waits for JetStream to be ready once the servers run (a super-cluster elects
/// its meta leader in about 5 s).
const JETSTREAM_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading the live objects waits out a leader election before giving up.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// What every local-target command needs to know.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub topology: PathBuf,
    pub state_root: PathBuf,
    pub nats_server: Option<PathBuf>,
    pub port_base: Option<u16>,
    /// Delete JetStream objects the topology does not name.
    pub prune: bool,
    /// Replace JetStream objects the server cannot update in place (their messages are lost).
    pub allow_replace: bool,
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

/// What `render` wrote, and the topology (with its warnings) it came from.
pub struct Rendered {
    pub loaded: Loaded,
    pub out: PathBuf,
    pub files: Vec<RenderedFile>,
}

/// Renders every artefact for the hosts the topology declares into `out` (keys generated once).
pub fn render(path: &Path, out: Option<&Path>) -> Result<Rendered> {
    let loaded = load(path)?;
    let t = &loaded.topology;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("out").join(&t.name));
    let (keys, _) = KeyStore::new(&out).load_or_generate(&desired::needed_keys(t))?;
    let desired = desired::build(t, &Addressing::Declared, &keys);
    let mut files = desired::render_files(&desired).context("cannot render the server configs")?;
    let env_vars: std::collections::BTreeSet<String> = t.env_refs().into_iter().map(|r| r.var).collect();
    files.extend(desired::compose_file(&desired, &env_vars.into_iter().collect::<Vec<_>>()));
    for (path, _) in crate::observed::files::read_tree(&out, &["nats", "compose"])? {
        if !files.iter().any(|f| f.path == path) {
            std::fs::remove_file(out.join(&path))?;
        }
    }
    for f in &files {
        let mode = if f.secret { 0o600 } else { 0o644 };
        secrets::write_atomic(&out.join(&f.path), f.content.as_bytes(), mode)?;
    }
    Ok(Rendered { loaded, out, files })
}

/// Everything a local plan or apply works from.
pub struct LocalContext {
    pub loaded: Loaded,
    /// The live JetStream objects as plan read them.
    pub live_jetstream: LiveState,
    pub target: LocalTarget,
    pub state: LocalState,
    pub keys: Keys,
    pub desired: Desired,
    pub plan: Plan,
}

async fn prepare_local(opts: &LocalOptions, generate_keys: bool) -> Result<LocalContext> {
    let loaded = load_for_servers(&opts.topology)?;
    let t = &loaded.topology;
    let bin = nats_server::locate(opts.nats_server.as_deref())?;
    let target = LocalTarget::new(&opts.state_root, &t.name, bin.clone());
    let previous = target.load_state()?.unwrap_or_default();
    let port_base = opts
        .port_base
        .or((previous.port_base != 0).then_some(previous.port_base))
        .unwrap_or(DEFAULT_LOCAL_PORT_BASE);
    let slots = desired::assign_slots(t, port_base, &previous.slots).map_err(anyhow::Error::msg)?;
    let addressing = Addressing::Local {
        port_base,
        slots: slots.clone(),
        state_dir: std::path::absolute(&target.dir)?,
    };
    let store = KeyStore::new(&target.dir);
    let needed = desired::needed_keys(t);
    let (keys, missing) = if generate_keys {
        store.load_or_generate(&needed)?
    } else {
        store.load_or_placeholder(&needed)?
    };
    let desired = desired::build(t, &addressing, &keys);
    let files = desired::render_files(&desired).context("cannot render the server configs")?;
    let on_disk = target.files_on_disk()?;
    let state = LocalState {
        port_base,
        slots,
        applied: previous.applied.clone(),
    };
    let observed = target.observe(&state).await;
    let js_running = desired
        .servers
        .iter()
        .filter(|s| desired.jetstream_urls.contains(&s.client_url))
        .any(|s| observed.get(&s.name).is_some_and(|o| o.running));
    let read_live = async {
        if js_running && missing.is_empty() && !desired.jetstream_accounts.is_empty() {
            read_live_jetstream(&desired, &keys).await
        } else {
            Ok(LiveState::NotRunning)
        }
    };
    let (servers, live) = tokio::join!(desired_servers(&bin, &desired, &files), read_live);
    let (servers, live) = (servers?, live?);
    let plan = Plan {
        topology: t.name.clone(),
        target: "local".into(),
        keys: plan::key_changes(&missing),
        files: plan::file_changes(&files, &on_disk),
        servers: plan::server_changes(&servers, &observed),
        jetstream: plan::jetstream_changes(&desired.jetstream, &live, opts.prune),
    };
    Ok(LocalContext {
        loaded,
        live_jetstream: live,
        target,
        state,
        keys,
        desired,
        plan,
    })
}

/// Each server's config with the digest nats-server computes for it, checked concurrently.
/// A config nats-server rejects stops everything here, before anything is written or started.
async fn desired_servers(bin: &Path, desired: &Desired, files: &[RenderedFile]) -> Result<Vec<DesiredServer>> {
    let checks = desired.servers.iter().zip(files).map(|(s, f)| async move {
        let digest = if f.content.contains(NOT_YET_GENERATED) {
            None
        } else {
            Some(nats_server::check_config_text(bin, &s.name, &f.content).await?)
        };
        Ok::<_, anyhow::Error>(DesiredServer {
            name: s.name.clone(),
            conf: s.conf.clone(),
            digest,
        })
    });
    futures_util::future::join_all(checks).await.into_iter().collect()
}

/// The plan, with the topology (and its warnings) it was made from.
pub async fn plan_local(opts: &LocalOptions) -> Result<(Loaded, Plan)> {
    let ctx = prepare_local(opts, false).await?;
    Ok((ctx.loaded, ctx.plan))
}

/// Callbacks through which apply reports as it goes.
pub struct ApplyEvents<'a> {
    /// The topology's warnings and the plan, before any of it is carried out.
    pub plan: &'a (dyn Fn(&Loaded, &Plan) + Sync),
    pub log: &'a (dyn Fn(String) + Sync),
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// Applies the plan, then verifies until `timeout`.
pub async fn apply_local(opts: &LocalOptions, timeout: Duration, events: ApplyEvents<'_>) -> Result<(Loaded, Plan, Report)> {
    let mut ctx = prepare_local(opts, true).await?;
    ctx.target.check_ports_free(&ctx.plan, &ctx.desired)?;
    (events.plan)(&ctx.loaded, &ctx.plan);
    refuse_replacements(&ctx.plan.jetstream, opts.allow_replace)?;
    let log = events.log;
    let servers_changed = !(ctx.plan.keys.is_empty() && ctx.plan.files.is_empty() && ctx.plan.servers.is_empty());
    if servers_changed {
        ctx.target.execute(&ctx.plan, &ctx.desired, &mut ctx.state, log).await?;
        let removed: Vec<&str> = ctx
            .plan
            .servers
            .iter()
            .filter(|c| c.action == plan::ServerAction::Stop)
            .map(|c| c.server.as_str())
            .collect();
        if !removed.is_empty() && !ctx.desired.jetstream_meta.is_empty() {
            forget_removed_peers(&ctx.desired, &ctx.keys, &removed, log).await?;
        }
    } else {
        ctx.target.record_layout(&ctx.state)?;
    }
    // The plan's JetStream changes hold only if it read the live servers and they did not change.
    if servers_changed || !matches!(ctx.live_jetstream, LiveState::Read(_)) {
        if !ctx.desired.jetstream_accounts.is_empty() {
            wait_jetstream_ready(&ctx.desired).await?;
            let live = read_live_jetstream(&ctx.desired, &ctx.keys).await?;
            let changes = plan::jetstream_changes(&ctx.desired.jetstream, &live, opts.prune);
            apply_jetstream(&ctx.desired, &ctx.keys, &changes, opts, log).await?;
        }
    } else if ctx.plan.jetstream_work().next().is_some() {
        // The servers did not change: the plan's reading of the live objects still holds.
        apply_jetstream(&ctx.desired, &ctx.keys, &ctx.plan.jetstream, opts, log).await?;
    }
    let known_streams = match (servers_changed, ctx.plan.jetstream_work().next(), ctx.live_jetstream) {
        (false, None, LiveState::Read(live)) => Some(live),
        _ => None,
    };
    let report = verify::verify(&ctx.desired, &ctx.keys, "local", timeout, known_streams, events.progress).await;
    ctx.target.record_verification(&serde_json::to_string_pretty(&report)?)?;
    Ok((ctx.loaded, ctx.plan, report))
}

/// Waits until every JetStream server answers `/healthz` (which nats-server holds back until
/// the meta group has a leader and the server's streams are current) and the leader sees every
/// other member current: before that, API requests go unanswered or placement finds peers
/// offline.
async fn wait_jetstream_ready(desired: &Desired) -> Result<()> {
    let monitor = Monitor::new();
    // Every JetStream node of the super-cluster: the meta leader may be in any region.
    let servers = desired.jetstream_nodes();
    let started = std::time::Instant::now();
    loop {
        let Some(waiting) = jetstream_not_ready(&monitor, &servers, desired.jetstream_meta.len()).await else {
            return Ok(());
        };
        if started.elapsed() >= JETSTREAM_READY_TIMEOUT {
            bail!(
                "JetStream is not ready after {} s, so no stream or consumer was applied: {waiting}",
                JETSTREAM_READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What JetStream still waits for, if anything.
async fn jetstream_not_ready(monitor: &Monitor, servers: &[&desired::ServerSpec], members: usize) -> Option<String> {
    let checks = futures_util::future::join_all(servers.iter().map(|s| monitor.health(&s.monitor_url))).await;
    for (s, check) in servers.iter().zip(checks) {
        if let Ok(Err(reason)) | Err(reason) = check {
            return Some(format!("{}: {reason}", s.name));
        }
    }
    if members == 0 {
        // A lone server runs JetStream without a meta group.
        return None;
    }
    let views = futures_util::future::join_all(servers.iter().map(|s| monitor.meta_peers(&s.monitor_url))).await;
    let leader_view = servers.iter().zip(views).find_map(|(s, view)| match view {
        Ok((Some(leader), peers)) if leader == s.name => Some(peers),
        _ => None,
    });
    let Some(peers) = leader_view else {
        return Some("the JetStream meta group has no leader yet".into());
    };
    if peers.len() + 1 < members {
        return Some(format!("the meta leader sees {} of {members} members", peers.len() + 1));
    }
    peers
        .iter()
        .find(|p| p.offline || !p.current)
        .map(|p| format!("the meta leader does not see {} current yet", p.name))
}

/// Reads the live JetStream objects of the managed accounts: from the servers' monitoring
/// endpoints (one request per server), or through the JetStream API when one of them does not
/// answer. The API is retried while the meta group or a stream elects a leader, since a partial
/// listing would show existing objects as missing.
async fn read_live_jetstream(desired: &Desired, keys: &Keys) -> Result<LiveState> {
    if let Ok(live) = jetstream::read_monitoring(&Monitor::new(), desired).await {
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
            Err(e) if e.is_transient() && started.elapsed() < ELECTION_TIMEOUT => {
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

/// Removes servers that left the topology from the JetStream meta group, so it shrinks to the
/// servers that remain and their streams get new replicas. Needs the system account.
async fn forget_removed_peers(desired: &Desired, keys: &Keys, removed: &[&str], log: &(dyn Fn(String) + Sync)) -> Result<()> {
    let Some(system) = &desired.system_account else {
        for server in removed {
            log(format!(
                "warning: {server} stays in the JetStream meta group as an offline peer: declare a system account so notif-infra can remove it, or run `nats server raft peer-remove {server}`"
            ));
        }
        return Ok(());
    };
    let api = JsApi::connect(&desired.jetstream_urls, &Some(system.clone()), keys)
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

/// Without `--allow-replace`, a change that would delete and recreate a stream or consumer
/// stops apply before it touches anything.
fn refuse_replacements(changes: &[JsChange], allowed: bool) -> Result<()> {
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

/// Brings the JetStream objects to the topology: creates, updates, replaces and (with --prune)
/// deletes.
async fn apply_jetstream(
    desired: &Desired,
    keys: &Keys,
    changes: &[JsChange],
    opts: &LocalOptions,
    log: &(dyn Fn(String) + Sync),
) -> Result<()> {
    refuse_replacements(changes, opts.allow_replace)?;
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

/// Verifies what apply brought up, without changing anything.
pub async fn verify_local(opts: &LocalOptions, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    let target = LocalTarget::new(&opts.state_root, &t.name, PathBuf::new());
    let Some(state) = target.load_state()? else {
        bail!(
            "topology `{}` is not applied on the local target (no state in `{}`): run `notif-infra apply {}` first",
            t.name,
            target.dir.display(),
            opts.topology.display()
        );
    };
    let slots = desired::assign_slots(t, state.port_base, &state.slots).map_err(anyhow::Error::msg)?;
    let addressing = Addressing::Local {
        port_base: state.port_base,
        slots,
        state_dir: std::path::absolute(&target.dir)?,
    };
    let (keys, missing) = KeyStore::new(&target.dir).load(&desired::needed_keys(t))?;
    if !missing.is_empty() {
        bail!(
            "the verification keys for {} are missing from `{}`: run apply to create them",
            missing.iter().map(|k| k.describe()).collect::<Vec<_>>().join(", "),
            target.dir.display()
        );
    }
    let desired = desired::build(t, &addressing, &keys);
    let report = verify::verify(&desired, &keys, "local", timeout, None, progress).await;
    target.record_verification(&serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

/// The topology as Mermaid or DOT; with `live`, coloured by the local deployment's last
/// verification.
pub fn graph(path: &Path, state_root: &Path, format: GraphFormat, live: bool) -> Result<String> {
    let loaded = load(path)?;
    let t = &loaded.topology;
    let links = if live {
        let target = LocalTarget::new(state_root, &t.name, PathBuf::new());
        let Some(report) = target.last_verification()? else {
            bail!(
                "topology `{}` has not been verified on the local target (nothing in `{}`): run `notif-infra verify {}` first",
                t.name,
                target.dir.display(),
                path.display()
            );
        };
        Some(graph::live_links(&report).context("the saved verification report is not readable: run verify again")?)
    } else {
        None
    };
    Ok(graph::render(t, format, links.as_deref()))
}

/// Stops the servers and removes the state; returns the servers stopped and the directory removed.
pub async fn destroy_local(opts: &LocalOptions) -> Result<(Vec<String>, PathBuf)> {
    let loaded = load(&opts.topology)?;
    let target = LocalTarget::new(&opts.state_root, &loaded.topology.name, PathBuf::new());
    let stopped = target.destroy().await?;
    Ok((stopped, target.dir))
}

/// The starter topologies shipped in `topologies/`, by name.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("dev", include_str!("../topologies/dev.yaml")),
    ("supercluster", include_str!("../topologies/supercluster.yaml")),
    ("rsfga", include_str!("../topologies/rsfga.yaml")),
    ("unityplan", include_str!("../topologies/unityplan.yaml")),
    ("covenant", include_str!("../topologies/covenant.yaml")),
    ("notif-hybrid", include_str!("../topologies/notif-hybrid.yaml")),
    ("mcp", include_str!("../topologies/mcp.yaml")),
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
