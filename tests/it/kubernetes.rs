//! Kubernetes manifests: every shipped topology with a `kubernetes:` block renders manifests that
//! `kubernetes-validate --strict` accepts without a word, shaped as the pods need them.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{python, render_into, text, topology};

/// `kubernetes-validate --strict --quiet`: exit 0 and nothing printed (an unknown kind is only a
/// warning there, so silence is part of the check).
fn kubernetes_validate(files: &[std::path::PathBuf]) {
    let out = python()
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "kubernetes-validate: {}",
        text(&out)
    );
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn shipped_topologies_render_manifests_kubernetes_accepts() {
    let mut checked = 0;
    for &(name, _) in notif_infra::ops::EXAMPLES {
        let t = notif_infra::ops::load(&topology(name)).unwrap().topology;
        let Some(k) = &t.kubernetes else { continue };
        let dir = tempfile::tempdir().unwrap();
        render_into(&topology(name), &dir.path().join("out"));
        let k8s = dir.path().join("out/k8s");
        let mut files = Vec::new();
        for region in &t.regions {
            let manifests = k8s.join(&region.name).join("manifests.yaml");
            files.push(manifests.clone());
            let docs = documents(&manifests);
            let pods: Vec<String> = (0..region.nodes.len()).map(|i| format!("{}-{i}", region.name)).collect();

            let sts = find(&docs, "StatefulSet", &region.name);
            assert_eq!(sts["metadata"]["namespace"], k.namespace.as_str());
            assert_eq!(sts["spec"]["replicas"], region.nodes.len() as u64, "{name}/{}", region.name);
            let container = &sts["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(container["args"][1], "/etc/nats/conf/$(POD_NAME).conf");
            assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz?js-server-only=true");
            assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz?js-enabled-only=true");
            assert_eq!(container["lifecycle"]["preStop"]["exec"]["command"][2], "ldm=1");
            let amount = |v: &Value, r: &notif_infra::model::Resources| {
                assert_eq!(v["cpu"].as_str(), r.cpu.as_deref(), "{name}: {v}");
                assert_eq!(v["memory"].as_str(), r.memory.as_deref(), "{name}: {v}");
            };
            amount(&container["resources"]["requests"], &k.requests);
            amount(&container["resources"]["limits"], &k.limits);
            let pod = &sts["spec"]["template"]["spec"];
            let anti = &pod["affinity"]["podAntiAffinity"];
            assert_eq!(
                anti["requiredDuringSchedulingIgnoredDuringExecution"].is_array(),
                k.anti_affinity_required,
                "{name}"
            );
            assert_eq!(
                anti["preferredDuringSchedulingIgnoredDuringExecution"].is_array(),
                !k.anti_affinity_required,
                "{name}"
            );
            assert_eq!(
                pod["topologySpreadConstraints"][0]["topologyKey"].as_str(),
                k.spread_across.as_deref(),
                "{name}"
            );
            assert_eq!(sts["spec"]["volumeClaimTemplates"].is_array(), region.jetstream.is_some());

            // The pods' configs: named after the pods, routes to the other pods' stable names.
            let configs = &find(&docs, "ConfigMap", &format!("{}-config", region.name))["data"];
            for pod in &pods {
                let conf = configs[format!("{pod}.conf")]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: no config for {pod}"));
                assert!(conf.contains(&format!("server_name: \"{pod}\"")), "{conf}");
                for peer in pods.iter().filter(|p| *p != pod) {
                    let route = format!("{peer}.{}.{}.svc.cluster.local", region.name, k.namespace);
                    assert!(conf.contains(&route), "{name}: {pod} has no route to {route}");
                }
                // Every shared file the config includes is mounted beside it.
                for included in conf.lines().filter_map(|l| l.trim().strip_prefix("include ")) {
                    let file: String = serde_json::from_str(included).unwrap();
                    let shared = configs[file.as_str()]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: {pod} includes {file}, not in its ConfigMap"));
                    assert!(shared.starts_with("# "), "{shared}");
                }
            }
            assert_eq!(find(&docs, "Service", &region.name)["spec"]["clusterIP"], "None");
            let client = find(&docs, "Service", &format!("{}-client", region.name));
            assert_eq!(client["spec"]["type"], k.client_service.as_str(), "{name}");
            find(&docs, "PodDisruptionBudget", &region.name);
            if t.is_super_cluster() {
                let external = find(&docs, "Service", &format!("{}-external", region.name));
                assert_eq!(external["spec"]["ports"][0]["name"], "gateway");
            }

            let secrets = k8s.join(&region.name).join("secrets.yaml");
            if t.tls.any() || t.operator.is_some() {
                let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", secrets.display());
                files.push(secrets);
            }
        }
        kubernetes_validate(&files);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} shipped topologies have a kubernetes block");
}
