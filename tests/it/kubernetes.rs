//! Kubernetes manifests: every shipped topology with a `kubernetes:` block renders manifests that
//! `kubernetes-validate --strict` accepts without a word, shaped as the pods need them.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{assert_contains_all, python, render_into, text, topology};

/// `kubernetes-validate --strict --quiet`: exit 0 and nothing printed (an unknown kind is only a
/// warning there, so silence is part of the check).
pub(crate) fn kubernetes_validate(files: &[std::path::PathBuf]) {
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

/// A Kubernetes cluster of its own for one test: the stand-in `tests/kube/kubectl` on PATH,
/// its state in a temporary directory, and on drop every container and network it made gone.
struct Cluster {
    dir: tempfile::TempDir,
    port_base: u16,
    pods: u16,
}

/// Ports of the range handed to a cluster beyond its pods' slots, for the test's own
/// port-forwards and listeners: inside the range, so no other test is handed them.
const SPARE_SLOTS: u16 = 4;

impl Cluster {
    fn new(pods: u16) -> Cluster {
        crate::support::local_image();
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            port_base: crate::support::free_port_base(pods + SPARE_SLOTS),
            pods,
        }
    }

    /// The `i`-th spare port of the cluster's range.
    fn spare_port(&self, i: u16) -> u16 {
        assert!(
            i < SPARE_SLOTS * crate::support::STRIDE,
            "only {} spare ports",
            SPARE_SLOTS * crate::support::STRIDE
        );
        self.port_base + self.pods * crate::support::STRIDE + i
    }

    fn root(&self) -> std::path::PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap().join("cluster")
    }

    fn path(&self) -> String {
        let kube = crate::support::project_root().join("tests/kube");
        format!("{}:{}", kube.display(), std::env::var("PATH").unwrap_or_default())
    }

    /// `notif-infra VERB FILE --target k8s` against this cluster.
    fn run(&self, verb: &str, file: &Path, args: &[&str]) -> std::process::Output {
        let mut cmd = crate::support::notif_infra(self.dir.path());
        cmd.env("PATH", self.path())
            .env("KUBE_STANDIN_DIR", self.root())
            .arg(verb)
            .arg(file)
            .args(["--target", "k8s"])
            .args(args);
        if ["apply", "plan"].contains(&verb) {
            cmd.args(["--port-base", &self.port_base.to_string()]);
        }
        cmd.output().unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(crate::support::project_root().join("tests/kube/kubectl"))
            .env("KUBE_STANDIN_DIR", self.root())
            .args(args)
            .output()
            .unwrap()
    }

    /// The containers the cluster runs, by name.
    fn containers(&self) -> Vec<String> {
        let out = std::process::Command::new("docker")
            .args(["ps", "-a", "--filter"])
            .arg(format!("label=io.kube-standin.dir={}", self.root().display()))
            .args(["--format", "{{.Label \"io.kubernetes.pod.name\"}} {{.Image}}"])
            .output()
            .unwrap();
        let mut names: Vec<String> = text(&out).lines().map(str::to_string).collect();
        names.sort();
        names
    }

    /// Keeps `kubectl port-forward` to each pod's client port open (reopened when the pod is
    /// replaced) for a client of the test's own; the local URLs.
    fn forward_clients(&self, namespace: &str, pods: &[&str], stop: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<String> {
        let mut urls = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let local = self.spare_port(i as u16);
            urls.push(format!("nats://127.0.0.1:{local}"));
            let (stop, root, pod, ns) = (stop.clone(), self.root(), pod.to_string(), namespace.to_string());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut child = std::process::Command::new(crate::support::project_root().join("tests/kube/kubectl"))
                        .env("KUBE_STANDIN_DIR", &root)
                        .args(["port-forward", "-n", &ns, &format!("pod/{pod}"), &format!("{local}:4222")])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && child.try_wait().unwrap().is_none() {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        urls
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let label = format!("label=io.kube-standin.dir={}", self.root().display());
        let ids = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .unwrap();
        for id in text(&ids).split_whitespace() {
            let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
        }
        let nets = std::process::Command::new("docker")
            .args(["network", "ls", "-q", "--filter", &label])
            .output()
            .unwrap();
        for id in text(&nets).split_whitespace() {
            let _ = std::process::Command::new("docker").args(["network", "rm", id]).output();
        }
    }
}

/// Whether the six routes of three pods are all up in these `nats_link_up` samples.
fn all_up(samples: &str) -> bool {
    samples.lines().count() == 6
        && samples
            .lines()
            .all(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(1.0))
}

/// covenant, as its seed runs it on Kubernetes, on pods that run for real: routes between the
/// pods' DNS names over TLS whose SANs are those names, every stream, consumer, bucket and
/// object store applied, every flow read by its application; a plan saved then overtaken is
/// refused; a pod added and removed; destroy leaves no container.
#[test]
fn covenant_comes_up_on_pods_and_carries_its_flows_then_scales_and_goes() {
    let cluster = Cluster::new(4);
    let file = cluster.dir.path().join("covenant.yaml");
    let original = std::fs::read_to_string(topology("covenant")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let image = crate::support::local_image();
    let run = |verb: &str, args: &[&str]| {
        let mut all = vec!["--image", image];
        all.extend_from_slice(args);
        cluster.run(verb, &file, &all)
    };

    let started = std::time::Instant::now();
    let out = run("apply", &["--flows"]);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "covenant on k8s: verified with its flows {:.1} s after apply began",
        started.elapsed().as_secs_f64()
    );
    let said = text(&out);
    assert_contains_all(
        &said,
        &[
            "statefulset.apps/global-sovereign serverside-applied",
            "global-sovereign-0: started",
            "read by analytics-service",
            "app `analytics-service` pulled it and acknowledged it",
            "app `cache-invalidator` received it on the deliver subject",
        ],
    );
    assert!(!said.contains("FAIL"), "{said}");
    let pods: Vec<String> = (0..3).map(|i| format!("global-sovereign-{i} {image}")).collect();
    assert_eq!(cluster.containers(), pods);
    // The routes are TLS between the pods' DNS names: each pod's certificate names it so.
    let state = cluster.dir.path().join(".notif-infra/covenant.k8s");
    let pem = std::fs::read_to_string(state.join("pki/global-sovereign-1.pem")).unwrap();
    let (_, cert) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = cert.parse_x509().unwrap();
    let sans = format!("{:?}", cert.subject_alternative_name().unwrap().unwrap().value);
    assert!(
        sans.contains("global-sovereign-1.global-sovereign.nats.svc.cluster.local"),
        "{sans}"
    );
    let out = run("verify", &["-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = crate::support::json_of(&out);
    let routes = report["links"].as_array().unwrap().iter().filter(|l| l["kind"] == "route").count();
    assert_eq!(routes, 6, "{report}");
    let out = run("plan", &["--context", "kube-standin"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run("plan", &["--context", "elsewhere"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_contains_all(&text(&out), &["context \"elsewhere\" does not exist"]);
    // The picture of what runs, as the last verify saw it: the pods and their routes.
    let out = run("graph", &["--live"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(&text(&out), &["global-sovereign-0", "global-sovereign-2"]);
    // monitor keeps its port-forwards for as long as it watches.
    let listen = format!("127.0.0.1:{}", cluster.spare_port(19));
    let mut monitor = std::process::Command::new(env!("CARGO_BIN_EXE_notif-infra"));
    monitor
        .current_dir(cluster.dir.path())
        .envs(crate::support::ENV.iter().copied())
        .env("PATH", cluster.path())
        .env("KUBE_STANDIN_DIR", cluster.root())
        .args(["monitor"])
        .arg(&file)
        .args(["--target", "k8s", "--listen", &listen])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut monitor = monitor.spawn().unwrap();
    let mut links_up = String::new();
    for _ in 0..300 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Ok(mut stream) = std::net::TcpStream::connect(&listen) else {
            continue;
        };
        use std::io::{Read, Write};
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {listen}\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        links_up = body
            .lines()
            .filter(|l| l.starts_with("nats_link_up{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        if all_up(&links_up) {
            break;
        }
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    assert!(all_up(&links_up), "{links_up}");

    // What a later CI step needs: URLs that outlive the command's port-forwards, each user's creds.
    let env = cluster.dir.path().join("covenant.env");
    let out = run("apply", &["--env-file", env.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let vars = std::fs::read_to_string(&env).unwrap();
    assert_contains_all(
        &vars,
        &[
            "NATS_URL=nats://global-sovereign-0.global-sovereign.nats.svc.cluster.local:4222,",
            "NATS_MONITOR_URLS=http://global-sovereign-0.global-sovereign.nats.svc.cluster.local:8222,",
        ],
    );
    // Backup and restore through the port-forwards.
    let backup = cluster.dir.path().join("backup");
    let out = run("backup", &["--stream", "COVENANT_USERS", "--to", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        "restore",
        &["--from", backup.to_str().unwrap(), "--stream", "COVENANT_USERS", "--replace"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // New certificates reach the pods in their Secret, and each pod reloads them in place.
    let mut rotate = crate::support::notif_infra(cluster.dir.path());
    let out = rotate
        .env("PATH", cluster.path())
        .env("KUBE_STANDIN_DIR", cluster.root())
        .args(["rotate", "certs"])
        .arg(&file)
        .args(["--target", "k8s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = run("apply", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("reloaded (TLS certificate replaced)").count(),
        3,
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("restarted ("), "{}", text(&out));
    let rotated = std::fs::read_to_string(state.join("pki/global-sovereign-1.pem")).unwrap();
    assert_ne!(rotated, pem);

    // A saved plan, then a pod lost behind its back: the plan no longer holds.
    let saved = cluster.dir.path().join("covenant.plan");
    let out = run("plan", &["--out", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cluster.kubectl(&["scale", "statefulset/global-sovereign", "--replicas=2", "-n", "nats"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cluster.run("apply", &saved, &[]);
    assert!(!out.status.success());
    assert_contains_all(
        &text(&out),
        &["is stale, so nothing was changed", "server global-sovereign-2 was running"],
    );
    assert_eq!(cluster.containers().len(), 2);

    // A fourth node is a fourth pod; the lost one comes back with it.
    let four = original.replace(
        "      - { name: nats-3, host: nats-3.nats.svc.cluster.local, tags: [\"region:syd\"] }\n",
        "      - { name: nats-3, host: nats-3.nats.svc.cluster.local, tags: [\"region:syd\"] }\n      - { name: nats-4, host: nats-4.nats.svc.cluster.local, tags: [\"region:fra\"] }\n",
    );
    assert_ne!(four, original);
    std::fs::write(&file, &four).unwrap();
    let out = run("apply", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(&text(&out), &["global-sovereign-2: started", "global-sovereign-3: started"]);
    assert_eq!(cluster.containers().len(), 4);
    // And removed again: its replicas move first, then the StatefulSet's last pod goes.
    std::fs::write(&file, &original).unwrap();
    let out = run("apply", &["--flows"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(&text(&out), &["global-sovereign-3: stopped"]);
    assert_eq!(cluster.containers(), pods);
    assert_eq!(run("plan", &[]).status.code(), Some(0));

    let out = run("destroy", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(cluster.containers(), Vec::<String>::new());
    assert!(!state.join("state.json").exists() && !state.join("k8s").exists());
    assert!(state.join("pki/ca-key.pem").is_file(), "the identity stays");
}

/// A new image in `kubernetes.image` rolls the pods one at a time from the highest ordinal,
/// each in lame duck and back healthy with its streams current before the next, while an
/// application publishes with acknowledgements through its own port-forwards: nothing lost.
#[test]
fn a_new_image_rolls_the_pods_one_at_a_time_without_losing_an_acknowledged_message() {
    let old = crate::support::official_tag_image("2.14.6");
    let new = crate::support::official_tag_image("2.15.1");
    let cluster = Cluster::new(3);
    let file = cluster.dir.path().join("kup.yaml");
    let topology = |image: &str| {
        format!(
            "name: kup\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nkubernetes: {{ namespace: kup, image: \"{image}\", storage: 1Gi }}\n\
defaults: {{ lame_duck: {{ duration: 30s, grace_period: 1s }} }}\n\
accounts:\n  APP:\n    jetstream: true\n    users:\n      - {{ user: app, password: \"${{APP_PASS}}\" }}\n\
streams:\n  EVENTS: {{ account: APP, subjects: [\"events.>\"], replicas: 3 }}\n"
        )
    };
    std::fs::write(&file, topology(&old)).unwrap();
    let out = cluster.run("apply", &file, &[]);
    assert!(out.status.success(), "{}", text(&out));

    std::fs::write(&file, topology(&new)).unwrap();
    let out = cluster.run("plan", &file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(text(&out).matches("its pod template changed").count(), 3, "{}", text(&out));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let urls = cluster.forward_clients("kup", &["main-0", "main-1", "main-2"], &stop);
    let load = crate::load::Load::start(urls, None);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let out = cluster.run("apply", &file, &[]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    load.stop_and_check("a rolling image upgrade (nats-server 2.14.6 -> 2.15.1) of three pods");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!("rolling upgrade of 3 pods: {:.1} s", took.as_secs_f64());
    let said = text(&out);
    let order: Vec<usize> = ["main-2: restarted", "main-1: restarted", "main-0: restarted"]
        .iter()
        .map(|s| said.find(s).unwrap_or_else(|| panic!("no `{s}` in {said}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "the highest ordinal first: {said}");
    let images: Vec<String> = (0..3).map(|i| format!("main-{i} {new}")).collect();
    assert_eq!(cluster.containers(), images);
    assert_eq!(cluster.run("plan", &file, &[]).status.code(), Some(0));
    assert!(cluster.run("destroy", &file, &[]).status.success());
}

/// notif-hybrid's two cloud regions on pods, gateways between them over the pods' DNS names with
/// TLS, accounts as JWTs under its operator with the full resolver on the pods' volumes, and its
/// two leafnodes each a Pod of its own dialling its hub: every flow read by its application.
#[test]
fn notif_hybrid_comes_up_on_pods_with_its_leafnodes_and_carries_its_flows() {
    let cluster = Cluster::new(8);
    let file = topology("notif-hybrid");
    let image = crate::support::local_image();
    let started = std::time::Instant::now();
    let out = cluster.run("apply", &file, &["--image", image, "--flows"]);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "notif-hybrid on k8s: verified with its flows {:.1} s after apply began",
        started.elapsed().as_secs_f64()
    );
    let said = text(&out);
    assert!(!said.contains("FAIL"), "{said}");
    assert_contains_all(
        &said,
        &[
            "gateway",
            "leafnode",
            "app `partner-replay`",
            "reaches subscriber partner-inc/api-key-3 at partner-edge",
        ],
    );
    let pods: Vec<String> = cluster
        .containers()
        .iter()
        .map(|c| c.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        pods,
        [
            "acme-onprem",
            "cloud-eu-0",
            "cloud-eu-1",
            "cloud-eu-2",
            "cloud-us-0",
            "cloud-us-1",
            "cloud-us-2",
            "partner-edge"
        ]
    );
    assert_eq!(cluster.run("plan", &file, &["--image", image]).status.code(), Some(0));
    assert!(cluster.run("destroy", &file, &[]).status.success());
    assert_eq!(cluster.containers(), Vec::<String>::new());
}

/// Without kubectl the k8s target says what it needs and starts nothing.
#[test]
fn without_kubectl_the_k8s_target_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::notif_infra(dir.path())
        .env("PATH", "/usr/bin:/bin")
        .env_remove("KUBECTL")
        .args(["apply"])
        .arg(topology("covenant"))
        .args(["--target", "k8s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_contains_all(&text(&out), &["the k8s target needs kubectl", "--context"]);
    assert!(!dir.path().join(".notif-infra/covenant.k8s/k8s").exists());
}
