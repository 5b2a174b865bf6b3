//! The ssh target: plan, apply, verify and destroy on real hosts reached over SSH. Keys,
//! certificates and credentials are made on this machine under `<state-root>/<topology>.ssh/`
//! and each host gets exactly the files its servers name.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apply::ssh::{HostFile, HostLog, Rollout, SshState, SshTarget};
use crate::auth;
use crate::desired::{self, Addressing, Desired, Keys, RenderedFile};
use crate::model::{SshHost, Topology};
use crate::pki::Rotation;
use crate::plan::{self, DesiredServer, LiveState, Plan};
use crate::secrets::{NOT_YET_GENERATED, write_atomic, write_private};
use crate::ssh::{HostKeyPolicy, Session};
use crate::topology::Loaded;
use crate::verify::{self, Report};

use super::cluster::{converge_jetstream, read_live_jetstream, refuse_replacements, settle_server_changes};
use super::local::ApplyEvents;
use super::material::{KeyMode, secrets};
use super::{load, load_for_servers};

#[derive(Debug, Clone)]
pub struct SshOptions {
    pub topology: PathBuf,
    pub state_root: PathBuf,
    pub policy: HostKeyPolicy,
    pub prune: bool,
    pub allow_replace: bool,
    pub rotation: Rotation,
}

struct SshContext {
    loaded: Loaded,
    target: SshTarget,
    sessions: BTreeMap<String, Session>,
    hosts: BTreeMap<String, SshHost>,
    state: SshState,
    keys: Keys,
    desired: Desired,
    /// Credentials and contexts kept on this machine.
    local_files: Vec<RenderedFile>,
    host_files: Vec<HostFile>,
    live_jetstream: LiveState,
    plan: Plan,
}

async fn close(sessions: BTreeMap<String, Session>) {
    for (_, s) in sessions {
        s.close().await;
    }
}

/// Every server's host, and the hosts of servers apply placed before that left the topology.
fn hosts_of(t: &Topology, state: &SshState) -> BTreeMap<String, SshHost> {
    let mut hosts: BTreeMap<String, SshHost> = state.hosts.clone();
    for name in t.server_names() {
        if let Some(h) = t.ssh_host(name) {
            hosts.insert(name.to_string(), h.clone());
        }
    }
    hosts
}

/// The files each server's host needs: its config, the certificates and credentials the config
/// names (never the CA key or other servers' keys), and its WireGuard config.
fn host_files(t: &Topology, desired: &Desired, rendered: &[RenderedFile], tree: &Path, wireguard: &[RenderedFile]) -> Vec<HostFile> {
    let mut files = Vec::new();
    for s in &desired.servers {
        let conf_path = PathBuf::from("nats").join(format!("{}.conf", s.name));
        if let Some(conf) = rendered.iter().find(|f| f.path == conf_path) {
            files.push(HostFile {
                server: s.name.clone(),
                path: conf_path,
                content: conf.content.clone(),
                secret: conf.secret,
            });
        }
        let Some(host) = t.ssh_host(&s.name) else { continue };
        for referenced in s.conf.referenced_files() {
            let Some(rel) = referenced.strip_prefix(&format!("{}/", host.config_dir)) else {
                continue;
            };
            let rel = PathBuf::from(rel);
            let content = rendered
                .iter()
                .find(|f| f.path == rel)
                .map(|f| f.content.clone())
                .or_else(|| std::fs::read_to_string(tree.join(&rel)).ok())
                .unwrap_or_else(|| NOT_YET_GENERATED.to_string());
            let secret = rel.starts_with("auth") || rel.to_string_lossy().ends_with("-key.pem");
            files.push(HostFile {
                server: s.name.clone(),
                path: rel,
                content,
                secret,
            });
        }
        let node = t.regions.iter().flat_map(|r| &r.nodes).find(|n| n.name == s.name);
        if let Some(peer) = node.and_then(|n| n.wireguard.as_ref()) {
            let rendered_path = PathBuf::from("wireguard").join(format!("{}.conf", s.name));
            if let Some(conf) = wireguard.iter().find(|f| f.path == rendered_path) {
                files.push(HostFile {
                    server: s.name.clone(),
                    path: PathBuf::from("wireguard").join(format!("{}.conf", peer.interface)),
                    content: conf.content.clone(),
                    secret: true,
                });
            }
        }
    }
    files
}

