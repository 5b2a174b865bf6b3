//! The `local` target: real nats-server processes on this machine, every server on 127.0.0.1,
//! configs, keys, data, logs and pid files under `<state-root>/<topology>/`. The processes
//! outlive the command; each is found again by the config path on its command line, so a
//! server started by an interrupted apply is never lost.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{DeploymentState, HostLog, StopMode, Target, TargetKind};
use crate::desired::{self, Addressing, DEFAULT_LOCAL_PORT_BASE, Desired, RenderedFile, ServerConf, ServerSpec};
use crate::fsio::remove_file;
use crate::material::{auth, redact};
use crate::model::Topology;
use crate::observed::{Monitor, files, process};
use crate::plan::{FileAction, FileChange, ObservedServer};

pub struct LocalTarget {
    dir: PathBuf,
    bin: PathBuf,
}

impl LocalTarget {
    /// The deployment of `topology` under `state_root`, its servers run from `bin`.
    pub fn new(state_root: &Path, topology: &str, bin: PathBuf) -> Result<Self> {
        let dir =
            std::path::absolute(TargetKind::Local.deployment_dir(state_root, topology)).context("cannot resolve the state directory")?;
        Ok(LocalTarget { dir, bin })
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.join("nats")
    }

    fn conf_path(&self, server: &str) -> PathBuf {
        self.conf_dir().join(format!("{server}.conf"))
    }

    fn pid_path(&self, server: &str) -> PathBuf {
        self.dir.join("run").join(format!("{server}.pid"))
    }

    fn log_path(&self, server: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{server}.log"))
    }

    /// Every server process of this deployment, by name: the pid file's when it still names
    /// the server, otherwise whatever process runs the server's config.
    fn processes(&self) -> BTreeMap<String, u32> {
        let mut found = process::servers_with_configs_in(&self.conf_dir());
        for (name, pid) in found.iter_mut() {
            if let Some(recorded) = process::read_pid(&self.pid_path(name)).filter(|p| process::running_server(*p, &self.conf_path(name))) {
                *pid = recorded;
            }
        }
        found
    }

    fn pid_of(&self, server: &str) -> Option<u32> {
        process::read_pid(&self.pid_path(server))
            .filter(|pid| process::running_server(*pid, &self.conf_path(server)))
            .or_else(|| self.processes().remove(server))
    }

