//! Command-line interface: one file per subcommand, each parsing its arguments and calling the
//! library.

mod add;
mod apply;
mod backup;
mod completions;
mod destroy;
mod graph;
mod hosts;
mod init;
mod man;
mod monitor;
mod output;
mod plan;
mod remove;
mod render;
mod restore;
mod rotate;
mod schema;
mod validate;
mod verify;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use notif_infra::ui::Format;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops::Options;
use notif_infra::targets::TargetKind;
use notif_infra::targets::ssh::session::HostKeyPolicy;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "notif-infra",
    version,
    about = "Stand up NATS infrastructure from one topology file: render, plan, apply, verify, destroy."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether the command was asked for JSON (`-o json`): its errors are then JSON too.
    pub fn json_output(&self) -> bool {
        let json = |f: &Format| *f == Format::Json;
        match &self.command {
            Command::Validate(a) => json(&a.output),
            Command::Render(a) => json(&a.output),
            Command::Plan(a) => json(&a.output),
            Command::Apply(a) => json(&a.output),
            Command::Destroy(a) => json(&a.output),
            Command::Backup(a) => json(&a.output),
            Command::Restore(a) => json(&a.output),
            Command::Verify(a) => a.output == verify::VerifyFormat::Json,
            Command::Output(a) => a.output == output::OutputFormat::Json,
            _ => false,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write a starter topology (one of the shipped examples)
    Init(init::InitArgs),
    /// Parse and check a topology; writes nothing
    Validate(validate::ValidateArgs),
    /// Write every artefact for the hosts the topology declares
    Render(render::RenderArgs),
    /// Show what apply would change (exit 0: nothing, 2: changes, 1: error)
    Plan(plan::PlanArgs),
    /// Render, start or update the servers, and verify them
    Apply(apply::ApplyArgs),
    /// Check the live servers: links, JetStream meta group, message probes
    Verify(verify::VerifyArgs),
    /// Stop the servers and remove their state
    Destroy(destroy::DestroyArgs),
    /// Add a node or a region to a topology file, keeping its comments and order
    Add(add::AddArgs),
    /// Remove a node or a region from a topology file, keeping its comments and order
    Remove(remove::RemoveArgs),
    /// Print the topology as a picture (Mermaid, DOT or SVG), optionally with live link states
    Graph(graph::GraphArgs),
    /// Issue new TLS certificates; the next apply reloads the servers with them
    Rotate(rotate::RotateArgs),
    /// Serve the live deployment as Prometheus metrics: links, probes, health, streams, consumers
    Monitor(monitor::MonitorArgs),
    /// Snapshot streams, KV buckets and object stores (messages and consumers) into a directory
    Backup(backup::BackupArgs),
    /// Restore streams from a backup into a running deployment
    Restore(restore::RestoreArgs),
    /// Fill provisioned hosts' addresses into the topology (from terraform output)
    Hosts(hosts::HostsArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff, for `man -l -`), or write every page into a directory
    Man(man::ManArgs),
    /// Print the JSON Schema of the topology file (for editors and validators)
    Schema(schema::SchemaArgs),
    /// Print how clients reach the applied deployment: URLs, CA, credentials and natscli contexts
    Output(output::OutputArgs),
}

/// Where servers run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Target {
    /// nats-server processes on this machine, on 127.0.0.1
    Local,
    /// a Docker Compose project on this machine's Docker engine, ports published on 127.0.0.1
    Compose,
    /// a Kubernetes cluster through kubectl (server-side apply; pods rolled by their StatefulSet)
    K8s,
    /// the hosts the topology names, over SSH (files by SFTP, nats-server with a pid file)
    Ssh,
}

impl From<Target> for TargetKind {
    fn from(t: Target) -> Self {
        match t {
            Target::Local => TargetKind::Local,
            Target::Compose => TargetKind::Compose,
            Target::K8s => TargetKind::K8s,
            Target::Ssh => TargetKind::Ssh,
        }
    }
}

/// The topology file a command reads when none is named (the one `init` writes).
const DEFAULT_TOPOLOGY: &str = "topology.yaml";

/// Options every command that touches a target takes.
#[derive(Args)]
pub struct TargetArgs {
    /// The topology file
    #[arg(default_value = DEFAULT_TOPOLOGY)]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "local")]
    pub target: Target,
    /// Where deployments keep their state: configs, keys, data, logs and pid files (local)
    #[arg(long, env = "NOTIF_INFRA_STATE_DIR", default_value = ".notif-infra")]
    pub state_dir: PathBuf,
    /// The nats-server binary (otherwise NATS_SERVER_BIN, the project's .tools/bin, then PATH)
    #[arg(long)]
    pub nats_server: Option<PathBuf>,
    /// The image the compose target runs, instead of the topology's `compose.image` (default
    /// nats:2.15.1; nothing is pulled: it must be on the Docker engine), and the k8s target's
    /// pods, instead of `kubernetes.image`
    #[arg(long, env = "NATS_IMAGE")]
    pub image: Option<String>,
    /// k8s target: the kubectl context (otherwise kubectl's current one)
    #[arg(long = "context", env = "NOTIF_INFRA_KUBE_CONTEXT")]
    pub kube_context: Option<String>,
    /// ssh target: record the key of a host not yet in known_hosts (a changed key is always refused)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How long to wait for another command holding the deployment's lock (apply, destroy,
    /// rotate): `30s`, `2m`, or seconds
    #[arg(long, default_value = "0s", value_parser = duration_arg)]
    pub lock_timeout: Duration,
}

impl TargetArgs {
    /// The options of the commands that work on the deployment.
    pub fn options(&self, port_base: Option<u16>) -> Options {
        Options {
            topology: self.file.clone(),
            target: self.target.into(),
            state_root: self.state_dir.clone(),
            nats_server: self.nats_server.clone(),
            image: self.image.clone(),
            kube_context: self.kube_context.clone(),
            host_keys: HostKeyPolicy {
                accept_new: self.accept_new_host_keys,
            },
            port_base,
            prune: false,
            allow_replace: false,
            lock_timeout: self.lock_timeout,
            flows: false,
            trace: false,
        }
    }
}

/// A duration as the topology file writes them (`30s`, `1m30s`), or a number of seconds.
fn duration_arg(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(Duration::from_secs_f64(seconds)),
        Ok(_) => Err(format!(
            "`{text}` is not a duration: give a positive number of seconds or a duration such as 30s"
        )),
        Err(_) => notif_infra::units::parse_duration(text),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = match cli.command {
        Command::Init(a) => init::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Render(a) => render::run(a),
        Command::Plan(a) => runtime.block_on(plan::run(a)),
        Command::Apply(a) => runtime.block_on(async {
            notif_infra::apply::interrupt::install();
            apply::run(a).await
        }),
        Command::Verify(a) => runtime.block_on(verify::run(a)),
        Command::Destroy(a) => runtime.block_on(async {
            notif_infra::apply::interrupt::install();
            destroy::run(a).await
        }),
        Command::Add(a) => add::run(a),
        Command::Remove(a) => remove::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Rotate(a) => rotate::run(a),
        Command::Hosts(a) => hosts::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Output(a) => runtime.block_on(output::run(a)),
        Command::Monitor(a) => runtime.block_on(monitor::run(a)),
        Command::Backup(a) => runtime.block_on(backup::run(a)),
        Command::Restore(a) => runtime.block_on(restore::run(a)),
    };
    // The command is done: connections still closing and idle pooled sockets are not waited
    // for (measured: 0.2-0.3 s at the end of a verify of 66 servers).
    runtime.shutdown_background();
    outcome
}
