//! Kubernetes manifests, one directory per region: the region is a StatefulSet whose pods are
//! its servers, named after the pods and dialled through the headless service's stable DNS
//! names. `manifests.yaml` holds the Namespace, the ConfigMap with every pod's config, the
//! services, the StatefulSet and its PodDisruptionBudget; `secrets.yaml` (0600) the pods'
//! certificates and the users' credentials. Every object carries the digest of what was
//! rendered for it, so what runs on the cluster can be compared with what would be applied.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Desired, RenderedFile, Role, ServerSpec};
use crate::model::{Kubernetes, Node, Resources, Topology};

/// The pods' working directory: the configs' certificate and resolver paths are relative to it.
pub const POD_WORKING_DIR: &str = "/etc/nats";
/// Where the pods find their configs, certificates and resolver directory.
const CONF_DIR: &str = "/etc/nats/conf";
const PKI_DIR: &str = "/etc/nats/pki";
const RESOLVER_DIR: &str = "/etc/nats/resolver";
/// Where a leafnode finds the credentials of its link (`auth/_links/<leaf>.creds` in its config).
const LINKS_DIR: &str = "/etc/nats/auth/_links";
/// The label naming the topology on every object notif-infra applies.
pub const TOPOLOGY_LABEL: &str = "notif-infra.io/topology";
/// The annotation holding the digest of the object as rendered (without the replica count and
/// partition, which the rollout sets).
pub const DIGEST_ANNOTATION: &str = "notif-infra.io/digest";
/// The pod template's annotation (and so every pod's) holding the template's digest: a pod
/// whose digest is not the rendered template's must restart to take it.
pub const TEMPLATE_ANNOTATION: &str = "notif-infra.io/template";

/// The Secret with the password variables the configs read.
pub fn passwords_secret(topology: &str) -> String {
    format!("{topology}-passwords")
}

/// The topology as it runs on Kubernetes: each region's servers are its StatefulSet's pods
/// (`<region>-0`, `<region>-1`, ...), reached at `<pod>.<region>.<namespace>.svc.cluster.local`
/// on the ports of the region's first node. A region's nodes map to its pods in order, so
/// removing a node removes the region's last pod.
pub fn pod_topology(t: &Topology, k: &Kubernetes) -> Topology {
    let mut pods = t.clone();
    for region in &mut pods.regions {
        let ports = region.nodes.first().map(|n| n.ports).unwrap_or_default();
        region.nodes = region
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Node {
                name: format!("{}-{i}", region.name),
                host: format!("{}-{i}.{}.{}.svc.cluster.local", region.name, region.name, k.namespace),
                ports,
                tags: node.tags.clone(),
                wireguard: None,
                // Pods are never logged into: their hosts stay as the topology has them.
                ssh: node.ssh.clone(),
                loc: node.loc,
            })
            .collect();
    }
    pods
}

/// How the pods of `pods` (from `pod_topology`) are addressed, each pod keeping the slot it
/// had in `previous` (its forwarded ports on this machine).
pub fn addressing(
    pods: &Topology,
    k: &Kubernetes,
    port_base: u16,
    port_stride: u16,
    previous: &BTreeMap<String, u16>,
) -> Result<super::Addressing, String> {
    Ok(super::Addressing::Kubernetes {
        namespace: k.namespace.clone(),
        port_base,
        port_stride,
        slots: super::assign_slots(pods, port_base, port_stride, previous)?,
    })
}

/// The pod's region and ordinal, from its name (`<region>-<ordinal>`).
pub fn pod_ordinal(pod: &str) -> Option<(&str, u32)> {
    let (region, ordinal) = pod.rsplit_once('-')?;
    Some((region, ordinal.parse().ok()?))
}

/// The part of an object its digest covers: all but the counts the rollout sets.
pub fn digest_of(doc: &Value) -> String {
    let mut doc = doc.clone();
    if let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("replicas");
        spec.remove("updateStrategy");
    }
    let hex: String = Sha256::digest(doc.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Stamps the object with the digest of what it is now.
fn stamped(mut doc: Value) -> Value {
    let digest = digest_of(&doc);
    doc["metadata"]["annotations"][DIGEST_ANNOTATION] = json!(digest);
    doc
}

/// PEM files of the pods' certificates, by file name under `pki/` (`ca.pem`, `<pod>.pem`,
/// `<pod>-key.pem`), and `.creds` files by account and user, for the Secrets.
pub struct SecretFiles {
    pub pki: BTreeMap<String, String>,
    pub creds: BTreeMap<String, String>,
    /// Each leafnode's link credentials, by leafnode.
    pub links: BTreeMap<String, String>,
}

/// What the pods of one group (a region's StatefulSet, or a leafnode's own Pod) share.
struct Group<'a> {
    name: &'a str,
    servers: Vec<&'a ServerSpec>,
    /// The selector labels and the full set (with the owner and the topology).
    labels: Value,
    owned: Value,
}

