//! The `compose` target's process control: the servers are the services of one Docker Compose
//! project (Compose v2) on this machine's Docker engine, run from the state directory's
//! `compose/docker-compose.yml`.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::desired::COMPOSE_FILE;
use crate::nats_server::locate_tool;

const INSTALL_HELP: &str =
    "Docker Compose v2 is needed: `bash scripts/install-tools.sh` puts it into .tools/bin, or set DOCKER_COMPOSE to its path";

/// One project: its name (unique per state directory, so parallel deployments of one topology
/// do not meet), its file, and the image its services run.
#[derive(Debug, Clone)]
pub struct ComposeProject {
    pub name: String,
    dir: PathBuf,
    image: String,
    compose: PathBuf,
}

impl ComposeProject {
    /// The project of the deployment in `dir`. Fails when no Compose v2 binary is found.
    pub fn new(dir: &Path, topology: &str, image: &str) -> Result<Self> {
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
            image: image.to_string(),
            compose,
        })
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        let out = std::process::Command::new(&self.compose)
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(self.dir.join(COMPOSE_FILE))
            .args(args)
            .env("NATS_IMAGE", &self.image)
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

    pub fn restart(&self, service: &str) -> Result<()> {
        self.run_ok(&["restart", service]).map(|_| ())
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
