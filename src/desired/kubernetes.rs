//! Kubernetes manifests, one directory per region: the region is a StatefulSet whose pods are
//! its servers, named after the pods and dialled through the headless service's stable DNS
//! names. `manifests.yaml` holds the Namespace, the ConfigMap with every pod's config, the
//! services, the StatefulSet and its PodDisruptionBudget; `secrets.yaml` (0600) the pods'
//! certificates and the users' credentials.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Desired, RenderedFile, Role, ServerSpec};
use crate::model::{Kubernetes, Node, Resources, Topology};

/// Where the pods find their configs, certificates and credentials.
const CONF_DIR: &str = "/etc/nats/conf";
const PKI_DIR: &str = "/etc/nats/pki";
/// The Secret the operator creates with the password variables the configs read.
pub fn passwords_secret(topology: &str) -> String {
    format!("{topology}-passwords")
}

/// The topology as it runs on Kubernetes: each region's servers are its StatefulSet's pods
/// (`<region>-0`, `<region>-1`, ...), reached at `<pod>.<region>.<namespace>.svc.cluster.local`
/// on the ports of the region's first node. Leafnodes stay outside (they run at the edge).
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

/// The service names a pod is also reached by (clients dial the client service, whichever pod
/// answers), for its certificate.
pub fn service_names(pods: &Topology, k: &Kubernetes) -> BTreeMap<String, Vec<String>> {
    pods.regions
        .iter()
        .flat_map(|r| {
            let client = format!("{}-client", r.name);
            let names = vec![
                format!("{client}.{}.svc.cluster.local", k.namespace),
                format!("{client}.{}.svc", k.namespace),
                format!("{client}.{}", k.namespace),
                client,
                format!("{}.{}.svc.cluster.local", r.name, k.namespace),
            ];
            r.nodes.iter().map(move |n| (n.name.clone(), names.clone()))
        })
        .collect()
}

/// PEM files of the pods' certificates, by file name under `pki/` (`ca.pem`, `<pod>.pem`,
/// `<pod>-key.pem`), and `.creds` files by account and user, for the Secrets.
pub struct SecretFiles {
    pub pki: BTreeMap<String, String>,
    pub creds: BTreeMap<String, String>,
}

