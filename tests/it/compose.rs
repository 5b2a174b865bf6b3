//! Rendered compose projects: accepted by Docker Compose v2's own `config -q` (installed by
//! scripts/install-tools.sh), one service per server with its config mounted, every published
//! host port distinct.

use serde_json::Value;
use std::collections::HashSet;

use crate::support::{notif_infra, project_root, topology};

fn compose_binary() -> std::path::PathBuf {
    project_root().join(".tools").join("bin").join("docker-compose")
}

#[test]
fn every_single_host_topology_renders_a_compose_project_compose_accepts() {
    for name in ["dev", "supercluster", "rsfga", "covenant", "notif-hybrid", "mcp", "unityplan"] {
        let dir = tempfile::tempdir().unwrap();
        let out = notif_infra(dir.path())
            .args(["render", "--out", "out"])
            .arg(topology(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let project = dir.path().join("out");
        let file = project.join("compose").join("docker-compose.yml");
        if name == "unityplan" {
            // Its servers are dialled by WireGuard addresses: one host each, not one project.
            assert!(!file.exists(), "{name}");
            continue;
        }
        let check = std::process::Command::new(compose_binary())
            .current_dir(&project)
            .args(["-f", "compose/docker-compose.yml", "config", "-q"])
            .output()
            .unwrap_or_else(|e| panic!("run scripts/install-tools.sh for docker-compose: {e}"));
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
        let confs = std::fs::read_dir(project.join("nats")).unwrap().count();
        assert_eq!(services.len(), confs, "{name}: a service per rendered server config");
        let mut host_ports = HashSet::new();
        for (service, spec) in services {
            for p in spec["ports"].as_array().unwrap() {
                assert!(
                    host_ports.insert(p["published"].as_str().unwrap().to_string()),
                    "{name}: {service} reuses a host port"
                );
            }
            let conf = spec["volumes"][0]["source"].as_str().unwrap();
            assert!(conf.ends_with(&format!("nats/{service}.conf")), "{name}: {service} mounts {conf}");
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
