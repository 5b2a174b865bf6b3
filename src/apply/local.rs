//! The targets on this machine. `local`: real nats-server processes, every server on 127.0.0.1,
//! configs, keys, data, logs and pid files under `<state-root>/<topology>/`; the processes
//! outlive the command, and pid files and `state.json` let later commands find them.
//! `compose`: the same plan carried out on the services of a Docker Compose project, with its
//! state under `<state-root>/<topology>.compose/`.

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::desired::{Desired, ServerConf};
use crate::observed::{Monitor, files, process};
use crate::plan::{FileAction, ObservedServer, Plan, ServerAction, ServerChange};
use crate::secrets::{read_state, redact, write_atomic, write_private};

use super::compose::ComposeProject;

const STOP_GRACE: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

/// What apply recorded: the port layout and the config each server was last given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LocalState {
    pub port_base: u16,
    pub slots: BTreeMap<String, u16>,
    pub applied: BTreeMap<String, ServerConf>,
}

pub struct LocalTarget {
    pub dir: PathBuf,
    runtime: Runtime,
}

/// What the servers run as.
pub enum Runtime {
    /// nats-server processes started from this binary, found again through pid files.
    Processes { bin: PathBuf },
    /// The services of a Docker Compose project.
    Compose(ComposeProject),
}

/// Something apply did, for the progress display.
pub type Log<'a> = &'a (dyn Fn(String) + Sync);

impl LocalTarget {
    pub fn new(state_root: &Path, topology: &str, bin: PathBuf) -> Self {
        LocalTarget {
            dir: state_root.join(topology),
            runtime: Runtime::Processes { bin },
        }
    }

    /// The compose target's deployment of `topology`, running `image`.
    pub fn compose(state_root: &Path, topology: &str, image: &str) -> Result<Self> {
        let dir = state_root.join(format!("{topology}.compose"));
        let project = ComposeProject::new(&dir, topology, image)?;
        Ok(LocalTarget {
            dir,
            runtime: Runtime::Compose(project),
        })
    }

