//! Every shipped seed topology comes up on the local target and verifies, link by link, with
//! messages, and with the traffic its document describes (`verify --flows`: every declared flow
//! proven live as the declared users), and no command output carries a generated seed.

use serde_json::Value;
use std::path::Path;

use crate::support::{Deployment, topology};

/// Applies `file`, checks the verification report and that nothing printed a seed; the
/// deployment is torn down when the returned handle drops.
fn comes_up_and_verifies(file: &Path, name: &str, servers: u16) -> (Deployment, Value) {
    let d = Deployment::new(file, name, servers);
    let apply = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    let verify = d.cmd("verify").args(["--flows", "-o", "json"]).output().unwrap();
    let plan = d.cmd("plan").output().unwrap();
    let outputs = [&apply, &verify, &plan];
    let printed: String = outputs
        .iter()
        .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        .collect();
    assert!(apply.status.success(), "{printed}");
    assert!(verify.status.success(), "{printed}");
    assert_eq!(plan.status.code(), Some(0), "plan after apply must be empty:\n{printed}");

    // Topologies with accounts get a probe user per account (and leaf link users): nkeys.
    let seeds = seeds_under(&d.state_dir());
    let has_accounts = std::fs::read_to_string(file).unwrap().contains("\naccounts:");
    assert_eq!(seeds.is_empty(), !has_accounts, "{seeds:?}");
    for seed in &seeds {
        assert!(!printed.contains(seed.as_str()), "a seed was printed");
    }

    let v: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["nodes"].as_array().unwrap().len(), servers as usize);
    let links = v["links"].as_array().unwrap();
    assert!(!links.is_empty());
    assert!(links.iter().all(|l| l["ok"] == true), "{links:?}");
    let probes = v["probes"].as_array().unwrap();
    assert!(probes.iter().all(|p| p["ok"] == true), "{probes:?}");

    // Every stream, bucket and object store the file names is on the servers, placed and current.
    let declared = validated(file);
    let objects = ["streams", "kv", "object_stores"]
        .iter()
        .map(|k| declared[*k].as_u64().unwrap())
        .sum::<u64>();
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len() as u64, objects, "{streams:?}");
    assert!(streams.iter().all(|s| s["ok"] == true), "{streams:?}");

    // Seed topologies carry their documents' flows: at least three, with isolation (`never`);
    // every shipped topology reads each of its consumers as its application.
    let flows = v["flows"].as_array().unwrap();
    assert!(flows.iter().all(|f| f["ok"] == true), "{flows:?}");
    if file.starts_with(crate::support::project_root().join("topologies")) {
        if name != "dev" {
            let mut names: Vec<&str> = flows.iter().map(|f| f["name"].as_str().unwrap()).collect();
            names.dedup();
            assert!(names.len() >= 3, "{names:?}");
            assert!(flows.iter().any(|f| f["expect"] == "never"), "{flows:?}");
        }
        assert!(flows.iter().any(|f| f["expect"] == "reaches"), "{flows:?}");
        // Every consumer is read, live, by the application declared to read it.
        let mut read: Vec<&str> = flows
            .iter()
            .filter(|f| f["expect"] == "reaches" && f["ok"] == true)
            .filter_map(|f| f["target"].as_str()?.strip_prefix("consumer "))
            .filter_map(|t| t.split_once(" read by ").map(|(consumer, _)| consumer))
            .collect();
        read.sort();
        read.dedup();
        assert_eq!(
            read.len() as u64,
            declared["consumers"].as_u64().unwrap(),
            "consumers read: {read:?}"
        );
    }
    (d, v)
}

fn client_url(v: &Value, server: &str) -> String {
    let nodes = v["nodes"].as_array().unwrap();
    let node = nodes.iter().find(|n| n["name"] == server).unwrap();
    node["client_url"].as_str().unwrap().to_string()
}

fn seeds_under(state: &Path) -> Vec<String> {
    let dir = state.join("auth").join("nkeys");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap().trim().to_string())
        .collect()
}

fn count(v: &Value, field: &str, kind: &str) -> usize {
    v[field].as_array().unwrap().iter().filter(|x| x["kind"] == kind).count()
}

