//! The targets on this machine (`local` processes, `compose`): plan, apply, verify, rotate,
//! destroy.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::{LocalState, LocalTarget};
use crate::auth;
use crate::desired::{self, Addressing, DEFAULT_LOCAL_PORT_BASE, Desired, Keys, RenderedFile};
use crate::nats_server;
use crate::pki::Rotation;
use crate::plan::{self, DesiredServer, LiveState, Plan};
use crate::secrets::NOT_YET_GENERATED;
use crate::topology::Loaded;
use crate::verify::{self, Progress, Report};

use super::cluster::{converge_jetstream, read_live_jetstream, refuse_replacements, settle_server_changes};
use super::material::{KeyMode, Secrets, secrets};
use super::render::env_var_names;
use super::{load, load_for_servers};

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
    /// Certificates apply replaces (`rotate certs`).
    pub rotation: Rotation,
    /// `Some(image)`: run the servers as a Docker Compose project of that image.
    pub compose_image: Option<String>,
}

impl LocalOptions {
    pub fn target_name(&self) -> &'static str {
        if self.compose_image.is_some() { "compose" } else { "local" }
    }

    /// The deployment these options name on this machine: processes, or a compose project.
    fn target(&self, topology: &str, bin: PathBuf) -> Result<LocalTarget> {
        match &self.compose_image {
            Some(image) => LocalTarget::compose(&self.state_root, topology, image),
            None => Ok(LocalTarget::new(&self.state_root, topology, bin)),
        }
    }

    fn addressing(&self, port_base: u16, slots: BTreeMap<String, u16>, state_dir: PathBuf) -> Addressing {
        match &self.compose_image {
            Some(_) => Addressing::Compose {
                port_base,
                slots,
                state_dir,
            },
            None => Addressing::Local {
                port_base,
                slots,
                state_dir,
            },
        }
    }
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
    let target = opts.target(&t.name, bin.clone())?;
    let previous = target.load_state()?.unwrap_or_default();
    let port_base = opts
        .port_base
        .or((previous.port_base != 0).then_some(previous.port_base))
        .unwrap_or(DEFAULT_LOCAL_PORT_BASE);
    let slots = desired::assign_slots(t, port_base, &previous.slots).map_err(anyhow::Error::msg)?;
    let tree = std::path::absolute(&target.dir)?;
    let addressing = opts.addressing(port_base, slots.clone(), tree.clone());
    let mode = if generate_keys { KeyMode::Generate } else { KeyMode::Inspect };
    let secrets = secrets(t, &tree, &addressing, mode, opts.rotation)?;
    let desired = desired::build(t, &addressing, &secrets.material(&tree));
    let mut files = desired::render_files(&desired).context("cannot render the server configs")?;
    if target.is_compose() {
        let project = desired::compose_file(&desired, &env_var_names(t), desired::Publish::Loopback, &tree.display().to_string())
            .with_context(|| {
                format!(
                    "topology `{}` dials its servers by IP address (one host each): the compose target runs them all on this machine; give the nodes host names",
                    t.name
                )
            })?;
        files.push(project);
    }
    let on_disk = target.files_on_disk(&auth::tree_dirs(t))?;
    let Secrets {
        keys, changes, missing, ..
    } = secrets;
    let state = LocalState {
        port_base,
        slots,
        applied: previous.applied.clone(),
    };
    let observed = target.observe(&state, &desired).await;
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
        target: opts.target_name().into(),
        keys: changes,
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
    /// A step on one host (targets that work host by host: ssh).
    pub host: &'a (dyn Fn(&str, String) + Sync),
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
        settle_server_changes(&ctx.desired, &ctx.keys, &ctx.plan, log).await?;
    } else {
        ctx.target.record_layout(&ctx.state)?;
    }
    converge_jetstream(
        &ctx.desired,
        &ctx.keys,
        &ctx.plan,
        &ctx.live_jetstream,
        servers_changed,
        (opts.prune, opts.allow_replace),
        log,
    )
    .await?;
    let known_streams = match (servers_changed, ctx.plan.jetstream_work().next(), ctx.live_jetstream) {
        (false, None, LiveState::Read(live)) => Some(live),
        _ => None,
    };
    let report = verify::verify(&ctx.desired, &ctx.keys, opts.target_name(), timeout, known_streams, events.progress).await;
    ctx.target.record_verification(&serde_json::to_string_pretty(&report)?)?;
    Ok((ctx.loaded, ctx.plan, report))
}

