//! The `k8s` target: a Kubernetes namespace, driven through kubectl with server-side apply.
//! Each region is a StatefulSet whose pods are its servers (`<region>-<ordinal>`); the one
//! rollout drives them as it drives processes and containers. The StatefulSet's partition
//! holds every pod where it is until the rollout rolls it: one pod at a time, from the highest
//! ordinal down, each healthy with its streams current before the next. Scaling adds or removes
//! the highest ordinals. Configs reach the pods in a ConfigMap (a change nats-server can reload
//! is reloaded in place), certificates in a Secret; the client and monitoring ports are reached
//! through `kubectl port-forward`, kept open (and reopened when a pod is replaced) for as long
//! as the command runs. Its state is under `<state-root>/<topology>.k8s/`.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::local::{observe_here, slot_layout, write_under};
use super::{DeploymentState, HostLog, StopMode, Target, TargetKind};
use crate::desired::kubernetes::{self as manifests, DIGEST_ANNOTATION, TEMPLATE_ANNOTATION, TOPOLOGY_LABEL, pod_ordinal};
use crate::desired::{Addressing, Desired, RenderedFile};
use crate::material::{auth, redact};
use crate::model::{Kubernetes, Topology};
use crate::plan::{FileAction, FileChange, ObservedServer};

const INSTALL_HELP: &str = "the k8s target needs kubectl (on PATH, or KUBECTL naming it) and a context: the current one, or --context";
/// How long a pod may take to be scheduled, pulled and running.
const POD_PATIENCE: Duration = Duration::from_secs(180);

/// kubectl, with the context commands name.
#[derive(Debug, Clone)]
pub struct Kubectl {
    bin: PathBuf,
    context: Option<String>,
}

impl Kubectl {
    /// kubectl from `KUBECTL` or the PATH, with `context` or the current one.
    pub fn locate(context: Option<&str>) -> Result<Self> {
        let bin = match std::env::var_os("KUBECTL") {
            Some(p) => PathBuf::from(p),
            None => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&path)
                    .map(|d| d.join("kubectl"))
                    .find(|c| c.is_file())
                    .context(INSTALL_HELP)?
            }
        };
        let kubectl = Kubectl {
            bin,
            context: context.map(String::from),
        };
        if kubectl.context.is_none() {
            let out = std::process::Command::new(&kubectl.bin)
                .args(["config", "current-context"])
                .output()
                .with_context(|| format!("cannot run `{}`", kubectl.bin.display()))?;
            if !out.status.success() || out.stdout.trim_ascii().is_empty() {
                bail!("kubectl has no current context: {INSTALL_HELP}");
            }
        }
        Ok(kubectl)
    }

    fn args(&self) -> Vec<String> {
        self.context.iter().flat_map(|c| ["--context".to_string(), c.clone()]).collect()
    }

    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(self.args());
        cmd
    }

    /// Runs kubectl with `args` (and `input` on stdin); its output, or an error with what it said.
    async fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(self.args())
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("cannot run `{}`", self.bin.display()))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "`kubectl {}` failed: {}",
                args.join(" "),
                redact(String::from_utf8_lossy(&out.stderr).trim())
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.run(args, None).await?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("`kubectl {}` printed no JSON", args.join(" ")))
    }

    /// Server-side apply of `docs`, as notif-infra's field manager (taking over the fields it
    /// sets that another manager touched).
    async fn apply(&self, docs: Vec<Value>) -> Result<String> {
        if docs.is_empty() {
            return Ok(String::new());
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
        self.run(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=notif-infra",
                "-f",
                "-",
            ],
            Some(list.to_string().as_bytes()),
        )
        .await
    }
}

/// A pod as kubectl shows it.
#[derive(Debug, Clone)]
struct Pod {
    uid: String,
    running: bool,
    revision: String,
    template: String,
}

impl Pod {
    fn of(v: &Value) -> Pod {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let containers = v["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        Pod {
            uid: text(&v["metadata"]["uid"]),
            running: v["status"]["phase"] == "Running"
                && v["metadata"]["deletionTimestamp"].is_null()
                && !containers.is_empty()
                && containers.iter().all(|c| c["state"]["running"].is_object()),
            revision: text(&v["metadata"]["labels"]["controller-revision-hash"]),
            template: text(&v["metadata"]["annotations"][TEMPLATE_ANNOTATION]),
        }
    }
}

