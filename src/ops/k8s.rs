//! Every command on the k8s target. The manifests are rendered into
//! `<state-root>/<topology>.k8s/k8s/`, planned with `kubectl diff --server-side`, applied with
//! `kubectl apply --server-side` (the StatefulSet controller rolls the pods one at a time),
//! verified through `kubectl port-forward` to each pod's client and monitoring ports, and
//! removed with `kubectl delete`. Without kubectl or a current context each command says so
//! and prints what it would run.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::material::{KeyMode, secrets_for};
use super::render::{cert_requests, render};
use super::{ApplyEvents, Options, PlanOutcome, lock, record_verification};
use crate::desired::{self, Addressing, Desired};
use crate::material::pki::Rotation;
use crate::model::{Kubernetes, Topology};
use crate::plan::{FileAction, FileChange, KeyChange, Plan};
use crate::targets::TargetKind;
use crate::targets::k8s::{APPLY_ARGS, DELETE_ARGS, DIFF_ARGS, Kubectl, command_line};
use crate::topology::Loaded;
use crate::verify::{self, Progress, Report};

const NO_CONTEXT: &str = "kubectl or a current context is missing";

fn kubernetes(t: &Topology) -> Result<&Kubernetes> {
    t.kubernetes.as_ref().with_context(|| {
        format!(
            "topology `{}` has no `kubernetes:` block: add one (namespace, image, cpu, memory, storage) to deploy it on Kubernetes",
            t.name
        )
    })
}

fn manifests_dir(opts: &Options, t: &Topology) -> Result<(PathBuf, PathBuf)> {
    let dir = std::path::absolute(opts.deployment_dir(&t.name))?;
    let manifests = dir.join("k8s");
    Ok((dir, manifests))
}

/// The plan: the manifests against the last render, and what the cluster would change.
pub(super) async fn plan(opts: &Options) -> Result<PlanOutcome> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    kubernetes(t)?;
    let (dir, manifests) = manifests_dir(opts, t)?;
    let rendered = render(&opts.topology, Some(&dir), true)?;
    let mut files = rendered.changes;
    match Kubectl::find() {
        Some(kubectl) if manifests.is_dir() => {
            if let Some(diff) = kubectl.diff(&manifests)? {
                files.push(FileChange {
                    path: PathBuf::from("cluster"),
                    action: FileAction::Update,
                    diff: crate::material::redact(&diff),
                    content: None,
                    secret: false,
                });
            }
        }
        Some(_) => {
            eprintln!("the manifests are not rendered yet: apply renders them, then `kubectl diff` can compare them with the cluster")
        }
        None => eprintln!(
            "{NO_CONTEXT}, so the cluster was not compared; with one, plan runs:\n  {}",
            command_line(DIFF_ARGS, &manifests)
        ),
    }
    Ok(PlanOutcome {
        plan: k8s_plan(t, files),
        loaded: rendered.loaded,
    })
}

fn k8s_plan(t: &Topology, files: Vec<FileChange>) -> Plan {
    Plan {
        topology: t.name.clone(),
        target: TargetKind::K8s.name().into(),
        keys: Vec::new(),
        files,
        servers: Vec::new(),
        cluster: Vec::new(),
        jetstream: Vec::new(),
    }
}

/// Renders and applies the manifests, waits for every region's StatefulSet to roll out, then
/// verifies through port-forwards.
pub(super) async fn apply(opts: &Options, timeout: Duration, events: ApplyEvents<'_>) -> Result<(Loaded, Plan, Report)> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let k = kubernetes(t)?;
    let _lock = lock(opts, &t.name, "apply", events.log)?;
    let (dir, manifests) = manifests_dir(opts, t)?;
    let rendered = render(&opts.topology, Some(&dir), false)?;
    let plan = k8s_plan(t, rendered.changes);
    (events.plan)(&loaded, &plan);
    let Some(kubectl) = Kubectl::find() else {
        bail!(
            "{NO_CONTEXT}, so nothing was applied; the manifests are in `{}`. Apply them with:\n  {}",
            manifests.display(),
            command_line(APPLY_ARGS, &manifests)
        );
    };
    let said = kubectl.apply(&manifests)?;
    for line in said.lines() {
        (events.log)(line.to_string());
    }
    for region in &t.regions {
        (events.log)(kubectl.rollout_status(&k.namespace, &region.name, timeout)?.trim().to_string());
    }
    let report = verify_through_port_forwards(opts, t, timeout, events.progress).await?;
    record_verification(&dir, &report)?;
    Ok((loaded, plan, report))
}

pub(super) async fn verify(opts: &Options, timeout: Duration, progress: &(dyn Fn(Progress) + Sync)) -> Result<Report> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let (dir, _) = manifests_dir(opts, t)?;
    let report = verify_through_port_forwards(opts, t, timeout, progress).await?;
    record_verification(&dir, &report)?;
    Ok(report)
}