#[test]
fn rsfga_super_cluster_with_leaf_comes_up() {
    let (d, v) = comes_up_and_verifies(&topology("rsfga"), "rsfga", servers_of("rsfga"));
    assert!(count(&v, "links", "gateway") > 0);
    assert!(count(&v, "links", "leaf") > 0);

    // The seed's edge sync with a stock client: a change written in central is pulled by Tokyo's
    // sync agent, on the Tokyo edge, from its consumer of RSFGA_CHANGES through the regions'
    // domain, and acked.
    let pki = d.state_dir().join("pki");
    let login = |user: &str, password: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
            .require_tls(true)
            .add_root_certificates(pki.join("ca.pem"))
            .add_client_certificate(
                pki.join(format!("clients/RSFGA/{user}.pem")),
                pki.join(format!("clients/RSFGA/{user}-key.pem")),
            )
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::StreamExt;
        let writer = login("writer", "writer-secret").connect(client_url(&v, "central-1")).await.unwrap();
        let change = "rsfga.changes.store-acme-1.write.doc-77";
        writer.publish(change, "tuple change".into()).await.unwrap();
        writer.flush().await.unwrap();
        let sync = login("edge-sync-tokyo", "edge-sync-tokyo-secret")
            .connect(client_url(&v, "edge-tokyo-1"))
            .await
            .unwrap();
        let regions = async_nats::jetstream::with_domain(sync, "rsfga");
        // async-nats' own JetStream client, with only the permissions derived for the app.
        let consumer: async_nats::jetstream::consumer::PullConsumer =
            regions.get_consumer_from_stream("edge-tokyo-1", "RSFGA_CHANGES").await.unwrap();
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(std::time::Duration::from_secs(5))
            .messages()
            .await
            .unwrap();
        let message = batch.next().await.expect("the change reaches the edge").unwrap();
        assert_eq!(message.subject.as_str(), change);
        assert_eq!(message.payload.as_ref(), b"tuple change");
        message.ack().await.unwrap();
    });
}

#[test]
fn dev_comes_up() {
    comes_up_and_verifies(&topology("dev"), "dev", servers_of("dev"));
}

#[test]
fn unityplan_comes_up() {
    let (_d, v) = comes_up_and_verifies(&topology("unityplan"), "unityplan", servers_of("unityplan"));
    assert!(count(&v, "links", "route") > 0);
}

/// The seed's production layout: every pod on the same ports of its own host, routes over the
/// VPN, client and route TLS (the local target runs it on loopback, TLS included).
#[test]
fn unityplan_production_comes_up() {
    let (_d, v) = comes_up_and_verifies(
        &topology("unityplan-production"),
        "unityplan-production",
        servers_of("unityplan-production"),
    );
    assert!(count(&v, "links", "route") > 0);
}

#[test]
fn covenant_comes_up() {
    comes_up_and_verifies(&topology("covenant"), "covenant", servers_of("covenant"));
}

#[test]
fn notif_hybrid_comes_up_with_its_leafnodes() {
    let (_d, v) = comes_up_and_verifies(&topology("notif-hybrid"), "notif-hybrid", servers_of("notif-hybrid"));
    assert!(count(&v, "links", "leaf") > 0);
    assert!(v["probes"].as_array().unwrap().iter().any(|p| p["expect_delivery"] == false));
}

#[test]
fn mcp_comes_up() {
    comes_up_and_verifies(&topology("mcp"), "mcp", servers_of("mcp"));
}

/// A leaf that imports nothing from a clustered hub, without accounts: nats-server then drops
/// the leaf's own messages too, so verify proves the block and does not expect an export.
#[test]
fn leaf_denying_every_import_from_a_clustered_hub_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("isolated.yaml");
    std::fs::write(
        &file,
        "name: isolated\nregions:\n  hub:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: hub\n    deny_import: [\">\"]\n",
    )
    .unwrap();
    let (_d, v) = comes_up_and_verifies(&file, "isolated", 4);
    let probes = v["probes"].as_array().unwrap();
    let leaf: Vec<(&str, bool)> = probes
        .iter()
        .filter(|p| p["kind"] != "route")
        .map(|p| (p["kind"].as_str().unwrap(), p["expect_delivery"].as_bool().unwrap()))
        .collect();
    assert_eq!(leaf, vec![("leaf_import", false)]);
}

/// What `validate -o json` counts in a topology file.
fn validated(file: &Path) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::notif_infra(dir.path())
        .args(["validate", "-o", "json"])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Servers in a shipped topology.
fn servers_of(name: &str) -> u16 {
    let v = validated(&topology(name));
    (v["nodes"].as_u64().unwrap() + v["leafnodes"].as_u64().unwrap()) as u16
}