/// Verifies what apply brought up, without changing anything.
/// The applied local deployment's tree and addressing; an error when it was never applied.
fn applied_local(opts: &LocalOptions, t: &crate::model::Topology) -> Result<(LocalTarget, PathBuf, Addressing)> {
    let target = opts.target(&t.name, PathBuf::new())?;
    let Some(state) = target.load_state()? else {
        bail!(
            "topology `{}` is not applied on the local target (no state in `{}`): run `notif-infra apply {}` first",
            t.name,
            target.dir.display(),
            opts.topology.display()
        );
    };
    let slots = desired::assign_slots(t, state.port_base, &state.slots).map_err(anyhow::Error::msg)?;
    let tree = std::path::absolute(&target.dir)?;
    let addressing = opts.addressing(state.port_base, slots, tree.clone());
    Ok((target, tree, addressing))
}

/// Issues new certificates (the CA too with `Rotation::All`) for the applied local deployment;
/// the next apply reloads the servers with them. Returns what was issued.
pub fn rotate_certs_local(opts: &LocalOptions, rotation: Rotation) -> Result<Vec<plan::KeyChange>> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    if !t.tls.any() {
        bail!("topology `{}` uses no TLS: there are no certificates to rotate", t.name);
    }
    let (_, tree, addressing) = applied_local(opts, t)?;
    Ok(secrets(t, &tree, &addressing, KeyMode::Generate, rotation)?.changes)
}

pub async fn verify_local(opts: &LocalOptions, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    let (target, tree, addressing) = applied_local(opts, t)?;
    let secrets = secrets(t, &tree, &addressing, KeyMode::Require, Rotation::None)?;
    let desired = desired::build(t, &addressing, &secrets.material(&tree));
    let report = verify::verify(&desired, &secrets.keys, opts.target_name(), timeout, None, progress).await;
    target.record_verification(&serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

/// What later CI steps need to reach the applied deployment, as environment variables: the
/// client and monitoring URLs, the CA, and each user's credentials file (absolute paths).
pub fn client_environment(opts: &LocalOptions) -> Result<Vec<(String, String)>> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    let (_, tree, addressing) = applied_local(opts, t)?;
    let secrets = secrets(t, &tree, &addressing, KeyMode::Require, Rotation::None)?;
    let desired = desired::build(t, &addressing, &secrets.material(&tree));
    let nodes: Vec<&desired::ServerSpec> = desired.servers.iter().filter(|s| s.role == desired::Role::Node).collect();
    let join = |f: fn(&desired::ServerSpec) -> &str| nodes.iter().map(|s| f(s)).collect::<Vec<_>>().join(",");
    let mut vars = vec![
        ("NATS_URL".to_string(), join(|s| s.client_url.as_str())),
        ("NATS_MONITOR_URLS".to_string(), join(|s| s.monitor_url.as_str())),
    ];
    if let Some(tls) = &desired.client_tls {
        vars.push(("NATS_CA".into(), tls.ca.display().to_string()));
    }
    for f in desired
        .auth_files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "creds"))
    {
        let (Some(account), Some(user)) = (f.path.parent().and_then(|p| p.file_name()), f.path.file_stem()) else {
            continue;
        };
        if account.to_string_lossy().starts_with('_') {
            continue;
        }
        let name = format!("NATS_CREDS_{}_{}", account.to_string_lossy(), user.to_string_lossy())
            .to_uppercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        vars.push((name, tree.join(&f.path).display().to_string()));
    }
    Ok(vars)
}

/// Stops the servers and removes the state; returns the servers stopped and the directory removed.
pub async fn destroy_local(opts: &LocalOptions) -> Result<(Vec<String>, PathBuf)> {
    let loaded = load(&opts.topology)?;
    let target = opts.target(&loaded.topology.name, PathBuf::new())?;
    let stopped = target.destroy().await?;
    Ok((stopped, target.dir))
}