impl Group<'_> {
    fn meta(&self, k: &Kubernetes, name: String) -> Value {
        json!({"name": name, "namespace": k.namespace, "labels": self.owned})
    }
}

/// The pod spec the group's servers run, and whether it mounts the `data` volume (JetStream's
/// store, the full resolver's accounts).
fn pod_spec(t: &Topology, k: &Kubernetes, g: &Group, container_ports: Vec<Value>, env_vars: &[String]) -> (Value, bool) {
    let first = g.servers[0];
    let conf = &first.conf;
    let monitor_scheme = if conf.monitor_https { "HTTPS" } else { "HTTP" };
    let mut env = vec![json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})];
    env.extend(
        env_vars
            .iter()
            .map(|v| json!({"name": v, "valueFrom": {"secretKeyRef": {"name": passwords_secret(&t.name), "key": v}}})),
    );
    let mut mounts = vec![json!({"name": "config", "mountPath": CONF_DIR, "readOnly": true})];
    let mut volumes = vec![json!({"name": "config", "configMap": {"name": format!("{}-config", g.name)}})];
    if uses_pki(first) {
        mounts.push(json!({"name": "pki", "mountPath": PKI_DIR, "readOnly": true}));
        volumes.push(json!({"name": "pki", "secret": {"secretName": format!("{}-pki", g.name), "defaultMode": 0o400}}));
    }
    if conf.leaf_remotes.iter().any(|r| r.credentials.is_some()) {
        mounts.push(json!({"name": "link", "mountPath": LINKS_DIR, "readOnly": true}));
        volumes.push(json!({"name": "link", "secret": {"secretName": format!("{}-link", g.name), "defaultMode": 0o400}}));
    }
    let store = conf.jetstream.as_ref().map(|_| t.settings.jetstream_store_dir.clone());
    let resolver = conf.operator.as_ref().is_some_and(|o| o.resolver_dir.is_some());
    if let Some(dir) = &store {
        mounts.push(json!({"name": "data", "mountPath": dir}));
    }
    // The full resolver keeps the accounts pushed to it: on the pod's volume, beside its
    // store, so a restarted pod has them.
    if resolver {
        mounts.push(json!({"name": "data", "mountPath": RESOLVER_DIR, "subPath": "resolver"}));
    }
    let probe = |path: &str, period: u32, failures: u32| json!({"httpGet": {"path": path, "port": "monitor", "scheme": monitor_scheme}, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 5});
    // Lame duck hands clients over before the pod goes: the pod waits for it (nats-server's
    // default period when the topology sets none), plus a margin.
    let lame_duck = t
        .settings
        .lame_duck
        .map(|l| l.duration + l.grace_period)
        .unwrap_or(crate::nats_server::DEFAULT_LAME_DUCK);
    let spec = json!({
        "terminationGracePeriodSeconds": lame_duck.as_secs() + 30,
        "containers": [{
            "name": "nats",
            "image": k.image,
            "workingDir": POD_WORKING_DIR,
            "args": ["-c", format!("{CONF_DIR}/$(POD_NAME).conf")],
            "env": env,
            "ports": container_ports,
            "resources": {"requests": amounts(&k.requests), "limits": amounts(&k.limits)},
            "volumeMounts": mounts,
            "startupProbe": probe("/healthz", 10, 90),
            "readinessProbe": probe("/healthz?js-server-only=true", 10, 3),
            "livenessProbe": probe("/healthz?js-enabled-only=true", 30, 3),
            "lifecycle": {"preStop": {"exec": {"command": ["/nats-server", "--signal", "ldm=1"]}}}
        }],
        "volumes": volumes
    });
    (spec, store.is_some() || resolver)
}

/// Whether the server's config names certificates (mounted from the group's `-pki` Secret).
fn uses_pki(s: &ServerSpec) -> bool {
    s.conf.referenced_files().iter().any(|f| f.contains("pki/"))
}

fn claim_spec(k: &Kubernetes) -> Value {
    let mut claim = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": k.storage}}});
    if let Some(class) = &k.storage_class {
        claim["storageClassName"] = json!(class);
    }
    claim
}