/// A StatefulSet's counts as the cluster has them.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    replicas: u32,
    partition: u32,
}

/// `kubectl port-forward` to every pod, each restarted when it ends (its pod was replaced)
/// until the forwards are closed.
struct Forwards {
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<BTreeMap<String, std::process::Child>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Forwards {
    fn open(kubectl: &Kubectl, namespace: &str, pods: Vec<(String, Vec<(u16, u16)>)>) -> Forwards {
        let stop = Arc::new(AtomicBool::new(false));
        let children: Arc<Mutex<BTreeMap<String, std::process::Child>>> = Arc::default();
        let threads = pods
            .into_iter()
            .map(|(pod, ports)| {
                let (stop, children, kubectl, namespace) = (stop.clone(), children.clone(), kubectl.clone(), namespace.to_string());
                std::thread::spawn(move || {
                    let mut pause = Duration::from_millis(100);
                    while !stop.load(Ordering::SeqCst) {
                        let mut cmd = kubectl.std_command();
                        cmd.args(["port-forward", "-n", &namespace, &format!("pod/{pod}")])
                            .args(ports.iter().map(|(local, remote)| format!("{local}:{remote}")))
                            .stdin(Stdio::null())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::null());
                        let Ok(mut child) = cmd.spawn() else { return };
                        let stdout = child.stdout.take();
                        children.lock().expect("forwards").insert(pod.clone(), child);
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        // Forwarding once said: the next failure is a replaced pod, tried again soon.
                        let forwarded = stdout.is_some_and(|out| BufReader::new(out).lines().map_while(|l| l.ok()).count() > 0);
                        if let Some(mut child) = children.lock().expect("forwards").remove(&pod) {
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                        pause = if forwarded {
                            Duration::from_millis(100)
                        } else {
                            (pause * 2).min(Duration::from_secs(2))
                        };
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Forwards { stop, children, threads }
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, mut child) in std::mem::take(&mut *self.children.lock().expect("forwards")) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        self.close();
    }
}

pub struct KubernetesTarget {
    dir: PathBuf,
    topology: String,
    k: Kubernetes,
    kubectl: Kubectl,
    /// The image the pods run instead of the topology's.
    image: Option<String>,
    /// The nats-server that computes expected config digests on this machine.
    bin: PathBuf,
    /// The regions, whose servers are StatefulSet pods (a leafnode's is a Pod of its own).
    regions: BTreeSet<String>,
    forwards: Mutex<Option<Forwards>>,
    /// Each region's and leafnode's pod template digest as rendered, from `layout`.
    templates: Mutex<BTreeMap<String, String>>,
    /// The pods stopped to be replaced, by their old uid.
    replaced: Mutex<BTreeMap<String, String>>,
}

impl KubernetesTarget {
    pub fn new(state_root: &Path, t: &Topology, context: Option<&str>, image: Option<&str>, bin: PathBuf) -> Result<Self> {
        let k = t.kubernetes.clone().with_context(|| {
            format!(
                "topology `{}` has no `kubernetes:` block: add one (namespace, image, cpu, memory, storage) to deploy it on Kubernetes",
                t.name
            )
        })?;
        let dir = std::path::absolute(TargetKind::K8s.deployment_dir(state_root, &t.name)).context("cannot resolve the state directory")?;
        Ok(KubernetesTarget {
            dir,
            topology: t.name.clone(),
            k,
            kubectl: Kubectl::locate(context)?,
            image: image.map(String::from),
            bin,
            regions: t.regions.iter().map(|r| r.name.clone()).collect(),
            forwards: Mutex::new(None),
            templates: Mutex::default(),
            replaced: Mutex::default(),
        })
    }

    fn ns(&self) -> &str {
        &self.k.namespace
    }

    /// The region and ordinal of a StatefulSet's pod; `None` for a leafnode's Pod.
    fn ordinal<'p>(&self, pod: &'p str) -> Option<(&'p str, u32)> {
        pod_ordinal(pod).filter(|(region, _)| self.regions.contains(*region))
    }

    /// A document of the group's deployed manifests (`kind` named `name`).
    fn deployed_doc(&self, group: &str, kind: &str, name: &str) -> Result<Value> {
        let path = self.dir.join("k8s").join(group).join("manifests.yaml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        documents(&text)?
            .into_iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .with_context(|| format!("`{}` holds no {kind} {name}", path.display()))
    }

    fn selector(&self) -> String {
        format!("{TOPOLOGY_LABEL}={}", self.topology)
    }

    /// The deployment's objects of `kind` (kubectl's plural) as the cluster has them now, by name.
    async fn listed(&self, kind: &str) -> Result<BTreeMap<String, Value>> {
        let list = self
            .kubectl
            .json(&["get", kind, "-n", self.ns(), "-l", &self.selector(), "-o", "json"])
            .await?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| (item["metadata"]["name"].as_str().unwrap_or_default().to_string(), item.clone()))
            .collect())
    }

    async fn pods(&self) -> Result<BTreeMap<String, Pod>> {
        Ok(self
            .listed("pods")
            .await?
            .iter()
            .map(|(name, v)| (name.clone(), Pod::of(v)))
            .collect())
    }

    async fn pod(&self, pod: &str) -> Result<Option<Pod>> {
        let v = self
            .kubectl
            .json(&["get", "pod", pod, "-n", self.ns(), "--ignore-not-found", "-o", "json"])
            .await?;
        Ok((!v.is_null()).then(|| Pod::of(&v)))
    }

    fn counts(set: Option<&Value>) -> Counts {
        let Some(set) = set else { return Counts::default() };
        let n = |v: &Value| v.as_u64().unwrap_or(0) as u32;
        let replicas = n(&set["spec"]["replicas"]);
        Counts {
            replicas,
            partition: set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
                .as_u64()
                .map(|p| p as u32)
                .unwrap_or(0),
        }
    }

    /// The region's StatefulSet as rendered (from the deployed manifests), with the image
    /// override and the counts given.
    fn stateful_set(&self, region: &str, counts: Counts) -> Result<Value> {
        let mut set = self.deployed_doc(region, "StatefulSet", region)?;
        set["spec"]["replicas"] = json!(counts.replicas);
        set["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": counts.partition}});
        Ok(set)
    }

    async fn set_counts(&self, region: &str, counts: Counts) -> Result<()> {
        self.kubectl.apply(vec![self.stateful_set(region, counts)?]).await.map(|_| ())
    }

    async fn live_counts(&self, region: &str) -> Result<Counts> {
        let v = self
            .kubectl
            .json(&["get", "statefulset", region, "-n", self.ns(), "--ignore-not-found", "-o", "json"])
            .await?;
        Ok(Self::counts((!v.is_null()).then_some(&v)))
    }

    /// Waits until `pod` runs (a new one, when it was stopped to be replaced).
    async fn wait_running(&self, pod: &str) -> Result<()> {
        let old = self.replaced.lock().expect("replaced").remove(pod);
        let started = Instant::now();
        loop {
            if let Some(p) = self.pod(pod).await?
                && p.running
                && Some(&p.uid) != old.as_ref()
            {
                return Ok(());
            }
            if started.elapsed() > POD_PATIENCE {
                bail!(
                    "pod {pod} is not running {} s after it was asked for:\n{}",
                    POD_PATIENCE.as_secs(),
                    self.log_tail(pod).await
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the pod with `uid` is gone.
    async fn wait_gone(&self, pod: &str, uid: &str, patience: Duration) -> Result<()> {
        let started = Instant::now();
        while self.pod(pod).await?.is_some_and(|p| p.uid == uid) {
            if started.elapsed() > patience {
                bail!("pod {pod} did not terminate within {} s", patience.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// The docs of one manifest file with the StatefulSet's counts as the cluster has them
    /// (so that applying the file never starts, stops or rolls a pod), and the image override.
    fn with_live_counts(&self, docs: Vec<Value>, sets: &BTreeMap<String, Value>) -> Vec<Value> {
        docs.into_iter()
            .map(|mut d| {
                if d["kind"] == "StatefulSet" {
                    let live = Self::counts(sets.get(d["metadata"]["name"].as_str().unwrap_or_default()));
                    d["spec"]["replicas"] = json!(live.replicas);
                    d["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": live.replicas}});
                }
                d
            })
            .collect()
    }
}

/// The documents of a manifest file.
fn documents(text: &str) -> Result<Vec<Value>> {
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str::<Value>(d).context("a rendered manifest does not parse"))
        .collect()
}

fn is_manifest(path: &Path) -> bool {
    path.starts_with("k8s")
}

/// The live object shaped as the rendered one: the fields the rendering sets, with the values
/// the cluster has (what the cluster adds, defaults and status, left out), so that a diff
/// shows what changed.
fn projected(live: &Value, rendered: &Value) -> Value {
    match (live, rendered) {
        (Value::Object(l), Value::Object(r)) => {
            Value::Object(r.keys().filter_map(|k| Some((k.clone(), projected(l.get(k)?, &r[k])))).collect())
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => Value::Array(l.iter().zip(r).map(|(l, r)| projected(l, r)).collect()),
        _ => live.clone(),
    }
}

/// Whether the live object is the rendered one: same digest, and for ConfigMaps and Secrets
/// the same data (an edit by hand leaves the digest).
fn same_object(desired: &Value, live: &Value) -> bool {
    if desired["kind"] == "Namespace" {
        return true;
    }
    let digest = |v: &Value| v["metadata"]["annotations"][DIGEST_ANNOTATION].clone();
    if digest(desired) != digest(live) {
        return false;
    }
    match desired["kind"].as_str() {
        Some("ConfigMap") => desired["data"] == live["data"],
        Some("Secret") => {
            let decoded: BTreeMap<String, String> = live["data"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let bytes = data_encoding::BASE64.decode(v.as_str()?.as_bytes()).ok()?;
                    Some((k.clone(), String::from_utf8(bytes).ok()?))
                })
                .collect();
            let wanted: BTreeMap<String, String> = serde_json::from_value(desired["stringData"].clone()).unwrap_or_default();
            decoded == wanted
        }
        _ => true,
    }
}

#[async_trait]
impl Target for KubernetesTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::K8s
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn deployed<'t>(&self, t: &'t Topology) -> Result<Cow<'t, Topology>> {
        Ok(Cow::Owned(manifests::pod_topology(t, &self.k)))
    }

    fn addressing(&self, t: &Topology, state: &mut DeploymentState, port_base: Option<u16>) -> Result<Addressing> {
        let layout = slot_layout(t, state, port_base)?;
        manifests::addressing(t, &self.k, layout.port_base, layout.port_stride, &layout.slots).map_err(anyhow::Error::msg)
    }

    fn layout(&self, t: &Topology, desired: &Desired, rendered: Vec<RenderedFile>) -> Result<Vec<RenderedFile>> {
        let mut k = self.k.clone();
        if let Some(image) = &self.image {
            k.image = image.clone();
        }
        let secrets = manifests::secret_files(&self.dir, desired)?;
        let mut files = manifests::manifests(t, &k, desired, &rendered, &t.env_var_names(), &secrets);
        let mut templates = self.templates.lock().expect("templates");
        for f in files.iter().filter(|f| f.path.ends_with("manifests.yaml")) {
            for d in documents(&f.content)?.iter().filter(|d| d["kind"] == "StatefulSet") {
                let region = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let template = d["spec"]["template"]["metadata"]["annotations"][TEMPLATE_ANNOTATION]
                    .as_str()
                    .unwrap_or_default();
                templates.insert(region, template.to_string());
            }
        }
        let variables = t.env_var_names();
        if !variables.is_empty() {
            let values: BTreeMap<String, String> = variables
                .iter()
                .map(|v| (v.clone(), std::env::var(v).unwrap_or_default()))
                .collect();
            let secret = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": manifests::passwords_secret(&t.name),
                    "namespace": k.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "notif-infra", TOPOLOGY_LABEL: t.name},
                    "annotations": {DIGEST_ANNOTATION: manifests::digest_of(&json!(values))}
                },
                "type": "Opaque",
                "stringData": values
            });
            files.push(RenderedFile {
                path: PathBuf::from("k8s/passwords.yaml"),
                content: serde_saphyr::to_string(&secret).expect("a manifest serializes"),
                secret: true,
            });
        }
        // The configs travel in the ConfigMaps; the credentials stay here for the clients.
        files.extend(
            rendered
                .into_iter()
                .filter(|f| !f.path.starts_with("nats") && !f.path.starts_with("wireguard")),
        );
        Ok(files)
    }

    async fn open_reach(&mut self, desired: &Desired) -> Result<()> {
        let pods: Vec<(String, Vec<(u16, u16)>)> = desired
            .servers
            .iter()
            .map(|s| {
                let ports = vec![
                    (s.reach_ports.client, s.endpoint_ports.client),
                    (s.reach_ports.monitor, s.endpoint_ports.monitor),
                ];
                (s.name.clone(), ports)
            })
            .collect();
        let running = self.pods().await?;
        let forwards = Forwards::open(&self.kubectl, self.ns(), pods);
        *self.forwards.lock().expect("forwards") = Some(forwards);
        // The running pods' forwards are listening before anything reads through them.
        let started = Instant::now();
        for s in desired.servers.iter().filter(|s| running.get(&s.name).is_some_and(|p| p.running)) {
            while tokio::net::TcpStream::connect(("127.0.0.1", s.reach_ports.monitor)).await.is_err() {
                if started.elapsed() > Duration::from_secs(30) {
                    bail!(
                        "`kubectl port-forward -n {} pod/{}` did not open 127.0.0.1:{} within 30 s (is the port taken? pick another range with --port-base)",
                        self.ns(),
                        s.name,
                        s.reach_ports.monitor
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn close(&mut self) {
        if let Some(mut f) = self.forwards.lock().expect("forwards").take() {
            f.close();
        }
    }

    async fn read_files(&self, t: &Topology, files: &[RenderedFile], _state: &DeploymentState) -> Result<BTreeMap<PathBuf, String>> {
        let mut found = crate::observed::files::read_tree(&self.dir, &auth::tree_dirs(t))
            .with_context(|| format!("cannot read `{}`", self.dir.display()))?;
        let list = self
            .kubectl
            .json(&[
                "get",
                "configmaps,secrets,services,statefulsets,pods,poddisruptionbudgets,persistentvolumeclaims",
                "-n",
                self.ns(),
                "-l",
                &self.selector(),
                "-o",
                "json",
            ])
            .await?;
        let namespace = self
            .kubectl
            .json(&["get", "namespace", self.ns(), "--ignore-not-found", "-o", "json"])
            .await?;
        let live: BTreeMap<(String, String), &Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let key = (
                    i["kind"].as_str().unwrap_or_default().to_string(),
                    i["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                );
                (key, i)
            })
            .chain((!namespace.is_null()).then(|| (("Namespace".to_string(), self.ns().to_string()), &namespace)))
            .collect();
        // A manifest file as the cluster holds it: each object as rendered when it is, a line
        // naming it when it differs, nothing when it is not there.
        for f in files.iter().filter(|f| is_manifest(&f.path)) {
            let mut text = Vec::new();
            for d in documents(&f.content)? {
                let key = (
                    d["kind"].as_str().unwrap_or_default().to_string(),
                    d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                );
                match live.get(&key) {
                    Some(l) if same_object(&d, l) => text.push(serde_saphyr::to_string(&d).expect("a manifest serializes")),
                    // A Secret's data is never shown, not even in a diff.
                    Some(_) if key.0 == "Secret" => text.push(format!("# Secret {} differs on the cluster\n", key.1)),
                    Some(l) => {
                        let mut shown = projected(l, &d);
                        // The counts are the rollout's, not part of what is compared.
                        shown["spec"]["replicas"] = d["spec"]["replicas"].clone();
                        shown["spec"]["updateStrategy"] = d["spec"]["updateStrategy"].clone();
                        if d["spec"].is_null() {
                            shown.as_object_mut().map(|o| o.remove("spec"));
                        }
                        text.push(serde_saphyr::to_string(&shown).expect("a manifest serializes"));
                    }
                    None => {}
                }
            }
            if !text.is_empty() {
                found.insert(f.path.clone(), text.join("---\n"));
            }
        }
        Ok(found)
    }

    async fn observe(&self, state: &DeploymentState, desired: &Desired) -> Result<BTreeMap<String, ObservedServer>> {
        let pods = self.pods().await?;
        let running: BTreeSet<String> = pods.iter().filter(|(_, p)| p.running).map(|(n, _)| n.clone()).collect();
        let url = |name: &str| desired.server(name).map(|s| s.monitor_url.clone());
        let mut observed = observe_here(state, desired, &running, url).await;
        let templates = self.templates.lock().expect("templates").clone();
        for (name, o) in observed.iter_mut() {
            let Some(pod) = pods.get(name) else { continue };
            let group = self.ordinal(name).map(|(region, _)| region).unwrap_or(name);
            if templates.get(group).is_some_and(|t| *t != pod.template) {
                o.must_restart = Some("its pod template changed (image, resources or mounts)".into());
            }
        }
        Ok(observed)
    }

    async fn config_digest(&self, server: &str, conf: &str) -> Result<Option<String>> {
        // The pod reads its certificates relative to its working directory, where they are
        // mounted: here they are the deployment's own.
        let links = [("pki", self.dir.join("pki"))];
        crate::nats_server::check_config_text_in(&self.bin, server, conf, &links)
            .await
            .map(Some)
    }

    async fn write_files(
        &self,
        changes: &[&FileChange],
        files: &[RenderedFile],
        _state: &mut DeploymentState,
        log: HostLog<'_>,
    ) -> Result<()> {
        write_under(&self.dir, changes)?;
        let sets = self.listed("statefulsets").await?;
        let mut namespaces = Vec::new();
        let mut objects = Vec::new();
        for f in files.iter().filter(|f| is_manifest(&f.path)) {
            if !changes.iter().any(|c| c.path == f.path && c.action != FileAction::Delete) {
                continue;
            }
            // A leafnode's Pod is started by `start`, never by writing files.
            let docs: Vec<Value> = documents(&f.content)?.into_iter().filter(|d| d["kind"] != "Pod").collect();
            let docs = self.with_live_counts(docs, &sets);
            let (ns, rest): (Vec<Value>, Vec<Value>) = docs.into_iter().partition(|d| d["kind"] == "Namespace");
            namespaces.extend(ns);
            objects.extend(rest);
        }
        namespaces.dedup();
        self.kubectl.apply(namespaces).await?;
        let said = self.kubectl.apply(objects).await?;
        for line in said.lines() {
            log("cluster", line.to_string());
        }
        // A region gone from the topology: its pods were stopped by the rollout; what served
        // them goes now.
        for c in changes
            .iter()
            .filter(|c| c.action == FileAction::Delete && c.path.ends_with("manifests.yaml"))
        {
            let Some(region) = c.path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()) else {
                continue;
            };
            let selector = format!("{},app.kubernetes.io/instance={region}", self.selector());
            self.kubectl
                .run(
                    &[
                        "delete",
                        "configmaps,services,poddisruptionbudgets",
                        "-n",
                        self.ns(),
                        "-l",
                        &selector,
                        "--ignore-not-found",
                    ],
                    None,
                )
                .await?;
        }
        Ok(())
    }

    async fn start(&self, servers: &[&str], state: &DeploymentState) -> Result<()> {
        let leaves: Vec<Value> = servers
            .iter()
            .filter(|s| self.ordinal(s).is_none())
            .map(|leaf| self.deployed_doc(leaf, "Pod", leaf))
            .collect::<Result<_>>()?;
        self.kubectl.apply(leaves).await?;
        let regions: BTreeSet<&str> = servers.iter().filter_map(|s| self.ordinal(s).map(|(r, _)| r)).collect();
        for region in regions {
            // The pods the state names (the journal holds those starting now): ordinals 0..n.
            let wanted = state
                .servers()
                .iter()
                .filter_map(|s| self.ordinal(s).filter(|(r, _)| *r == region).map(|(_, i)| i + 1))
                .max()
                .unwrap_or(0);
            let live = self.live_counts(region).await?;
            if wanted > live.replicas {
                // New pods (ordinals from the old count up) take the template as rendered; the
                // pods already there stay on theirs until the rollout rolls them.
                let partition = live.partition.min(live.replicas);
                self.set_counts(
                    region,
                    Counts {
                        replicas: wanted,
                        partition,
                    },
                )
                .await?;
            }
        }
        for server in servers {
            self.wait_running(server).await?;
        }
        Ok(())
    }

    async fn stop(&self, server: &str, grace: Duration, mode: StopMode) -> Result<()> {
        let Some(pod) = self.pod(server).await? else { return Ok(()) };
        let Some((region, ordinal)) = self.ordinal(server) else {
            // A leafnode's Pod: deleted (its preStop puts it in lame duck), applied again by start.
            self.kubectl
                .run(&["delete", "pod", server, "-n", self.ns(), "--wait=false"], None)
                .await?;
            return self.wait_gone(server, &pod.uid, grace + Duration::from_secs(60)).await;
        };
        let live = self.live_counts(region).await?;
        match mode {
            // A server leaving the topology: the StatefulSet's last pods go (the rollout stops
            // the highest ordinals first).
            StopMode::Terminate => {
                self.set_counts(
                    region,
                    Counts {
                        replicas: ordinal.min(live.replicas),
                        partition: live.partition.min(ordinal),
                    },
                )
                .await?;
            }
            // A server to replace: lowering the partition to it has the controller replace a
            // pod on an older template; a pod on the current one is deleted and comes back.
            StopMode::LameDuck => {
                let set = self
                    .kubectl
                    .json(&["get", "statefulset", region, "-n", self.ns(), "-o", "json"])
                    .await?;
                let update = set["status"]["updateRevision"].as_str().unwrap_or_default();
                self.replaced.lock().expect("replaced").insert(server.to_string(), pod.uid.clone());
                if !update.is_empty() && pod.revision != update {
                    self.set_counts(
                        region,
                        Counts {
                            replicas: live.replicas,
                            partition: ordinal.min(live.partition),
                        },
                    )
                    .await?;
                } else {
                    self.kubectl
                        .run(&["delete", "pod", server, "-n", self.ns(), "--wait=false"], None)
                        .await?;
                }
            }
        }
        self.wait_gone(server, &pod.uid, grace + Duration::from_secs(60)).await
    }

    async fn reload(&self, server: &str) -> Result<()> {
        // PID 1 of the pod is nats-server.
        self.kubectl
            .run(
                &["exec", "-n", self.ns(), server, "--", "/nats-server", "--signal", "reload=1"],
                None,
            )
            .await
            .map(|_| ())
    }

    fn reload_patience(&self) -> Duration {
        // The kubelet brings a changed ConfigMap into the pod within its sync period (a minute
        // by default) and its cache's lifetime.
        Duration::from_secs(120)
    }

    fn roll_order(&self, a: &str, b: &str) -> std::cmp::Ordering {
        match (self.ordinal(a), self.ordinal(b)) {
            (Some((ra, ia)), Some((rb, ib))) if ra == rb => ib.cmp(&ia),
            _ => std::cmp::Ordering::Equal,
        }
    }

    fn lasting_urls(&self, s: &crate::desired::ServerSpec) -> (String, String) {
        let scheme = s.client_url.split_once("://").map(|(scheme, _)| scheme).unwrap_or("nats");
        let monitor_scheme = s.monitor_url.split_once("://").map(|(scheme, _)| scheme).unwrap_or("http");
        (
            format!("{scheme}://{}:{}", s.host, s.endpoint_ports.client),
            format!("{monitor_scheme}://{}:{}", s.host, s.endpoint_ports.monitor),
        )
    }

    async fn running(&self, server: &str) -> Result<bool> {
        Ok(self.pod(server).await?.is_some_and(|p| p.running))
    }

    async fn log_tail(&self, server: &str) -> String {
        let said = match self.kubectl.run(&["logs", "-n", self.ns(), server, "--tail", "12"], None).await {
            Ok(text) => text,
            Err(e) => e.to_string(),
        };
        format!("--- last lines of pod {server} ---\n{}", redact(&said))
    }

    async fn destroy(&self, _state: &DeploymentState, log: HostLog<'_>) -> Result<Vec<String>> {
        let pods = self.pods().await?;
        self.kubectl
            .run(
                &[
                    "delete",
                    "statefulsets,pods,services,configmaps,secrets,poddisruptionbudgets,persistentvolumeclaims",
                    "-n",
                    self.ns(),
                    "-l",
                    &self.selector(),
                    "--ignore-not-found",
                    "--cascade=foreground",
                    "--wait=true",
                ],
                None,
            )
            .await?;
        for pod in pods.keys() {
            log(pod, "deleted".into());
        }
        Ok(pods.into_keys().collect())
    }
}