    pub fn is_compose(&self) -> bool {
        matches!(self.runtime, Runtime::Compose(_))
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn last_verification_path(&self) -> PathBuf {
        self.dir.join("last-verify.json")
    }

    /// Keeps the latest verification report (JSON) for `graph --live`.
    pub fn record_verification(&self, report_json: &str) -> Result<()> {
        write_atomic(&self.last_verification_path(), report_json.as_bytes(), 0o644)
    }

    /// The latest verification report, if this deployment was ever verified.
    pub fn last_verification(&self) -> Result<Option<String>> {
        let path = self.last_verification_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))),
        }
    }

    pub fn conf_path(&self, server: &str) -> PathBuf {
        self.dir.join("nats").join(format!("{server}.conf"))
    }

    fn pid_path(&self, server: &str) -> PathBuf {
        self.dir.join("run").join(format!("{server}.pid"))
    }

    fn log_path(&self, server: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{server}.log"))
    }

    pub fn load_state(&self) -> Result<Option<LocalState>> {
        read_state(&self.state_path())
    }

    fn save_state(&self, state: &LocalState) -> Result<()> {
        let text = serde_json::to_string_pretty(state)?;
        write_atomic(&self.state_path(), text.as_bytes(), 0o644)
    }

    /// The files apply manages, relative to the state directory: server configs, the compose
    /// project, and the credential directories `extra` names.
    pub fn files_on_disk(&self, extra: &[String]) -> Result<BTreeMap<PathBuf, String>> {
        let mut dirs = vec!["nats".to_string(), "compose".to_string()];
        dirs.extend_from_slice(extra);
        files::read_tree(&self.dir, &dirs).with_context(|| format!("cannot read `{}`", self.dir.display()))
    }

    /// Servers that apply started (or that have a pid file), whether each still runs, and the
    /// digest it runs with.
    pub async fn observe(&self, state: &LocalState, desired: &Desired) -> BTreeMap<String, ObservedServer> {
        let monitor = Monitor::for_desired(desired);
        let mut names: Vec<String> = state.applied.keys().cloned().collect();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("run")) {
            names.extend(
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".pid").map(String::from)),
            );
        }
        names.sort();
        names.dedup();
        let running_services = match &self.runtime {
            Runtime::Compose(project) => project.running(),
            Runtime::Processes { .. } => Vec::new(),
        };
        let running_services = &running_services;
        let reads = names.into_iter().map(|name| {
            let monitor = monitor.clone();
            async move {
                let running = match &self.runtime {
                    Runtime::Compose(_) => running_services.contains(&name),
                    Runtime::Processes { .. } => self.running_pid(&name).is_some(),
                };
                let applied = state.applied.get(&name).cloned();
                // A process listens where its last config said; a container's monitoring port
                // is reached through the port the project publishes.
                let url = match (&self.runtime, &applied) {
                    (Runtime::Compose(_), _) => desired.server(&name).map(|s| s.monitor_url.clone()),
                    (Runtime::Processes { .. }, Some(conf)) => {
                        Some(format!("{}://{}", if conf.monitor_https { "https" } else { "http" }, conf.http))
                    }
                    (Runtime::Processes { .. }, None) => None,
                };
                let digest = match (url, running) {
                    (Some(url), true) => monitor.config_digest(&url).await.ok().and_then(|(d, _)| d),
                    _ => None,
                };
                (name, ObservedServer { running, digest, applied })
            }
        });
        futures_util::future::join_all(reads).await.into_iter().collect()
    }

    /// Fails, naming server and port, when a port a server is about to listen on is taken.
    pub fn check_ports_free(&self, plan: &Plan, desired: &Desired) -> Result<()> {
        let mut taken = Vec::new();
        for change in plan.servers.iter().filter(|c| c.action == ServerAction::Start) {
            let Some(s) = desired.server(&change.server) else { continue };
            let addresses = match self.runtime {
                // Inside its container a server has its own ports; on this machine only the
                // published ones count.
                Runtime::Compose(_) => vec![
                    format!("127.0.0.1:{}", s.reach_ports.client),
                    format!("127.0.0.1:{}", s.reach_ports.monitor),
                ],
                Runtime::Processes { .. } => listen_addresses(&s.conf),
            };
            for addr in addresses {
                if std::net::TcpListener::bind(&addr).is_err() {
                    taken.push(format!("{addr} (server {})", s.name));
                }
            }
        }
        if !taken.is_empty() {
            bail!(
                "ports already in use: {}\nhelp: another program or deployment holds them; pick another range with --port-base",
                taken.join(", ")
            );
        }
        Ok(())
    }

    /// Carries out the plan: files, then stops, starts (all at once), reloads (each confirmed by
    /// its digest) and restarts (one server at a time).
    pub async fn execute(&self, plan: &Plan, desired: &Desired, state: &mut LocalState, log: Log<'_>) -> Result<()> {
        // One client for every wait below (it reads the deployment's CA once).
        let monitor = Monitor::for_desired(desired);
        for f in &plan.files {
            let path = self.dir.join(&f.path);
            match (&f.action, &f.content) {
                (FileAction::Delete, _) => std::fs::remove_file(&path)
                    .or_else(ignore_missing)
                    .with_context(|| format!("cannot remove `{}`", path.display()))?,
                (_, Some(content)) if f.secret => write_private(&path, content.as_bytes())?,
                (_, Some(content)) => write_atomic(&path, content.as_bytes(), 0o644)?,
                (_, None) => {}
            }
        }
        state
            .applied
            .retain(|name, _| desired.server(name).is_some() || plan.servers.iter().any(|c| &c.server == name));
        self.save_state(state)?;

        for c in plan.servers.iter().filter(|c| c.action == ServerAction::Stop) {
            self.stop(&c.server).await?;
            state.applied.remove(&c.server);
            let _ = std::fs::remove_file(self.pid_path(&c.server));
            log(format!("stopped {}", c.server));
        }
        self.save_state(state)?;

        let starts: Vec<_> = plan.servers.iter().filter(|c| c.action == ServerAction::Start).collect();
        self.start(&starts.iter().map(|c| c.server.as_str()).collect::<Vec<_>>())?;
        for c in &starts {
            if let Some(s) = desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
        }
        self.save_state(state)?;
        let ready = starts
            .iter()
            .map(|c| self.wait_ready(&monitor, desired, &c.server, c.expected_digest.as_deref()));
        for (c, result) in starts.iter().zip(futures_util::future::join_all(ready).await) {
            result?;
            log(format!("started {}", c.server));
        }

        // A container sees a certificate through a file mount, which a replaced file does not
        // update: there a rotation restarts the server instead of reloading it.
        let stale_mount = |name: &str| {
            self.is_compose() && state.applied.get(name).map(|a| &a.certificate) != desired.server(name).map(|s| &s.conf.certificate)
        };
        let (restarts, reloads): (Vec<&ServerChange>, Vec<&ServerChange>) = plan
            .servers
            .iter()
            .filter(|c| matches!(c.action, ServerAction::Reload | ServerAction::Restart))
            .partition(|c| c.action == ServerAction::Restart || stale_mount(&c.server));
        for c in reloads {
            self.reload(&monitor, desired, &c.server, c.expected_digest.as_deref()).await?;
            if let Some(s) = desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            self.save_state(state)?;
            log(format!("reloaded {} ({})", c.server, c.reason));
        }

        for c in restarts {
            self.stop(&c.server).await?;
            self.start(&[&c.server])?;
            if let Some(s) = desired.server(&c.server) {
                state.applied.insert(c.server.clone(), s.conf.clone());
            }
            self.save_state(state)?;
            self.wait_ready(&monitor, desired, &c.server, c.expected_digest.as_deref()).await?;
            // One server at a time, and the next only once this one's streams have caught up:
            // R3 streams keep their quorum through the whole roll.
            self.wait_healthy(&monitor, desired, &c.server).await?;
            log(format!("restarted {} ({})", c.server, c.reason));
        }
        Ok(())
    }

    pub fn record_layout(&self, state: &LocalState) -> Result<()> {
        self.save_state(state)
    }

    /// Starts the servers: processes one by one, containers in one `up`.
    fn start(&self, servers: &[&str]) -> Result<()> {
        match &self.runtime {
            Runtime::Compose(project) if !servers.is_empty() => project.up(servers),
            Runtime::Compose(_) => Ok(()),
            Runtime::Processes { bin } => servers.iter().try_for_each(|s| self.start_process(bin, s)),
        }
    }

    fn start_process(&self, bin: &Path, server: &str) -> Result<()> {
        let log_path = self.log_path(server);
        std::fs::create_dir_all(log_path.parent().expect("log dir")).context("cannot create the log directory")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open `{}`", log_path.display()))?;
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(self.conf_path(server))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for this command must not stop the servers.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start `{}` for server {server}", bin.display()))?;
        write_atomic(&self.pid_path(server), format!("{}\n", child.id()).as_bytes(), 0o644)
    }

    /// Waits until the server answers on its monitoring port with the expected digest; fails
    /// early, with its log, if the process exits.
    async fn wait_ready(&self, monitor: &Monitor, desired: &Desired, server: &str, digest: Option<&str>) -> Result<()> {
        let Some(spec) = desired.server(server) else { return Ok(()) };
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            if let Ok((seen, _)) = monitor.config_digest(&spec.monitor_url).await
                && (digest.is_none() || seen.as_deref() == digest)
            {
                return Ok(());
            }
            // Asking Docker is slower than a pid check: look at a container every 20th try.
            let check_now = !self.is_compose() || attempts.is_multiple_of(20);
            attempts += 1;
            if check_now && !self.is_running(server) {
                bail!("server {server} exited right after start:\n{}", self.log_tail(server));
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "server {server} did not answer on {} within {} s:\n{}",
                    spec.monitor_url,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail(server)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for `/healthz` to pass: with JetStream, that every stream and consumer on the
    /// server is current.
    async fn wait_healthy(&self, monitor: &Monitor, desired: &Desired, server: &str) -> Result<()> {
        let Some(spec) = desired.server(server) else { return Ok(()) };
        monitor.wait_healthy(&spec.monitor_url, HEALTHY_TIMEOUT).await.map_err(|last| {
            anyhow::anyhow!(
                "server {server} is not healthy {} s after its restart ({last}); the roll stops here",
                HEALTHY_TIMEOUT.as_secs()
            )
        })
    }

    /// Sends the reload signal and confirms it through `/varz`: the signal succeeds even when
    /// the reload fails, and a failed reload applies nothing.
    async fn reload(&self, monitor: &Monitor, desired: &Desired, server: &str, digest: Option<&str>) -> Result<()> {
        let spec = desired.server(server).context("reload of a server not in the topology")?;
        // A rotated certificate leaves the digest as it was: the load time shows the reload.
        let loaded_before = monitor.config_digest(&spec.monitor_url).await.ok().and_then(|(_, t)| t);
        match &self.runtime {
            Runtime::Compose(project) => project.signal(server, "SIGHUP")?,
            Runtime::Processes { .. } => {
                let pid = self
                    .running_pid(server)
                    .with_context(|| format!("server {server} is not running"))?;
                kill(Pid::from_raw(pid as i32), Signal::SIGHUP).with_context(|| format!("cannot signal server {server}"))?;
            }
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok((seen, loaded)) = monitor.config_digest(&spec.monitor_url).await
                && seen.is_some()
                && seen.as_deref() == digest
                && loaded != loaded_before
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "server {server} did not take the new config on reload (its /varz config_digest did not change to {}):\n{}",
            digest.unwrap_or("?"),
            self.log_tail(server)
        )
    }

    fn running_pid(&self, server: &str) -> Option<u32> {
        process::read_pid(&self.pid_path(server)).filter(|pid| process::running_server(*pid, &self.conf_path(server)))
    }

    fn is_running(&self, server: &str) -> bool {
        match &self.runtime {
            Runtime::Compose(project) => project.running().iter().any(|s| s == server),
            Runtime::Processes { .. } => self.running_pid(server).is_some(),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period.
    async fn stop(&self, server: &str) -> Result<()> {
        if let Runtime::Compose(project) = &self.runtime {
            return project.remove(server);
        }
        let Some(raw) = self.running_pid(server) else { return Ok(()) };
        let pid = Pid::from_raw(raw as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let started = Instant::now();
        // Wait for the process itself to be gone: its command line empties before it exits.
        while !process::exited(raw) {
            if started.elapsed() > STOP_GRACE {
                let _ = kill(pid, Signal::SIGKILL);
            }
            if started.elapsed() > STOP_GRACE * 2 {
                bail!("server {server} (pid {pid}) does not stop");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops every server of this deployment and removes its directory. Returns the servers stopped.
    pub async fn destroy(&self) -> Result<Vec<String>> {
        let mut stopped = Vec::new();
        if let Runtime::Compose(project) = &self.runtime {
            stopped = project.running();
            project.down()?;
        }
        if let Ok(entries) = std::fs::read_dir(self.dir.join("run")) {
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().and_then(|n| n.strip_suffix(".pid")).map(String::from) else {
                    continue;
                };
                if self.is_running(&name) {
                    self.stop(&name).await?;
                    stopped.push(name);
                }
            }
        }
        stopped.sort();
        std::fs::remove_dir_all(&self.dir)
            .or_else(ignore_missing)
            .with_context(|| format!("cannot remove `{}`", self.dir.display()))?;
        if let Some(root) = self.dir.parent() {
            // Only removes the state root when no other deployment lives there.
            let _ = std::fs::remove_dir(root);
        }
        Ok(stopped)
    }

    pub fn log_tail(&self, server: &str) -> String {
        if let Runtime::Compose(project) = &self.runtime {
            return format!("--- last lines of service {server} ---\n{}", redact(&project.logs(server, 12)));
        }
        let text = std::fs::read_to_string(self.log_path(server)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        format!("--- last lines of {} ---\n{}", self.log_path(server).display(), redact(&tail))
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

fn listen_addresses(conf: &ServerConf) -> Vec<String> {
    let mut addrs = vec![conf.listen.clone(), conf.http.clone()];
    addrs.extend(conf.cluster.as_ref().map(|c| c.listen.clone()));
    addrs.extend(conf.gateway.as_ref().map(|g| g.listen.clone()));
    addrs.extend(conf.leafnode_listener.as_ref().map(|l| l.listen.clone()));
    addrs
}
