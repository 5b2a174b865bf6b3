//! The `compose` target: the servers are the services of one Docker Compose project (Compose
//! v2) on this machine's Docker engine, run from the state directory's
//! `compose/docker-compose.yml`, with their client and monitoring ports published on 127.0.0.1.
//! Its state is under `<state-root>/<topology>.compose/`.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use super::local::{check_bindable, files_under, observe_here, slot_layout, write_under};
use super::{DeploymentState, HostLog, StopMode, Target, TargetKind};
use crate::desired::{self, Addressing, COMPOSE_FILE, Desired, RenderedFile, ServerSpec};
use crate::material::redact;
use crate::model::Topology;
use crate::nats_server::locate_tool;
use crate::plan::{FileChange, ObservedServer};

const INSTALL_HELP: &str =
    "Docker Compose v2 is needed: `bash scripts/install-test-tools.sh` puts it into .tools/bin, or set DOCKER_COMPOSE to its path";

/// One project: its name (unique per state directory, so parallel deployments of one topology
/// do not meet), its file, and the image its services run when not the file's own.
#[derive(Debug, Clone)]
pub struct ComposeProject {
    pub name: String,
    dir: PathBuf,
    image: Option<String>,
    compose: PathBuf,
}

impl ComposeProject {
    /// The project of the deployment in `dir`. Fails when no Compose v2 binary is found.
    pub fn new(dir: &Path, topology: &str, image: Option<&str>) -> Result<Self> {
        let compose = locate_tool("docker-compose", None, "DOCKER_COMPOSE", "DOCKER_COMPOSE")?.context(INSTALL_HELP)?;
        let version = std::process::Command::new(&compose)
            .args(["version", "--short"])
            .output()
            .with_context(|| format!("cannot run `{}`", compose.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        if !version.trim_start_matches('v').starts_with('2') {
            bail!("`{}` is Compose {version}, not v2. {INSTALL_HELP}", compose.display());
        }
        let absolute = std::path::absolute(dir)?;
        let tag: String = Sha256::digest(absolute.to_string_lossy().as_bytes())
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect();
        let name: String = format!("{topology}-{tag}")
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Ok(ComposeProject {
            name,
            dir: absolute,
            image: image.map(String::from),
            compose,
        })
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        let mut command = std::process::Command::new(&self.compose);
        command
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(self.dir.join(COMPOSE_FILE))
            .args(args);
        // Without an override, the file's default (the topology's image) applies.
        match &self.image {
            Some(image) => command.env("NATS_IMAGE", image),
            None => command.env_remove("NATS_IMAGE"),
        };
        let out = command
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("cannot run `{}`", self.compose.display()))?;
        Ok(out)
    }

    fn run_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "`docker compose {}` failed for project {}:\n{}",
                args.join(" "),
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates and starts the services (the image must be on the engine: nothing is pulled).
    pub fn up(&self, services: &[&str]) -> Result<()> {
        let mut args = vec!["up", "-d", "--no-deps", "--pull", "never"];
        args.extend_from_slice(services);
        self.run_ok(&args).map(|_| ())
    }

    /// Stops and removes a service's container (its JetStream volume stays).
    pub fn remove(&self, service: &str) -> Result<()> {
        self.run_ok(&["rm", "--stop", "--force", service]).map(|_| ())
    }

    pub fn signal(&self, service: &str, signal: &str) -> Result<()> {
        self.run_ok(&["kill", "-s", signal, service]).map(|_| ())
    }

    /// The services whose container runs.
    pub fn running(&self) -> Vec<String> {
        match self.run(&["ps", "--status", "running", "--services"]) {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    pub fn logs(&self, service: &str, lines: usize) -> String {
        match self.run(&["logs", "--no-color", "--tail", &lines.to_string(), service]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            Err(e) => e.to_string(),
        }
    }

    /// Stops and removes every container, the network and the JetStream volumes.
    pub fn down(&self) -> Result<()> {
        if !self.dir.join(COMPOSE_FILE).is_file() {
            return Ok(());
        }
        self.run_ok(&["down", "--volumes", "--remove-orphans"]).map(|_| ())
    }
}

/// The compose target: one project per deployment directory.
pub struct ComposeTarget {
    dir: PathBuf,
    project: ComposeProject,
    /// The nats-server that computes expected config digests on this machine.
    bin: PathBuf,
}

impl ComposeTarget {
    pub fn new(state_root: &Path, topology: &str, image: Option<&str>, bin: PathBuf) -> Result<Self> {
        let dir =
            std::path::absolute(TargetKind::Compose.deployment_dir(state_root, topology)).context("cannot resolve the state directory")?;
        let project = ComposeProject::new(&dir, topology, image)?;
        Ok(ComposeTarget { dir, project, bin })
    }
}

#[async_trait]
impl Target for ComposeTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Compose
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn addressing(&self, t: &Topology, state: &mut DeploymentState, port_base: Option<u16>) -> Result<Addressing> {
        let layout = slot_layout(t, state, port_base)?;
        Ok(Addressing::Compose {
            port_base: layout.port_base,
            port_stride: layout.port_stride,
            slots: layout.slots,
            state_dir: self.dir.clone(),
        })
    }

    fn layout(&self, t: &Topology, desired: &Desired, rendered: Vec<RenderedFile>) -> Result<Vec<RenderedFile>> {
        let project = desired::compose_file(desired, &t.env_var_names(), desired::Publish::Loopback, &self.dir.display().to_string())
            .with_context(|| {
                format!(
                    "topology `{}` dials its servers by IP address (one host each): the compose target runs them all on this machine; give the nodes host names",
                    t.name
                )
            })?;
        let mut files: Vec<RenderedFile> = rendered.into_iter().filter(|f| !f.path.starts_with("wireguard")).collect();
        files.push(project);
        Ok(files)
    }

    async fn read_files(&self, t: &Topology, _files: &[RenderedFile], _state: &DeploymentState) -> Result<BTreeMap<PathBuf, String>> {
        files_under(&self.dir, t)
    }

    async fn observe(&self, state: &DeploymentState, desired: &Desired) -> Result<BTreeMap<String, ObservedServer>> {
        let running: BTreeSet<String> = self.project.running().into_iter().collect();
        // A container's monitoring port is reached through the port the project publishes.
        let url = |name: &str| desired.server(name).map(|s| s.monitor_url.clone());
        Ok(observe_here(state, desired, &running, url).await)
    }

    async fn config_digest(&self, server: &str, conf: &str) -> Result<Option<String>> {
        crate::nats_server::check_config_text(&self.bin, server, conf).await.map(Some)
    }

    fn check_ports_free(&self, starting: &[&ServerSpec]) -> Result<()> {
        // Inside its container a server has its own ports; on this machine only the published
        // ones count.
        check_bindable(
            starting
                .iter()
                .flat_map(|s| [s.reach_ports.client, s.reach_ports.monitor].map(|p| (format!("127.0.0.1:{p}"), s.name.clone()))),
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
        if servers.is_empty() { Ok(()) } else { self.project.up(servers) }
    }

    async fn stop(&self, server: &str, _grace: Duration, _mode: StopMode) -> Result<()> {
        // Compose stops a service with its own stop_signal (SIGUSR2, lame duck, when the
        // topology sets a lame-duck period) and stop_grace_period: a SIGUSR2 sent here would
        // end the container and its restart policy would start it again.
        self.project.remove(server)
    }

    async fn reload(&self, server: &str) -> Result<()> {
        self.project.signal(server, "SIGHUP")
    }

    async fn running(&self, server: &str) -> Result<bool> {
        Ok(self.project.running().iter().any(|s| s == server))
    }

    async fn log_tail(&self, server: &str) -> String {
        format!("--- last lines of service {server} ---\n{}", redact(&self.project.logs(server, 12)))
    }

    fn reload_reads_replaced_files(&self) -> bool {
        false
    }

    async fn destroy(&self, _state: &DeploymentState, _log: HostLog<'_>) -> Result<Vec<String>> {
        let mut stopped = self.project.running();
        stopped.sort();
        self.project.down()?;
        Ok(stopped)
    }
}
