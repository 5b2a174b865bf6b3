//! The local target against real nats-server processes: apply, verify, re-apply, change,
//! break and destroy.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

use std::path::Path;

use crate::support::{Deployment, ENV, STRIDE, alive, assert_contains_all, get_json, json_of, nats_server, text, topology};

#[test]
fn dev_apply_verify_reapply_destroy() {
    let d = Deployment::new(&topology("dev"), "dev", 3);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Topology `dev` on target local: verified"), "{}", text(&out));

    let out = d.cmd("verify").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["ok"], true);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["name"], format!("main-{}", i + 1));
        assert_eq!(n["region"], "main");
        assert_eq!(n["client_url"], format!("nats://127.0.0.1:{}", d.port_base + STRIDE * i as u16));
        assert_eq!(n["monitor_url"], d.monitor_url(i as u16));
    }
    let links = v["links"].as_array().unwrap();
    assert_eq!(links.len(), 6, "a full mesh of 3 nodes is 6 directed routes");
    assert!(links.iter().all(|l| l["kind"] == "route" && l["ok"] == true));
    let meta = v["jetstream"].as_array().unwrap();
    assert_eq!(meta.len(), 3);
    assert!(meta.iter().all(|m| m["ok"] == true && m["cluster_size"] == 3));
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 6);
    assert!(probes.iter().all(|p| p["ok"] == true));
    let streams: Vec<(&str, &str, u64)> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["ok"], true, "{s}");
            (
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["replicas"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(streams, [("stream", "EVENTS", 3), ("kv", "config", 3)]);

    // A second apply changes nothing: same processes, plan empty.
    let pids = d.pids();
    assert_eq!(pids.len(), 3);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    let mut again = d.pids();
    again.sort();
    let mut before = pids.clone();
    before.sort();
    assert_eq!(before, again);
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(pids.iter().all(|p| !alive(*p)), "servers left running");
    let left: Vec<String> = std::fs::read_dir(d.state_dir())
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|name| name == "pki" || name == "auth"),
        "runtime state left behind: {left:?}"
    );
}