/// The manifests of every region and leafnode; `configs_rendered` are the pods' rendered
/// configs. A region is a StatefulSet; a leafnode, one server of its own, a Pod with its claim.
pub fn manifests(
    t: &Topology,
    k: &Kubernetes,
    desired: &Desired,
    configs_rendered: &[RenderedFile],
    env_vars: &[String],
    secrets: &SecretFiles,
) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    let groups = t
        .regions
        .iter()
        .map(|r| (r.name.as_str(), Role::Node))
        .chain(t.leafnodes.iter().map(|l| (l.name.as_str(), Role::Leaf)));
    for (name, role) in groups {
        let servers: Vec<_> = desired
            .servers
            .iter()
            .filter(|s| s.role == role && (if role == Role::Node { s.region == name } else { s.name == name }))
            .collect();
        let Some(first) = servers.first() else { continue };
        let g = Group {
            name,
            labels: json!({"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": name}),
            owned: json!({
                "app.kubernetes.io/name": "nats",
                "app.kubernetes.io/instance": name,
                "app.kubernetes.io/managed-by": "notif-infra",
                TOPOLOGY_LABEL: t.name,
            }),
            servers: servers.clone(),
        };
        let ports = first.endpoint_ports;
        let conf = &first.conf;
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": g.meta(k, format!("{name}-config")),
            "data": configs(&servers, configs_rendered),
        });
        let mut container_ports = vec![json!({"name": "client", "containerPort": ports.client})];
        if conf.cluster.is_some() {
            container_ports.push(json!({"name": "cluster", "containerPort": ports.cluster}));
        }
        container_ports.push(json!({"name": "monitor", "containerPort": ports.monitor}));
        let mut exposed = Vec::new();
        if conf.gateway.is_some() {
            container_ports.push(json!({"name": "gateway", "containerPort": ports.gateway}));
            exposed.push(json!({"name": "gateway", "port": ports.gateway, "targetPort": "gateway"}));
        }
        if conf.leafnode_listener.is_some() {
            container_ports.push(json!({"name": "leafnodes", "containerPort": ports.leafnode}));
            exposed.push(json!({"name": "leafnodes", "port": ports.leafnode, "targetPort": "leafnodes"}));
        }
        let (mut pod_spec, claims) = pod_spec(t, k, &g, container_ports, env_vars);
        let mut docs = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": k.namespace, "labels": {"app.kubernetes.io/managed-by": "notif-infra"}}}),
            config_map,
        ];
        if role == Role::Leaf {
            // An edge server: nobody dials it but its own clients, and it moves nowhere.
            if claims {
                docs.push(json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": g.meta(k, format!("data-{name}")),
                    "spec": claim_spec(k)
                }));
                pod_spec["volumes"]
                    .as_array_mut()
                    .expect("volumes")
                    .push(json!({"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{name}")}}));
            }
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": g.meta(k, name.to_string()), "spec": pod_spec});
            pod["metadata"]["annotations"] = json!({ TEMPLATE_ANNOTATION: digest_of(&pod["spec"]) });
            docs.push(pod);
        } else {
            let one_per_node = json!({"labelSelector": {"matchLabels": g.labels}, "topologyKey": "kubernetes.io/hostname"});
            pod_spec["affinity"] = if k.anti_affinity_required {
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [one_per_node]}})
            } else {
                json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": one_per_node}]}})
            };
            if let Some(key) = &k.spread_across {
                pod_spec["topologySpreadConstraints"] = json!([{
                    "maxSkew": 1,
                    "topologyKey": key,
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": g.labels}
                }]);
            }
            let mut stateful_set = json!({
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": g.meta(k, name.to_string()),
                "spec": {
                    "serviceName": name,
                    "replicas": servers.len(),
                    "podManagementPolicy": "Parallel",
                    // notif-infra rolls the pods itself, one at a time from the highest ordinal,
                    // lowering the partition to each in turn: the controller never rolls on its own.
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": servers.len()}},
                    "selector": {"matchLabels": g.labels},
                    "template": {"metadata": {"labels": g.owned}, "spec": pod_spec}
                }
            });
            let template = digest_of(&stateful_set["spec"]["template"]);
            stateful_set["spec"]["template"]["metadata"]["annotations"] = json!({ TEMPLATE_ANNOTATION: template });
            if claims {
                stateful_set["spec"]["volumeClaimTemplates"] =
                    json!([{"metadata": {"name": "data", "labels": g.owned}, "spec": claim_spec(k)}]);
            }
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": g.meta(k, name.to_string()),
                "spec": {
                    "clusterIP": "None",
                    "publishNotReadyAddresses": true,
                    "selector": g.labels,
                    "ports": [
                        {"name": "client", "port": ports.client, "targetPort": "client"},
                        {"name": "cluster", "port": ports.cluster, "targetPort": "cluster"},
                        {"name": "monitor", "port": ports.monitor, "targetPort": "monitor"}
                    ]
                }
            }));
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": g.meta(k, format!("{name}-client")),
                "spec": {"type": k.client_service, "selector": g.labels, "ports": [{"name": "client", "port": ports.client, "targetPort": "client"}]}
            }));
            if !exposed.is_empty() {
                docs.push(json!({
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": g.meta(k, format!("{name}-external")),
                    "spec": {"type": k.service_type, "selector": g.labels, "ports": exposed}
                }));
            }
            docs.push(stateful_set);
            docs.push(json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": g.meta(k, name.to_string()),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": g.labels}}
            }));
        }
        files.push(RenderedFile {
            path: PathBuf::from(format!("k8s/{name}/manifests.yaml")),
            content: yaml_documents(&docs),
            secret: false,
        });

        let mut secret_docs = Vec::new();
        if uses_pki(first) {
            let wanted: Vec<String> = std::iter::once("ca.pem".to_string())
                .chain(
                    servers
                        .iter()
                        .flat_map(|s| [format!("{}.pem", s.name), format!("{}-key.pem", s.name)]),
                )
                .collect();
            let data: BTreeMap<&String, &String> = wanted.iter().filter_map(|f| Some((f, secrets.pki.get(f)?))).collect();
            secret_docs.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": g.meta(k, format!("{name}-pki")),
                "type": "Opaque",
                "stringData": data
            }));
        }
        if let Some(creds) = secrets.links.get(name) {
            secret_docs.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": g.meta(k, format!("{name}-link")),
                "type": "Opaque",
                "stringData": {format!("{name}.creds"): creds}
            }));
        }
        if role == Role::Node && !secrets.creds.is_empty() {
            secret_docs.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": g.meta(k, format!("{name}-user-creds")),
                "type": "Opaque",
                "stringData": secrets.creds
            }));
        }
        if !secret_docs.is_empty() {
            files.push(RenderedFile {
                path: PathBuf::from(format!("k8s/{name}/secrets.yaml")),
                content: yaml_documents(&secret_docs),
                secret: true,
            });
        }
    }
    files
}