    fn start_process(&self, server: &str) -> Result<()> {
        let log_path = self.log_path(server);
        let log_dir = log_path.parent().expect("log dir");
        std::fs::create_dir_all(log_dir).with_context(|| format!("cannot create `{}`", log_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open `{}`", log_path.display()))?;
        let log_err = log.try_clone().with_context(|| format!("cannot open `{}`", log_path.display()))?;
        let child = std::process::Command::new(&self.bin)
            .arg("-c")
            .arg(self.conf_path(server))
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C meant for this command must not stop the servers.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start `{}` for server {server}", self.bin.display()))?;
        // The pid file is a hint (a server is also found by its config): it need not outlive
        // a restart of the machine, which ends the process too.
        crate::fsio::write_visible(&self.pid_path(server), format!("{}\n", child.id()).as_bytes(), 0o644)
    }
}

/// The local and compose targets' port layout: every server keeps its slot, and so its
/// ports, while others come and go.
pub(super) struct SlotLayout {
    pub port_base: u16,
    pub port_stride: u16,
    pub slots: BTreeMap<String, u16>,
}

pub(super) fn slot_layout(t: &Topology, state: &mut DeploymentState, port_base: Option<u16>) -> Result<SlotLayout> {
    let base = port_base
        .or((state.port_base != 0).then_some(state.port_base))
        .unwrap_or(DEFAULT_LOCAL_PORT_BASE);
    if state.port_stride == 0 || state.slots.is_empty() {
        state.port_stride = desired::LOCAL_PORT_STRIDE;
    }
    let slots = desired::assign_slots(t, base, state.port_stride, &state.slots).map_err(anyhow::Error::msg)?;
    state.port_base = base;
    state.slots = slots.clone();
    Ok(SlotLayout {
        port_base: base,
        port_stride: state.port_stride,
        slots,
    })
}

/// The files a deployment on this machine holds under `dir`: server configs, the compose
/// project and the credential directories.
pub(super) fn files_under(dir: &Path, t: &Topology) -> Result<BTreeMap<PathBuf, String>> {
    let mut dirs = vec!["nats".to_string(), "compose".to_string()];
    dirs.extend(auth::tree_dirs(t));
    files::read_tree(dir, &dirs).with_context(|| format!("cannot read `{}`", dir.display()))
}

/// Writes the changed files under `dir` (secrets 0600) and removes the deleted ones.
pub fn write_under(dir: &Path, changes: &[&FileChange]) -> Result<()> {
    for f in changes.iter().filter(|f| f.action == FileAction::Delete) {
        remove_file(&dir.join(&f.path))?;
    }
    crate::fsio::write_batch_atomic(
        dir,
        changes.iter().filter_map(|f| {
            let content = f.content.as_deref().filter(|_| f.action != FileAction::Delete)?;
            Some((f.path.as_path(), content.as_bytes(), if f.secret { 0o600 } else { 0o644 }))
        }),
    )
}

/// Fails naming every address in `addresses` (with its server) that cannot be bound now.
pub(super) fn check_bindable(addresses: impl IntoIterator<Item = (String, String)>) -> Result<()> {
    let taken: Vec<String> = addresses
        .into_iter()
        .filter(|(addr, _)| std::net::TcpListener::bind(addr).is_err())
        .map(|(addr, server)| format!("{addr} (server {server})"))
        .collect();
    if !taken.is_empty() {
        bail!(
            "ports already in use: {}\nhelp: another program or deployment holds them; pick another range with --port-base",
            taken.join(", ")
        );
    }
    Ok(())
}

fn listen_addresses(conf: &ServerConf) -> Vec<String> {
    let mut addrs = vec![conf.listen.clone(), conf.http.clone()];
    addrs.extend(conf.cluster.as_ref().map(|c| c.listen.clone()));
    addrs.extend(conf.gateway.as_ref().map(|g| g.listen.clone()));
    addrs.extend(conf.leafnode_listener.as_ref().map(|l| l.listen.clone()));
    addrs
}

/// The servers of a deployment on this machine: every one the state names or that runs, with
/// the digest read through `monitor_url(name)` for those that run.
pub(super) async fn observe_here(
    state: &DeploymentState,
    desired: &Desired,
    running: &BTreeSet<String>,
    monitor_url: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, ObservedServer> {
    let monitor = Monitor::for_desired(desired);
    let reads = running.iter().map(|name| {
        let monitor = monitor.clone();
        let url = monitor_url(name);
        async move {
            let digest = match url {
                Some(url) => monitor.config_digest(&url).await.ok().and_then(|(d, _)| d),
                None => None,
            };
            (name.clone(), digest)
        }
    });
    let digests: BTreeMap<String, Option<String>> = futures_util::future::join_all(reads).await.into_iter().collect();
    let mut names = state.servers();
    names.extend(running.iter().cloned());
    names
        .into_iter()
        .map(|name| {
            let observed = ObservedServer {
                running: running.contains(&name),
                digest: digests.get(&name).cloned().flatten(),
                applied: state.applied.get(&name).cloned(),
                must_restart: None,
            };
            (name, observed)
        })
        .collect()
}

#[async_trait]
impl Target for LocalTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Local
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn addressing(&self, t: &Topology, state: &mut DeploymentState, port_base: Option<u16>) -> Result<Addressing> {
        let layout = slot_layout(t, state, port_base)?;
        Ok(Addressing::Local {
            port_base: layout.port_base,
            port_stride: layout.port_stride,
            slots: layout.slots,
            state_dir: self.dir.clone(),
        })
    }

    fn layout(&self, _t: &Topology, _desired: &Desired, rendered: Vec<RenderedFile>) -> Result<Vec<RenderedFile>> {
        Ok(rendered.into_iter().filter(|f| !f.path.starts_with("wireguard")).collect())
    }

    async fn read_files(&self, t: &Topology, _files: &[RenderedFile], _state: &DeploymentState) -> Result<BTreeMap<PathBuf, String>> {
        files_under(&self.dir, t)
    }

    async fn observe(&self, state: &DeploymentState, desired: &Desired) -> Result<BTreeMap<String, ObservedServer>> {
        let running: BTreeSet<String> = self.processes().into_keys().collect();
        // A process listens where its last config said.
        let url = |name: &str| {
            state
                .applied
                .get(name)
                .map(|c| format!("{}://{}", if c.monitor_https { "https" } else { "http" }, c.http))
                .or_else(|| desired.server(name).map(|s| s.monitor_url.clone()))
        };
        Ok(observe_here(state, desired, &running, url).await)
    }

    async fn config_digest(&self, server: &str, conf: &str) -> Result<Option<String>> {
        crate::nats_server::check_config_text(&self.bin, server, conf).await.map(Some)
    }

    fn check_ports_free(&self, starting: &[&ServerSpec]) -> Result<()> {
        check_bindable(
            starting
                .iter()
                .flat_map(|s| listen_addresses(&s.conf).into_iter().map(|a| (a, s.name.clone()))),
        )
    }

    async fn write_files(
        &self,
        changes: &[&FileChange],
        _files: &[RenderedFile],
        _state: &mut DeploymentState,
        _log: HostLog<'_>,
    ) -> Result<()> {
        write_under(&self.dir, changes)
    }

    async fn start(&self, servers: &[&str], _state: &DeploymentState) -> Result<()> {
        let running = self.processes();
        for server in servers {
            // An interrupted apply may have started it already.
            if !running.contains_key(*server) {
                self.start_process(server)?;
            }
        }
        Ok(())
    }

    async fn stop(&self, server: &str, grace: Duration, mode: StopMode) -> Result<()> {
        let Some(raw) = self.pid_of(server) else {
            return remove_file(&self.pid_path(server));
        };
        let pid = Pid::from_raw(raw as i32);
        let signal = match mode {
            StopMode::Terminate => Signal::SIGTERM,
            StopMode::LameDuck => Signal::SIGUSR2,
        };
        let _ = kill(pid, signal);
        let started = Instant::now();
        // Wait for the process itself to be gone: its command line empties before it exits.
        while !process::exited(raw) {
            if started.elapsed() > grace {
                let _ = kill(pid, Signal::SIGKILL);
            }
            if started.elapsed() > grace * 2 {
                bail!("server {server} (pid {pid}) does not stop");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        remove_file(&self.pid_path(server))
    }

    async fn reload(&self, server: &str) -> Result<()> {
        let pid = self.pid_of(server).with_context(|| format!("server {server} is not running"))?;
        kill(Pid::from_raw(pid as i32), Signal::SIGHUP).with_context(|| format!("cannot signal server {server} (pid {pid})"))
    }

    async fn running(&self, server: &str) -> Result<bool> {
        Ok(self.pid_of(server).is_some())
    }

    async fn log_tail(&self, server: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(server)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        format!("--- last lines of {} ---\n{}", self.log_path(server).display(), redact(&tail))
    }

    async fn destroy(&self, _state: &DeploymentState, _log: HostLog<'_>) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        for name in self.processes().into_keys() {
            self.stop(&name, Duration::from_secs(10), StopMode::Terminate).await?;
            stopped.push(name);
        }
        Ok(stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(nodes: usize) -> Topology {
        crate::topology::parse(crate::topology::Source {
            path: "t.yaml".into(),
            text: format!("name: t\nregions:\n  main:\n    nodes: {nodes}\n"),
        })
        .unwrap()
        .topology
    }

    #[test]
    fn a_new_deployment_takes_five_ports_a_slot_and_an_older_one_keeps_its_ten() {
        let mut fresh = DeploymentState::default();
        let layout = slot_layout(&topology(2), &mut fresh, Some(30000)).unwrap();
        assert_eq!((layout.port_stride, layout.slots["main-2"]), (5, 1));
        // A state written before the stride was recorded: its servers listen 10 ports apart.
        let mut older: DeploymentState = serde_json::from_str(r#"{"port_base": 30000, "slots": {"main-1": 0, "main-2": 1}}"#).unwrap();
        let layout = slot_layout(&topology(3), &mut older, None).unwrap();
        assert_eq!((layout.port_stride, layout.slots["main-3"]), (10, 2));
        assert_eq!(older.port_stride, 10);
    }
}