#[test]
fn supercluster_with_leafnode_verifies_links_and_probes() {
    let d = Deployment::new(&topology("supercluster"), "supercluster", 7);
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["verify"]["ok"], true);
    assert_eq!(v["plan"]["keys"].as_array().unwrap().len(), 3, "APP and SYS users, leaf link key");
    // The state records the config each server was given, the leaf's link seed with it.
    let state = d.state_dir().join("state.json");
    assert!(std::fs::read_to_string(&state).unwrap().contains("\"nkey_seed\": \"SU"));
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o600);

    let out = d.cmd("verify").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    let links = v["links"].as_array().unwrap();
    let count = |kind: &str| links.iter().filter(|l| l["kind"] == kind && l["ok"] == true).count();
    assert_eq!(count("route"), 12);
    assert_eq!(count("gateway"), 8, "6 outbound + 2 per-region inbound sums");
    assert_eq!(count("leaf"), 1);
    let leaf = links.iter().find(|l| l["kind"] == "leaf").unwrap();
    assert_eq!((leaf["from"].as_str(), leaf["to"].as_str()), (Some("edge"), Some("east")));
    assert!(v["jetstream"].as_array().unwrap().iter().all(|m| m["cluster_size"] == 6));
    let probes = v["probes"].as_array().unwrap();
    let gateway = probes.iter().filter(|p| p["kind"] == "gateway" && p["ok"] == true).count();
    assert_eq!(gateway, 6, "each node's outbound gateway to the other region");
    // Each gateway's evidence names the node of the other region its message reached.
    for p in probes.iter().filter(|p| p["kind"] == "gateway") {
        let to = p["to"].as_str().unwrap();
        assert!(p["detail"].as_str().unwrap().contains(&format!(" at {to}-")), "{p}");
    }
    let negative = probes
        .iter()
        .find(|p| p["expect_delivery"] == false)
        .expect("a negative probe for deny_import");
    assert_eq!(negative["kind"], "leaf_import");
    assert_eq!(negative["subject"], "secret.probe");
    assert_eq!(negative["ok"], true, "{negative}");
    assert!(
        probes
            .iter()
            .any(|p| p["kind"] == "leaf_import" && p["expect_delivery"] == true && p["ok"] == true)
    );

    // The hub really binds the leaf to APP, as the live server reports it.
    let hub_leafs: Vec<Value> = (0..3)
        .flat_map(|slot| {
            get_json(&format!("{}/leafz", d.monitor_url(slot)))["leafs"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(hub_leafs.len(), 1);
    assert_eq!(hub_leafs[0]["account"], "APP");
}

/// `verify --format nagios` (and `prometheus`, which promtool must accept): its line and exit
/// code as natscli gives them.
fn monitoring_formats(d: &Deployment) -> (Option<i32>, String, String) {
    let nagios = d.cmd("verify").args(["--timeout", "2", "--format", "nagios"]).output().unwrap();
    let prometheus = d.cmd("verify").args(["--timeout", "2", "--format", "prometheus"]).output().unwrap();
    assert_eq!(
        prometheus.status.code(),
        Some(0),
        "a Prometheus-format run always exits 0: {}",
        text(&prometheus)
    );
    let mut promtool = std::process::Command::new(crate::ssh_hosts::tools().join("bin/promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(&prometheus.stdout).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "promtool refuses the exposition: {}", text(&checked));
    (
        nagios.status.code(),
        String::from_utf8_lossy(&nagios.stdout).into_owned(),
        String::from_utf8_lossy(&prometheus.stdout).into_owned(),
    )
}

#[test]
fn killing_a_node_fails_verify_naming_its_links() {
    let d = Deployment::new(&topology("dev"), "dev", 3);
    let out = d.cmd("apply").args(["--timings", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Where apply's time went, phase by phase, adding up to no more than the whole.
    let timings = &json_of(&out)["timings"];
    let phases: Vec<&str> = timings["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "prepare: keys, render, read the live state, plan",
        "rollout: starts, each answering with its digest (3)",
        "rollout: JetStream objects applied (3)",
        "verify: health, links and meta group up",
        "verify: message probes (6)",
    ] {
        assert!(phases.contains(&expected), "{expected:?} not in {phases:?}");
    }
    let summed: f64 = timings["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ms"].as_f64().unwrap())
        .sum();
    assert!(summed <= timings["total_ms"].as_f64().unwrap(), "{timings}");
    let (code, line, metrics) = monitoring_formats(&d);
    assert_eq!(code, Some(0), "{line}");
    assert!(
        metrics.contains("notif_infra_check_store_used_ratio{topology=\"dev\",target=\"local\",kind=\"store\",subject=\"main-1\"}"),
        "{metrics}"
    );
    // A store threshold below what is used makes the store check CRITICAL.
    let out = d.cmd("verify").args(["--format", "nagios", "--crit-store", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("store main-1: JetStream store "),
        "{}",
        text(&out)
    );
    assert!(line.starts_with("OK notif-infra dev: ") && line.contains(" | checks="), "{line}");
    assert!(
        metrics.contains("notif_infra_verify_status{topology=\"dev\",target=\"local\"} 0"),
        "{metrics}"
    );
    // A probe slower than an impossible threshold is a WARNING (exit 1), not a failure.
    let out = d
        .cmd("verify")
        .args(["--format", "nagios", "--warn-latency", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("WARNING notif-infra dev: "),
        "{}",
        text(&out)
    );

    let victim = d.pid("main-2").unwrap();
    std::process::Command::new("kill")
        .arg("-9")
        .arg(victim.to_string())
        .status()
        .unwrap();

    let (code, line, metrics) = monitoring_formats(&d);
    assert_eq!(code, Some(2), "{line}");
    assert!(
        line.starts_with("CRITICAL notif-infra dev: ") && line.contains("node main-2 unhealthy"),
        "{line}"
    );
    assert!(metrics.contains("kind=\"node\",subject=\"main-2\"} 2"), "{metrics}");
    assert!(
        metrics.contains("notif_infra_verify_status{topology=\"dev\",target=\"local\"} 2"),
        "{metrics}"
    );

    let out = d.cmd("verify").args(["--timeout", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_contains_all(
        &report,
        &[
            "NOT verified",
            "node main-2 unhealthy",
            "route main-1 -> main-2 missing",
            "route main-3 -> main-2 missing",
            "route main-2 -> main-1 missing",
        ],
    );
    assert!(
        !report.contains("route main-1 -> main-3 missing"),
        "healthy links are not reported missing:\n{report}"
    );

    // The picture of the last verification: main-2's routes red, the others green.
    let out = d.cmd("graph").args(["--format", "dot", "--live"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(
        &text(&out),
        &[
            "\"main-1\" -- \"main-2\" [color=red];",
            "\"main-2\" -- \"main-3\" [color=red];",
            "\"main-1\" -- \"main-3\" [color=green];",
        ],
    );

    // plan sees the dead server and apply brings it back. The streams it hosted still exist:
    // a listing the cluster could not complete during the election must not say otherwise.
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("start   main-2"), "{}", text(&out));
    assert!(!text(&out).contains("stream EVENTS"), "{}", text(&out));
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn digest_of(conf: &std::path::Path) -> String {
    let out = std::process::Command::new(nats_server())
        .arg("-t")
        .arg("-c")
        .arg(conf)
        .envs(ENV.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    format!(
        "sha256:{}",
        stderr.split("(sha256:").nth(1).unwrap().trim_end().trim_end_matches(')')
    )
}

#[test]
fn a_change_to_a_shared_file_reloads_every_server_that_includes_it() {
    let mut d = Deployment::new(Path::new("shared.yaml"), "shared", 4);
    let file = d.dir.path().join("shared.yaml");
    let write = |users: &str| {
        let text = format!(
            "name: shared\nregions:\n  east:\n    nodes: 2\n  west:\n    nodes: 2\naccounts:\n  SYS:\n    system: true\n  APP:\n    users:\n      - user: app\n        password: ${{APP_PASS}}\n{users}"
        );
        std::fs::write(&file, text).unwrap()
    };
    write("");
    d.topology = file.clone();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pids = d.pids();

    // A new user is a change to the accounts file alone, which every server includes.
    write("      - user: ops\n        password: ${ADMIN_PASS}\n");
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_contains_all(
        &plan,
        &[
            "~ nats/_accounts.conf",
            "+        user: \"ops\"",
            "~   reload  east-1",
            "~   reload  east-2",
            "~   reload  west-1",
            "~   reload  west-2",
            "accounts changed",
        ],
    );
    assert!(!plan.contains("nats/east-1.conf"), "no server's own config changes:\n{plan}");
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(d.pids(), pids, "a reload keeps the processes");
    for (slot, name) in ["east-1", "east-2", "west-1", "west-2"].iter().enumerate() {
        let varz = get_json(&format!("{}/varz", d.monitor_url(slot as u16)));
        let conf = d.state_dir().join("nats").join(format!("{name}.conf"));
        assert_eq!(
            varz["config_digest"],
            digest_of(&conf),
            "{name} runs the rendered file and what it includes"
        );
    }
    let url = format!("nats://127.0.0.1:{}", d.port_base + 3 * STRIDE);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        async_nats::ConnectOptions::with_user_and_password("ops".into(), "admin-secret".into())
            .connect(url.as_str())
            .await
            .expect("the new user connects to a server of the other region");
    });
    assert_eq!(d.cmd("plan").output().unwrap().status.code(), Some(0));
}

#[test]
fn changed_setting_is_planned_then_reloaded_or_restarted() {
    let mut d = Deployment::new(&topology("dev"), "dev", 3);
    let file = d.dir.path().join("dev.yaml");
    let write = |defaults: &str, js: &str| {
        std::fs::write(
            &file,
            format!("name: dev\ndefaults:\n{defaults}regions:\n  main:\n    nodes: 3\n    jetstream: {js}\n"),
        )
        .unwrap()
    };
    write("  max_payload: 1MB\n", "true");
    d.topology = file.clone();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pids = d.pids();

    // A reloadable change: the plan shows the config diff and a reload for every server.
    write("  max_payload: 2MB\n", "true");
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_contains_all(
        &plan,
        &[
            "~ nats/main-1.conf",
            "-max_payload: 1048576",
            "+max_payload: 2097152",
            "~   reload  main-1",
            "max_payload changed",
        ],
    );
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("main-1: reloaded"), "{}", text(&out));
    assert_eq!(d.pids(), pids, "a reload keeps the processes");
    for (slot, name) in ["main-1", "main-2", "main-3"].iter().enumerate() {
        let varz = get_json(&format!("{}/varz", d.monitor_url(slot as u16)));
        assert_eq!(varz["max_payload"], 2097152);
        let conf = d.state_dir().join("nats").join(format!("{name}.conf"));
        assert_eq!(varz["config_digest"], digest_of(&conf), "{name} runs the rendered file");
    }
    assert_eq!(d.cmd("plan").output().unwrap().status.code(), Some(0));

    // Lowering a JetStream limit cannot be reloaded: the plan says restart, and apply does it.
    write("  max_payload: 2MB\n", "{ max_memory_store: 64MB }");
    let out = d.cmd("plan").args(["-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let plan = json_of(&out);
    let actions: Vec<&str> = plan["plan"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restart", "restart", "restart"]);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let after = d.pids();
    assert!(after.iter().all(|p| !pids.contains(p)), "every server was restarted");
    assert!(pids.iter().all(|p| !alive(*p)));
}

/// Messages received on `subscribe_url` for `subject` while 20 are published on `publish_url`
/// (after giving interest time to spread).
fn crossing(publish_url: &str, subscribe_url: &str, subject: &str) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::StreamExt;
        let subscriber = async_nats::connect(subscribe_url).await.unwrap();
        let mut sub = subscriber.subscribe(subject.to_string()).await.unwrap();
        subscriber.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let publisher = async_nats::connect(publish_url).await.unwrap();
        for i in 0..20 {
            publisher.publish(subject.to_string(), format!("{i}").into()).await.unwrap();
        }
        publisher.flush().await.unwrap();
        let mut got = 0;
        while let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(700), sub.next()).await {
            got += 1;
        }
        got
    })
}

/// `isolate_leafnode_interest` (nats-server 2.12+) on the hub region, proven by what crosses:
/// one leafnode's subscriber is not seen by the other leafnode of the same hub server, so the
/// other's messages stay home, while the hub's own messages reach it. Turned off, plan restarts
/// the hub (the setting does not reload) and the messages cross.
#[test]
fn leafnode_isolation_keeps_one_leafs_interest_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("iso.yaml");
    let topology = |isolate: bool| {
        format!(
            "name: iso\nregions:\n  main:\n    nodes: 1\n    isolate_leafnode_interest: {isolate}\nleafnodes:\n  edge-a: {{ hub: main }}\n  edge-b: {{ hub: main }}\n"
        )
    };
    std::fs::write(&file, topology(true)).unwrap();
    let d = Deployment::new(&file, "iso", 3);
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let conf = std::fs::read_to_string(d.state_dir().join("nats/main-1.conf")).unwrap();
    assert!(conf.contains("isolate_leafnode_interest: true"), "{conf}");
    let report = json_of(&out);
    let url = |name: &str| {
        report["verify"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()["client_url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (hub, a, b) = (url("main-1"), url("edge-a"), url("edge-b"));
    assert_eq!(crossing(&hub, &b, "iso.x"), 20, "the hub reaches edge-b");
    assert_eq!(crossing(&a, &b, "iso.y"), 0, "edge-a does not see edge-b's interest");

    std::fs::write(&file, topology(false)).unwrap();
    let out = d.cmd("plan").args(["-o", "json"]).output().unwrap();
    let servers = json_of(&out)["plan"]["servers"].clone();
    let taken: Vec<(&str, &str)> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["server"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    assert_eq!(taken, [("main-1", "restart")], "{servers}");
    assert!(d.cmd("apply").output().unwrap().status.success());
    assert_eq!(crossing(&a, &b, "iso.z"), 20, "without isolation edge-a's messages reach edge-b");
    assert!(d.cmd("destroy").output().unwrap().status.success());
}