/// A `kubectl port-forward` to one pod, ended on drop.
pub(super) struct PortForward(Child);

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Forwards free local ports to the pod's `ports`; returns the local ports, in order.
fn port_forward(namespace: &str, pod: &str, ports: &[u16]) -> Result<(PortForward, Vec<u16>)> {
    let bin = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["port-forward", "-n", namespace, &format!("pod/{pod}")]);
    cmd.args(ports.iter().map(|p| format!(":{p}")));
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run `{}`", Path::new(&bin).display()))?;
    let stdout = child.stdout.take().context("port-forward's output")?;
    let forward = PortForward(child);
    // "Forwarding from 127.0.0.1:40123 -> 4222", one line per port.
    let mut local = vec![0u16; ports.len()];
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Some((from, to)) = line.strip_prefix("Forwarding from 127.0.0.1:").and_then(|r| r.split_once(" -> ")) else {
            continue;
        };
        if let (Ok(from), Ok(to)) = (from.trim().parse::<u16>(), to.trim().parse::<u16>())
            && let Some(i) = ports.iter().position(|p| *p == to)
        {
            local[i] = from;
        }
        if local.iter().all(|p| *p != 0) {
            return Ok((forward, local));
        }
    }
    bail!("`kubectl port-forward -n {namespace} pod/{pod}` ended before forwarding the ports {ports:?}")
}

/// The deployment's desired state with every pod's client and monitoring ports forwarded to
/// this machine (the URLs rewritten to them), its keys, and the forwards that keep them open.
pub(super) fn forwarded(opts: &Options, t: &Topology) -> Result<super::Reached> {
    let k = kubernetes(t)?;
    if Kubectl::find().is_none() {
        bail!(
            "{NO_CONTEXT}: the pods are reached through `kubectl port-forward -n {} pod/<pod> :<client> :<monitor>`",
            k.namespace
        );
    }
    let (dir, _) = manifests_dir(opts, t)?;
    let pods = desired::kubernetes::pod_topology(t, k);
    let secrets = secrets_for(t, &dir, &cert_requests(t), KeyMode::Require, Rotation::None)?;
    let mut desired: Desired = desired::build(&pods, &Addressing::Declared, &secrets.material(&dir));
    let mut forwards = Vec::new();
    for s in desired.servers.iter_mut() {
        let ports = [s.reach_ports.client, s.reach_ports.monitor];
        let (forward, local) = port_forward(&k.namespace, &s.name, &ports)?;
        let swap = |url: &str, port: u16| match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://127.0.0.1:{port}"),
            None => format!("127.0.0.1:{port}"),
        };
        let client_url = swap(&s.client_url, local[0]);
        for url in desired.jetstream_urls.iter_mut().filter(|u| **u == s.client_url) {
            *url = client_url.clone();
        }
        s.client_url = client_url;
        s.monitor_url = swap(&s.monitor_url, local[1]);
        forwards.push(forward);
    }
    Ok(super::Reached {
        desired,
        keys: secrets.keys,
        _forwards: forwards,
    })
}

async fn verify_through_port_forwards(
    opts: &Options,
    t: &Topology,
    timeout: Duration,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let reached = forwarded(opts, t)?;
    Ok(verify::verify(
        &reached.desired,
        &reached.keys,
        TargetKind::K8s.name(),
        verify::Scope {
            timeout,
            flows: opts.flows,
        },
        None,
        progress,
    )
    .await)
}

pub(super) fn destroy(opts: &Options) -> Result<(Vec<String>, PathBuf)> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let lock = lock(opts, &t.name, "destroy", &|l| eprintln!("{l}"))?;
    let (dir, manifests) = manifests_dir(opts, t)?;
    if !manifests.is_dir() {
        return Ok((Vec::new(), dir));
    }
    let Some(kubectl) = Kubectl::find() else {
        bail!(
            "{NO_CONTEXT}, so nothing was deleted and `{}` is kept. Delete the resources with:\n  {}",
            dir.display(),
            command_line(DELETE_ARGS, &manifests)
        );
    };
    kubectl.delete(&manifests)?;
    let pods = t.kubernetes.as_ref().map(|k| desired::kubernetes::pod_topology(t, k));
    let stopped = pods
        .map(|p| p.server_names().into_iter().map(String::from).collect())
        .unwrap_or_default();
    crate::fsio::remove_dir_all(&dir)?;
    lock.remove()?;
    Ok((stopped, dir))
}

/// Certificates are issued by `render` into the deployment's tree; the next apply puts them in
/// the pods' Secret, and the StatefulSet rolls the pods.
pub(super) fn rotate_certs(opts: &Options, rotation: Rotation) -> Result<Vec<KeyChange>> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    kubernetes(t)?;
    let _lock = lock(opts, &t.name, "rotate certs", &|l| eprintln!("{l}"))?;
    let (dir, _) = manifests_dir(opts, t)?;
    if !dir.is_dir() {
        return Err(super::not_applied(opts, &t.name));
    }
    Ok(secrets_for(t, &dir, &cert_requests(t), KeyMode::Generate, rotation)?.changes)
}

/// Clients outside the cluster reach it through its client Service; inside, at the pods'
/// service names.
pub(super) fn client_environment(opts: &Options) -> Result<Vec<(String, String)>> {
    let loaded = super::load(&opts.topology)?;
    let t = &loaded.topology;
    let k = kubernetes(t)?;
    let (dir, _) = manifests_dir(opts, t)?;
    if !dir.is_dir() {
        return Err(super::not_applied(opts, &t.name));
    }
    let pods = desired::kubernetes::pod_topology(t, k);
    let secrets = secrets_for(t, &dir, &cert_requests(t), KeyMode::Require, Rotation::None)?;
    let desired = desired::build(&pods, &Addressing::Declared, &secrets.material(&dir));
    let urls: Vec<&str> = desired.servers.iter().map(|s| s.client_url.as_str()).collect();
    let mut vars = vec![("NATS_URL".to_string(), urls.join(","))];
    if let Some(tls) = &desired.client_tls {
        vars.push(("NATS_CA".into(), tls.ca.display().to_string()));
    }
    Ok(vars)
}