async fn prepare_ssh(opts: &SshOptions, generate: bool, log: HostLog<'_>) -> Result<SshContext> {
    let loaded = load_for_servers(&opts.topology)?;
    let t = &loaded.topology;
    let target = SshTarget::new(&opts.state_root, &t.name, opts.policy.clone());
    let state = target.load_state()?.unwrap_or_default();
    let tree = std::path::absolute(&target.dir)?;
    let mode = if generate { KeyMode::Generate } else { KeyMode::Inspect };
    let secrets = secrets(t, &tree, &Addressing::Ssh, mode, opts.rotation)?;
    let desired = desired::build(t, &Addressing::Ssh, &secrets.material(&tree));
    let rendered = desired::render_files(&desired).context("cannot render the server configs")?;
    let wireguard = match &t.wireguard {
        Some(mesh) => {
            let hosts: Vec<&str> = desired::wireguard::mesh_hosts(t).iter().map(|n| n.name.as_str()).collect();
            let keys = crate::wireguard::WgKeyStore::new(&tree).load(&hosts, mesh.preshared_keys, generate)?;
            desired::wireguard::configs(t, &keys)
        }
        None => Vec::new(),
    };
    let host_files = host_files(t, &desired, &rendered, &tree, &wireguard);
    let local_files: Vec<RenderedFile> = rendered.into_iter().filter(|f| !f.path.starts_with("nats")).collect();
    let hosts = hosts_of(t, &state);
    let sessions = target.connect(&hosts, log).await?;
    let on_local =
        crate::observed::files::read_tree(&tree, &auth::tree_dirs(t)).with_context(|| format!("cannot read `{}`", tree.display()))?;
    let on_hosts = target.files_on_hosts(&sessions, &hosts, &host_files, &state).await?;
    let observed = target.observe(&sessions, &hosts, &state, &desired).await?;
    let mut servers = Vec::new();
    for s in &desired.servers {
        let conf = host_files.iter().find(|f| f.server == s.name && f.path.starts_with("nats"));
        let digest = match (conf, observed.get(&s.name).is_some_and(|o| o.running)) {
            (Some(conf), true) if !conf.content.contains(NOT_YET_GENERATED) => {
                target.digest_on_host(&sessions[&s.name], &hosts[&s.name], &conf.content).await
            }
            _ => None,
        };
        servers.push(DesiredServer {
            name: s.name.clone(),
            conf: s.conf.clone(),
            digest,
        });
    }
    let js_running = desired
        .jetstream_nodes()
        .iter()
        .any(|s| observed.get(&s.name).is_some_and(|o| o.running));
    let live_jetstream = if js_running && secrets.missing.is_empty() && !desired.jetstream_accounts.is_empty() {
        read_live_jetstream(&desired, &secrets.keys).await?
    } else {
        LiveState::NotRunning
    };
    let shown_host_files: Vec<RenderedFile> = host_files
        .iter()
        .map(|f| RenderedFile {
            path: f.plan_path(),
            content: f.content.clone(),
            secret: f.secret,
        })
        .collect();
    let mut files = plan::file_changes(&local_files, &on_local);
    files.extend(plan::file_changes(&shown_host_files, &on_hosts));
    let plan = Plan {
        topology: t.name.clone(),
        target: "ssh".into(),
        keys: secrets.changes.clone(),
        files,
        servers: plan::server_changes(&servers, &observed),
        jetstream: plan::jetstream_changes(&desired.jetstream, &live_jetstream, opts.prune),
    };
    Ok(SshContext {
        loaded,
        target,
        sessions,
        hosts,
        state,
        keys: secrets.keys,
        desired,
        local_files,
        host_files,
        live_jetstream,
        plan,
    })
}

/// What apply would change on each host.
pub async fn plan_ssh(opts: &SshOptions, log: HostLog<'_>) -> Result<(Loaded, Plan)> {
    let SshContext {
        loaded, plan, sessions, ..
    } = prepare_ssh(opts, false, log).await?;
    close(sessions).await;
    Ok((loaded, plan))
}