/// The pods' certificates (read back from the tree's PKI) and the users' credentials, for the
/// Kubernetes Secrets.
pub fn secret_files(tree: &Path, pods: &Desired) -> anyhow::Result<SecretFiles> {
    let mut pki = BTreeMap::new();
    if pods.client_tls.is_some() || pods.servers.iter().any(|s| !s.conf.referenced_files().is_empty()) {
        let names = std::iter::once("ca.pem".to_string()).chain(
            pods.servers
                .iter()
                .flat_map(|s| [format!("{}.pem", s.name), format!("{}-key.pem", s.name)]),
        );
        for name in names {
            let path = tree.join("pki").join(&name);
            if let Ok(pem) = std::fs::read_to_string(&path) {
                pki.insert(name, pem);
            }
        }
    }
    let creds = pods
        .auth_files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "creds") && !f.path.to_string_lossy().contains("/_"))
        .filter_map(|f| {
            let account = f.path.parent()?.file_name()?.to_str()?;
            let user = f.path.file_stem()?.to_str()?;
            Some((format!("{account}.{user}.creds"), f.content.clone()))
        })
        .collect();
    let links = pods
        .auth_files
        .iter()
        .filter(|f| f.path.starts_with("auth/_links") && f.path.extension().is_some_and(|e| e == "creds"))
        .filter_map(|f| Some((f.path.file_stem()?.to_str()?.to_string(), f.content.clone())))
        .collect();
    Ok(SecretFiles { pki, creds, links })
}

/// Requests or limits as Kubernetes writes them, leaving out what the topology leaves unset.
fn amounts(r: &Resources) -> Value {
    let mut v = json!({});
    if let Some(cpu) = &r.cpu {
        v["cpu"] = json!(cpu);
    }
    if let Some(memory) = &r.memory {
        v["memory"] = json!(memory);
    }
    v
}

/// The pods' configs, by the file name each pod reads (`<pod>.conf`), and the shared files
/// they include, by their own names.
fn configs(servers: &[&ServerSpec], rendered: &[RenderedFile]) -> Value {
    let mut data = serde_json::Map::new();
    for s in servers {
        for path in super::config_files(s) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(f) = rendered.iter().find(|f| f.path == path) {
                data.insert(name.to_string(), json!(f.content));
            }
        }
    }
    Value::Object(data)
}

fn yaml_documents(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_saphyr::to_string(&stamped(d.clone())).expect("a manifest serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}
