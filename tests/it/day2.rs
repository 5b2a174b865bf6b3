//! Day 2 on a running system: a node is added with `add node` + `apply` and removed again while
//! a publisher keeps sending to an R3 stream with acknowledgements; every acknowledged message
//! is in the stream afterwards.

use std::time::Duration;

use crate::load::Load;
use crate::support::{Deployment, assert_contains_all, json_of, text};

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

    let urls: Vec<String> = (0..3).map(|i| format!("nats://127.0.0.1:{}", d.port_base + 10 * i)).collect();
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
    let new_route = format!("\"nats-route://127.0.0.1:{}\"]", d.port_base + 31);
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

    // Removing it again, by hand: main-4 stops, the others reload, the meta group shrinks.
    std::fs::write(&file, TOPOLOGY).unwrap();
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

    load.stop_and_check("the rolling restart");
}