/// The manifests of every region; `configs_rendered` are the pods' rendered configs.
pub fn manifests(
    t: &Topology,
    k: &Kubernetes,
    desired: &Desired,
    configs_rendered: &[RenderedFile],
    env_vars: &[String],
    secrets: &SecretFiles,
) -> Vec<RenderedFile> {
    let mut files = Vec::new();
    for region in &t.regions {
        let servers: Vec<_> = desired
            .servers
            .iter()
            .filter(|s| s.region == region.name && s.role == Role::Node)
            .collect();
        let Some(first) = servers.first() else { continue };
        let labels = json!({"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": region.name});
        let meta = |name: String| json!({"name": name, "namespace": k.namespace, "labels": labels});
        let ports = first.endpoint_ports;
        let conf = &first.conf;
        let tls = conf.tls.is_some() || conf.cluster.as_ref().is_some_and(|c| c.tls.is_some());
        let monitor_scheme = if conf.monitor_https { "HTTPS" } else { "HTTP" };
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(format!("{}-config", region.name)),
            "data": configs(&servers, configs_rendered),
        });
        let mut container_ports = vec![
            json!({"name": "client", "containerPort": ports.client}),
            json!({"name": "cluster", "containerPort": ports.cluster}),
            json!({"name": "monitor", "containerPort": ports.monitor}),
        ];
        let mut exposed = Vec::new();
        if conf.gateway.is_some() {
            container_ports.push(json!({"name": "gateway", "containerPort": ports.gateway}));
            exposed.push(json!({"name": "gateway", "port": ports.gateway, "targetPort": "gateway"}));
        }
        if conf.leafnode_listener.is_some() {
            container_ports.push(json!({"name": "leafnodes", "containerPort": ports.leafnode}));
            exposed.push(json!({"name": "leafnodes", "port": ports.leafnode, "targetPort": "leafnodes"}));
        }
        let mut env = vec![json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})];
        env.extend(
            env_vars
                .iter()
                .map(|v| json!({"name": v, "valueFrom": {"secretKeyRef": {"name": passwords_secret(&t.name), "key": v}}})),
        );
        let mut mounts = vec![json!({"name": "config", "mountPath": CONF_DIR, "readOnly": true})];
        let mut volumes = vec![json!({"name": "config", "configMap": {"name": format!("{}-config", region.name)}})];
        if tls {
            mounts.push(json!({"name": "pki", "mountPath": PKI_DIR, "readOnly": true}));
            volumes.push(json!({"name": "pki", "secret": {"secretName": format!("{}-pki", region.name), "defaultMode": 0o400}}));
        }
        let store = conf.jetstream.as_ref().map(|_| t.settings.jetstream_store_dir.clone());
        if let Some(dir) = &store {
            mounts.push(json!({"name": "data", "mountPath": dir}));
        }
        let probe = |path: &str, period: u32, failures: u32| json!({"httpGet": {"path": path, "port": "monitor", "scheme": monitor_scheme}, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 5});
        // Lame duck hands clients over before the pod goes: the pod waits for it, plus a margin.
        let lame_duck = t.settings.lame_duck.map(|l| l.duration + l.grace_period).unwrap_or_default();
        let grace = lame_duck.as_secs() + 30;
        let one_per_node = json!({"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"});
        let anti_affinity = if k.anti_affinity_required {
            json!({"requiredDuringSchedulingIgnoredDuringExecution": [one_per_node]})
        } else {
            json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": one_per_node}]})
        };
        let mut pod_spec = json!({
            "terminationGracePeriodSeconds": grace,
            "affinity": {"podAntiAffinity": anti_affinity},
            "containers": [{
                "name": "nats",
                "image": k.image,
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
        if let Some(key) = &k.spread_across {
            pod_spec["topologySpreadConstraints"] = json!([{
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": labels}
            }]);
        }
        let mut stateful_set = json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta(region.name.clone()),
            "spec": {
                "serviceName": region.name,
                "replicas": servers.len(),
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec}
            }
        });
        if store.is_some() {
            let mut claim = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": k.storage}}});
            if let Some(class) = &k.storage_class {
                claim["storageClassName"] = json!(class);
            }
            stateful_set["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"}, "spec": claim}]);
        }
        let mut docs = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": k.namespace}}),
            config_map,
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(region.name.clone()),
                "spec": {
                    "clusterIP": "None",
                    "publishNotReadyAddresses": true,
                    "selector": labels,
                    "ports": [
                        {"name": "client", "port": ports.client, "targetPort": "client"},
                        {"name": "cluster", "port": ports.cluster, "targetPort": "cluster"},
                        {"name": "monitor", "port": ports.monitor, "targetPort": "monitor"}
                    ]
                }
            }),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(format!("{}-client", region.name)),
                "spec": {"type": k.client_service, "selector": labels, "ports": [{"name": "client", "port": ports.client, "targetPort": "client"}]}
            }),
        ];
        if !exposed.is_empty() {
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(format!("{}-external", region.name)),
                "spec": {"type": k.service_type, "selector": labels, "ports": exposed}
            }));
        }
        docs.push(stateful_set);
        docs.push(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(region.name.clone()),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
        }));
        files.push(RenderedFile {
            path: PathBuf::from(format!("k8s/{}/manifests.yaml", region.name)),
            content: yaml_documents(&docs),
            secret: false,
        });

        let mut secret_docs = Vec::new();
        if tls {
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
                "metadata": meta(format!("{}-pki", region.name)),
                "type": "Opaque",
                "stringData": data
            }));
        }
        if !secrets.creds.is_empty() {
            secret_docs.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta(format!("{}-user-creds", region.name)),
                "type": "Opaque",
                "stringData": secrets.creds
            }));
        }
        if !secret_docs.is_empty() {
            files.push(RenderedFile {
                path: PathBuf::from(format!("k8s/{}/secrets.yaml", region.name)),
                content: yaml_documents(&secret_docs),
                secret: true,
            });
        }
    }
    files
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
        .map(|d| serde_saphyr::to_string(d).expect("a manifest serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}