/// Applies the plan on the hosts, then verifies from this machine until `timeout`.
pub async fn apply_ssh(opts: &SshOptions, timeout: Duration, events: ApplyEvents<'_>) -> Result<(Loaded, Plan, Report)> {
    let mut ctx = prepare_ssh(opts, true, events.host).await?;
    (events.plan)(&ctx.loaded, &ctx.plan);
    let result = apply_prepared(&mut ctx, opts, timeout, &events).await;
    let SshContext {
        loaded, plan, sessions, ..
    } = ctx;
    close(sessions).await;
    Ok((loaded, plan, result?))
}

async fn apply_prepared(ctx: &mut SshContext, opts: &SshOptions, timeout: Duration, events: &ApplyEvents<'_>) -> Result<Report> {
    let log = events.log;
    refuse_replacements(&ctx.plan.jetstream, opts.allow_replace)?;
    for f in ctx.local_files.iter().filter(|f| ctx.plan.files.iter().any(|c| c.path == f.path)) {
        let path = ctx.target.dir.join(&f.path);
        if f.secret {
            write_private(&path, f.content.as_bytes())?;
        } else {
            write_atomic(&path, f.content.as_bytes(), 0o644)?;
        }
    }
    let servers_changed = !(ctx.plan.keys.is_empty() && ctx.plan.files.is_empty() && ctx.plan.servers.is_empty());
    if servers_changed {
        ctx.target
            .execute(
                &ctx.sessions,
                &ctx.hosts,
                Rollout {
                    plan: &ctx.plan,
                    files: &ctx.host_files,
                    desired: &ctx.desired,
                },
                &mut ctx.state,
                events.host,
            )
            .await?;
        settle_server_changes(&ctx.desired, &ctx.keys, &ctx.plan, log).await?;
    }
    // Servers that left the topology are no longer deployed: forget their hosts.
    let gone: Vec<String> = ctx
        .state
        .hosts
        .keys()
        .filter(|s| ctx.desired.server(s).is_none())
        .cloned()
        .collect();
    for server in gone {
        ctx.state.hosts.remove(&server);
        ctx.state.uploaded.remove(&server);
        ctx.state.wireguard.remove(&server);
    }
    ctx.target.save_state(&ctx.state)?;
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
    Ok(verify::verify(&ctx.desired, &ctx.keys, "ssh", timeout, None, events.progress).await)
}

/// Verifies the servers apply brought up on the hosts, from this machine.
pub async fn verify_ssh(opts: &SshOptions, timeout: Duration, progress: &(dyn Fn(verify::Progress) + Sync)) -> Result<Report> {
    let loaded = load(&opts.topology)?;
    let t = &loaded.topology;
    let target = SshTarget::new(&opts.state_root, &t.name, opts.policy.clone());
    if target.load_state()?.is_none() {
        bail!(
            "topology `{}` is not applied on the ssh target (no state in `{}`): run `notif-infra apply --target ssh {}` first",
            t.name,
            target.dir.display(),
            opts.topology.display()
        );
    }
    let tree = std::path::absolute(&target.dir)?;
    let secrets = secrets(t, &tree, &Addressing::Ssh, KeyMode::Require, Rotation::None)?;
    let desired = desired::build(t, &Addressing::Ssh, &secrets.material(&tree));
    Ok(verify::verify(&desired, &secrets.keys, "ssh", timeout, None, progress).await)
}

/// Stops the servers on every host apply reached, removes what it installed there, then the
/// state on this machine. Returns the servers stopped and the state directory removed.
pub async fn destroy_ssh(opts: &SshOptions, log: HostLog<'_>) -> Result<(Vec<String>, PathBuf)> {
    let loaded = load(&opts.topology)?;
    let target = SshTarget::new(&opts.state_root, &loaded.topology.name, opts.policy.clone());
    let Some(state) = target.load_state()? else {
        return Ok((Vec::new(), target.dir));
    };
    let sessions = target.connect(&state.hosts, log).await?;
    let result = target.destroy(&sessions, &state, log).await;
    close(sessions).await;
    Ok((result?, target.dir))
}
