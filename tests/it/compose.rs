//! Rendered compose projects: accepted by Docker Compose v2's own `config -q` (installed by
//! scripts/install-test-tools.sh), one service per server with its config mounted, every published
//! host port distinct.

use serde_json::Value;
use std::collections::HashSet;

use std::path::Path;
use std::time::Duration;

use crate::support::{Deployment, assert_contains_all, containers_in, json_of, notif_infra, project_root, render_into, text, topology};

pub(crate) fn compose_binary() -> std::path::PathBuf {
    project_root().join(".tools").join("bin").join("docker-compose")
}

#[test]
fn every_single_host_topology_renders_a_compose_project_compose_accepts() {
    for &(name, _) in notif_infra::ops::EXAMPLES {
        let dir = tempfile::tempdir().unwrap();
        render_into(&topology(name), &dir.path().join("out"));
        let project = dir.path().join("out");
        let file = project.join("compose").join("docker-compose.yml");
        if name.starts_with("unityplan") {
            // Its servers are dialled by WireGuard addresses: one host each, a project per host.
            assert!(!file.exists(), "{name}");
            for server in ["service-nats-dk", "service-nats-no", "service-nats-se"] {
                let host = project.join("compose").join(server);
                let check = std::process::Command::new(compose_binary())
                    .current_dir(&host)
                    .args(["config", "--format", "json"])
                    .output()
                    .unwrap();
                assert!(check.status.success(), "{server}: {}", String::from_utf8_lossy(&check.stderr));
                let v: Value = serde_json::from_slice(&check.stdout).unwrap();
                let service = &v["services"][server];
                assert_eq!(service["network_mode"], "host", "{server}");
                assert_eq!(service["image"], "nats:2.15.1", "{server}: the .env names the image");
                assert!(service["command"][1].as_str().unwrap().ends_with(&format!("{server}.conf")));
            }
            continue;
        }
        let check = std::process::Command::new(compose_binary())
            .current_dir(&project)
            .args(["-f", "compose/docker-compose.yml", "config", "-q"])
            .output()
            .unwrap_or_else(|e| panic!("run scripts/install-test-tools.sh for docker-compose: {e}"));
        assert!(
            check.status.success() && check.stderr.is_empty(),
            "{name}: compose rejected the file:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );

        // What compose itself makes of it: every server a service, host ports distinct.
        let resolved = std::process::Command::new(compose_binary())
            .current_dir(&project)
            .args(["-f", "compose/docker-compose.yml", "config", "--format", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&resolved.stdout).unwrap();
        let services = v["services"].as_object().unwrap();
        // Shared files (`_accounts.conf`, `_gateways-<i>.conf`) are included, not run.
        let confs = std::fs::read_dir(project.join("nats"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('_'))
            .count();
        assert_eq!(services.len(), confs, "{name}: a service per rendered server config");
        let mut host_ports = HashSet::new();
        for (service, spec) in services {
            for p in spec["ports"].as_array().unwrap() {
                assert!(
                    host_ports.insert(p["published"].as_str().unwrap().to_string()),
                    "{name}: {service} reuses a host port"
                );
            }
            // The configs directory is mounted and the service runs its own config from it.
            let confs = spec["volumes"][0]["source"].as_str().unwrap();
            assert!(confs.ends_with("/nats"), "{name}: {service} mounts {confs}");
            let command: Vec<&str> = spec["command"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            assert_eq!(command, ["-c", &format!("/etc/nats/servers/{service}.conf")], "{name}");
        }
    }
}

#[test]
fn dev_compose_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path())
        .args(["render", "--out", "out"])
        .arg(topology("dev"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.path().join("out/compose/docker-compose.yml")).unwrap();
    insta::assert_snapshot!("dev_compose", text);
}

/// Applies `file` on the compose target, checks verification and an empty plan, and returns
/// the deployment (destroyed on drop).
fn up_on_compose(file: &Path, name: &str, servers: u16) -> Deployment {
    let d = Deployment::compose(file, name, servers + 1);
    apply_and_check(&d, servers);
    d
}

fn apply_and_check(d: &Deployment, servers: u16) {
    let out = d
        .cmd("apply")
        .args(["-o", "json"])
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", d.name, text(&out));
    let report = json_of(&out);
    assert_eq!(report["verify"]["ok"], true, "{}: {report:#}", d.name);
    assert_eq!(report["verify"]["target"], "compose");
    let nodes = report["verify"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), servers as usize);
    // notif-infra reached every server through the ports the project publishes on loopback.
    let published = format!("127.0.0.1:{}", d.port_base);
    assert!(
        nodes.iter().any(|n| n["client_url"].as_str().unwrap().ends_with(&published)),
        "{nodes:?}"
    );
    let plan = d.cmd("plan").output().unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}: plan after apply: {}", d.name, text(&plan));
    let containers = containers_in(&d.state_dir().join("compose"));
    assert_eq!(containers.len(), servers as usize, "{containers:?}");
}

/// Runs `destroy` and checks that the project left no container behind.
fn destroy_leaves_nothing(d: &Deployment) {
    let compose_dir = d.state_dir().join("compose");
    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(containers_in(&compose_dir), Vec::<String>::new());
    // The runtime state goes; the identity (its CA and keys, where it has them) stays.
    assert_eq!(crate::support::left_after_destroy(&d.state_dir()), Vec::<String>::new());
}

#[test]
fn dev_comes_up_on_compose_grows_by_a_node_and_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.yaml");
    std::fs::copy(topology("dev"), &file).unwrap();
    let d = up_on_compose(&file, "dev", 3);
    // Day 2 on containers: the new node is a new service; the others take the route by reload.
    let added = notif_infra(dir.path())
        .args(["add", "node"])
        .arg(&file)
        .arg("main")
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let plan = d.cmd("plan").output().unwrap();
    assert_contains_all(&text(&plan), &["start   main-4", "reload  main-1", "routes changed"]);
    apply_and_check(&d, 4);
    destroy_leaves_nothing(&d);
}

