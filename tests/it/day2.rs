//! Day 2 on a running system: a node is added with `add node` + `apply` and removed again while
//! a publisher keeps sending to an R3 stream with acknowledgements; every acknowledged message
//! is in the stream afterwards.

use std::time::Duration;

use crate::load::Load;
use crate::support::{Deployment, STRIDE, assert_contains_all, json_of, text};

const TOPOLOGY: &str = "# day-2 test topology: comments must survive `add`
name: day2
regions:
  main:
    nodes: 3 # quorum of three
    jetstream: true
accounts:
  SYS:
    system: true
  APP:
    jetstream: true
    users:
      - user: app
        password: ${APP_PASS}
streams:
  EVENTS:
    subjects: [\"events.>\"]
    replicas: 3
";

/// The day-2 topology as `name`, applied from a file of its own (the commands edit it), with
/// acknowledged publishing to `events.>` already running against its three nodes.
fn deployed_under_load(name: &str, servers: u16) -> (Deployment, std::path::PathBuf, Load) {
    let mut d = Deployment::new(std::path::Path::new("day2.yaml"), name, servers);
    let file = d.dir.path().join("day2.yaml");
    d.topology = file.clone();
    std::fs::write(&file, TOPOLOGY.replace("name: day2", &format!("name: {name}"))).unwrap();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let urls: Vec<String> = (0..3).map(|i| format!("nats://127.0.0.1:{}", d.port_base + STRIDE * i)).collect();
    let load = Load::start(urls, None);
    std::thread::sleep(Duration::from_millis(300));
    (d, file, load)
}

#[test]
fn adding_and_removing_a_node_under_load_loses_no_acknowledged_message() {
    let (d, file, load) = deployed_under_load("day2", 4);

    // add node: one line changes, comments stay.
    let out = crate::support::notif_infra(d.dir.path())
        .args(["add", "node", "day2.yaml", "main"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        TOPOLOGY.replace("nodes: 3 #", "nodes: 4 #")
    );

    // The plan names the new route in every existing config and how each server takes it.
    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan = text(&out);
    let new_route = format!("\"nats-route://127.0.0.1:{}\"]", d.port_base + 3 * STRIDE + 1);
    let added_lines = plan
        .lines()
        .filter(|l| l.trim_start().starts_with("+  routes:") && l.contains(&new_route))
        .count();
    assert_eq!(added_lines, 3, "the new route in each existing node's config:\n{plan}");
    assert_contains_all(
        &plan,
        &[
            "~ nats/main-1.conf",
            "~ nats/main-2.conf",
            "~ nats/main-3.conf",
            "+ nats/main-4.conf",
            "+   start   main-4",
            "~   reload  main-1",
            "~   reload  main-3",
        ],
    );
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert!(v["verify"]["jetstream"].as_array().unwrap().iter().all(|m| m["cluster_size"] == 4));
    std::thread::sleep(Duration::from_millis(300));

    // Removing it again with `remove node`: the file is as it was, comments included; main-4
    // stops, the others reload, the meta group shrinks.
    let out = crate::support::notif_infra(d.dir.path())
        .args(["remove", "node", "day2.yaml", "main-4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TOPOLOGY);
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    let actions: Vec<(&str, &str)> = v["plan"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["server"].as_str().unwrap(), s["action"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("main-4", "stop")), "{actions:?}");
    assert!(actions.contains(&("main-1", "reload")), "{actions:?}");
    assert!(
        v["verify"]["jetstream"].as_array().unwrap().iter().all(|m| m["cluster_size"] == 3),
        "{}",
        v["verify"]
    );
    assert_eq!(v["verify"]["ok"], true);
    std::thread::sleep(Duration::from_millis(300));

    load.stop_and_check("add and removal");
}

#[test]
fn adding_a_region_rolls_the_gateway_change_without_losing_a_message() {
    let (d, _, load) = deployed_under_load("day2region", 6);

    let out = crate::support::notif_infra(d.dir.path())
        .args(["add", "region", "day2.yaml", "west", "--nodes", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = d.cmd("plan").output().unwrap();
    let plan = text(&out);
    assert_contains_all(
        &plan,
        &[
            "-/+ restart main-1",
            "-/+ restart main-2",
            "-/+ restart main-3",
            "+   start   west-1",
            "gateway",
        ],
    );
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["verify"]["ok"], true);
    let gateways = v["verify"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "gateway")
        .count();
    assert_eq!(gateways, 8, "6 outbound and 2 inbound sums");
    std::thread::sleep(Duration::from_millis(300));

    // And away again with `remove region`: its servers stop, the gateways go from every config.
    let out = crate::support::notif_infra(d.dir.path())
        .args(["remove", "region", "day2.yaml", "west"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(d.dir.path().join("day2.yaml")).unwrap(),
        TOPOLOGY.replace("name: day2", "name: day2region")
    );
    let out = d.cmd("plan").output().unwrap();
    assert_contains_all(
        &text(&out),
        &[
            "-   stop    west-1",
            "-   stop    west-3",
            "-/+ restart main-1",
            "remove west-2 from the JetStream meta group",
        ],
    );
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["verify"]["ok"], true, "{}", v["verify"]);
    assert!(!v["verify"]["links"].as_array().unwrap().iter().any(|l| l["kind"] == "gateway"));
    std::thread::sleep(Duration::from_millis(300));

    load.stop_and_check("adding and removing a region (two rolling restarts)");
}

const PODS: &str = "# seed 002's pods: one region, four named pods
name: pods
regions:
  main:
    jetstream: true
    nodes:
      - name: pod-a
      - name: pod-b
      # the pod on the spare host
      - name: pod-c
      - name: pod-d
accounts:
  SYS:
    system: true
  APP:
    jetstream: true
    users:
      - user: app
        password: ${APP_PASS}
streams:
  EVENTS:
    account: APP
    subjects: [\"events.>\"]
    replicas: 3
";

/// EVENTS' replicas online in its group (leader and followers not offline) every 50 ms until
/// stopped; samples taken during an election (no leader) are counted apart. (A follower's
/// `current` flag flickers under load even when nothing changes, so it is not what is counted.)
struct ReplicaWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<usize>, usize)>,
}

impl ReplicaWatch {
    fn start(urls: Vec<String>) -> ReplicaWatch {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let addrs: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().unwrap()).collect();
                let client = async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
                    .connect(addrs)
                    .await
                    .unwrap();
                let (mut current, mut elections) = (Vec::new(), 0);
                while !flag.load(Ordering::Relaxed) {
                    let info = tokio::time::timeout(Duration::from_secs(2), client.request("$JS.API.STREAM.INFO.EVENTS", "".into())).await;
                    match info {
                        Ok(Ok(reply)) => {
                            let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
                            let cluster = &v["cluster"];
                            if cluster["leader"].as_str().is_some_and(|l| !l.is_empty()) {
                                let followers = cluster["replicas"].as_array().cloned().unwrap_or_default();
                                current.push(1 + followers.iter().filter(|r| r["offline"] != true).count());
                            } else {
                                elections += 1;
                            }
                        }
                        _ => elections += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (current, elections)
            })
        });
        ReplicaWatch { stop, thread }
    }

    fn stop(self) -> (Vec<usize>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Seed 002's remove-a-pod procedure as one command: the pod that leads EVENTS is removed while
/// a publisher sends with acknowledgements. apply gives EVENTS a replica elsewhere before the
/// pod stops and drops the pod from its group after: EVENTS never has fewer than three current
/// replicas, and no acknowledged message is lost.
#[test]
fn removing_the_pod_that_leads_a_stream_moves_its_replica_first_and_loses_nothing() {
    let mut d = Deployment::new(std::path::Path::new("pods.yaml"), "pods", 4);
    let file = d.dir.path().join("pods.yaml");
    d.topology = file.clone();
    std::fs::write(&file, PODS).unwrap();
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    let victim = v["verify"]["streams"][0]["leader"].as_str().unwrap().to_string();
    let urls: Vec<String> = (0..4).map(|i| format!("nats://127.0.0.1:{}", d.port_base + STRIDE * i)).collect();
    let load = Load::start(urls.clone(), None);
    let watch = ReplicaWatch::start(urls);
    std::thread::sleep(Duration::from_millis(300));

    let remove = |name: &str| {
        crate::support::notif_infra(d.dir.path())
            .args(["remove", "node", "pods.yaml", name])
            .output()
            .unwrap()
    };
    let out = remove(&victim);
    assert!(out.status.success(), "{}", text(&out));
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(!edited.contains(&format!("name: {victim}")));
    assert!(edited.starts_with("# seed 002's pods"), "{edited}");

    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_contains_all(
        &text(&out),
        &[
            &format!("move the replica of stream EVENTS (account APP) off {victim}: R4 before it stops, back to R3 without it after"),
            &format!("remove {victim} from the JetStream meta group"),
            &format!("-   stop    {victim}"),
        ],
    );
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["verify"]["ok"], true, "{}", v["verify"]);
    assert!(v["verify"]["jetstream"].as_array().unwrap().iter().all(|m| m["cluster_size"] == 3));
    let stream = &v["verify"]["streams"][0];
    assert_eq!(
        (stream["replicas"].as_u64(), stream["ok"].as_bool()),
        (Some(3), Some(true)),
        "{stream}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (online, elections) = watch.stop();
    let fewest = online.iter().min().copied().unwrap_or(0);
    eprintln!(
        "EVENTS while {victim} was removed: {} samples, fewest replicas online {fewest}, most {}, {elections} sample(s) during a leader change",
        online.len(),
        online.iter().max().copied().unwrap_or(0)
    );
    assert!(fewest >= 3, "EVENTS had {fewest} replica(s) online at some point: {online:?}");
    load.stop_and_check(&format!("the removal of {victim}, the stream's leader"));

    // With three pods left, removing one more would leave R3 EVENTS two: refused, file kept.
    let before = std::fs::read_to_string(&file).unwrap();
    let remaining = ["pod-a", "pod-b", "pod-c", "pod-d"].into_iter().find(|p| *p != victim).unwrap();
    let out = remove(remaining);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("stream `EVENTS` wants 3 replicas but region `main` has 2 node(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

/// A second leafnode on a hub that has one already: its hub's nodes (and the other region's,
/// which hold the same accounts) reload to know the new link user, the leaf starts, nothing
/// restarts; the new leaf is verified like the first.
#[test]
fn adding_a_leafnode_reloads_the_hub_and_restarts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaves.yaml");
    let base = std::fs::read_to_string(crate::support::topology("supercluster")).unwrap();
    std::fs::write(&file, &base).unwrap();
    let d = Deployment::new(&file, "supercluster", 8);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let with_second = base.replacen("accounts:\n", "  edge2:\n    hub: east\n    account: APP\naccounts:\n", 1);
    assert_ne!(with_second, base);
    std::fs::write(&file, with_second).unwrap();
    let out = d.cmd("plan").args(["-o", "json"]).output().unwrap();
    let servers = json_of(&out)["plan"]["servers"].clone();
    let taken: Vec<(String, String)> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["server"].as_str().unwrap().to_string(), s["action"].as_str().unwrap().to_string()))
        .collect();
    assert!(taken.contains(&("edge2".into(), "start".into())), "{taken:?}");
    assert!(!taken.iter().any(|(_, a)| a == "restart"), "{taken:?}");
    assert_eq!(taken.iter().filter(|(_, a)| a == "reload").count(), 6, "{taken:?}");
    let out = d.cmd("apply").args(["-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let links = json_of(&out)["verify"]["links"].clone();
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "leaf" && l["from"] == "edge2" && l["ok"] == true),
        "{links}"
    );
}