#[test]
fn supercluster_comes_up_on_compose() {
    let d = up_on_compose(&topology("supercluster"), "supercluster", 7);
    destroy_leaves_nothing(&d);
}

#[test]
fn secure_comes_up_on_compose_with_its_certificates_and_creds_mounted() {
    // TLS on every listener and operator mode: each container gets exactly its own files.
    let d = up_on_compose(&topology("secure"), "secure", 5);
    let project = std::fs::read_to_string(d.state_dir().join("compose/docker-compose.yml")).unwrap();
    assert!(!project.contains("ca-key.pem"), "the CA key is mounted:\n{project}");
    destroy_leaves_nothing(&d);
}

/// The MCP seed's compose file: both nodes listen on 4222 and 6222 in their containers (its
/// instances dial `nats://nats-2:4222` inside the network, its routes `nats-2:6222`), and the
/// host publishes nats-2's client port as the seed does, `4223:4222`.
#[test]
fn mcp_compose_publishes_container_ports_as_the_seed_does() {
    let dir = tempfile::tempdir().unwrap();
    render_into(&topology("mcp"), &dir.path().join("out"));
    let check = std::process::Command::new(compose_binary())
        .current_dir(dir.path().join("out").join("compose"))
        .args(["config", "--format", "json"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let v: Value = serde_json::from_slice(&check.stdout).unwrap();
    let client_port = |service: &str| {
        v["services"][service]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["target"] == 4222)
            .map(|p| p["published"].as_str().unwrap().to_string())
    };
    assert_eq!(client_port("nats-1").as_deref(), Some("4222"));
    assert_eq!(client_port("nats-2").as_deref(), Some("4223"));
    let conf = std::fs::read_to_string(dir.path().join("out/nats/nats-2.conf")).unwrap();
    assert!(conf.contains("listen: \"0.0.0.0:4222\""), "{conf}");
    let nats1 = std::fs::read_to_string(dir.path().join("out/nats/nats-1.conf")).unwrap();
    assert!(nats1.contains("nats-route://nats-2:6222"), "{nats1}");
}
