//! A nats-server version pinned in the topology, and changed: a rolling upgrade between two real
//! releases (2.14.6 -> 2.15.1), each server in lame duck, restarted on the new binary and healthy
//! with its streams current before the next, under acknowledged publishing with zero loss.

use serde_json::Value;

use crate::load::Load;
use crate::support::{Deployment, get_json, json_of, official_tag_image, text};

fn topology(name: &str, version: &str) -> String {
    format!(
        "name: {name}\nnats_server: {{ version: \"{version}\" }}\nregions:\n  main:\n    nodes: 3\n    jetstream: true\n\
accounts:\n  APP:\n    jetstream: true\n    users:\n      - {{ user: app, password: \"${{APP_PASS}}\" }}\n\
streams:\n  EVENTS: {{ account: APP, subjects: [\"events.>\"], replicas: 3 }}\n"
    )
}

/// The versions the servers report in `/varz`, by server.
fn versions(report: &Value) -> Vec<(String, String)> {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let varz = get_json(&format!("{}/varz", n["monitor_url"].as_str().unwrap()));
            (
                n["name"].as_str().unwrap().to_string(),
                varz["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_version_change_is_a_rolling_upgrade_without_losing_an_acknowledged_message() {
    rolling_upgrade(Deployment::new(std::path::Path::new("unused"), "up", 3), "local");
}

/// On compose the version is the image tag: `nats:2.14.6`, then `nats:2.15.1` (built here FROM
/// scratch from the installed releases under those tags).
#[test]
fn a_version_change_on_compose_rolls_the_containers_onto_the_new_image() {
    official_tag_image("2.14.6");
    official_tag_image("2.15.1");
    rolling_upgrade(
        Deployment::compose_with_topology_image(std::path::Path::new("unused"), "upc", 3),
        "compose",
    );
}

fn rolling_upgrade(mut d: Deployment, target: &str) {
    d.topology = d.dir.path().join(format!("{}.yaml", d.name));
    std::fs::write(&d.topology, topology(&d.name, "2.14.6")).unwrap();
    // The pinned version picks its binary from .tools/versions/, not the suite's default one.
    let run = |verb: &str, args: &[&str]| d.cmd(verb).env_remove("NATS_SERVER_BIN").args(args).output().unwrap();

    let apply = run("apply", &["-o", "json"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let report = json_of(&run("verify", &["-o", "json"]));
    assert!(versions(&report).iter().all(|(_, v)| v == "2.14.6"), "{:?}", versions(&report));
    let urls: Vec<String> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["client_url"].as_str().unwrap().to_string())
        .collect();

    std::fs::write(&d.topology, topology(&d.name, "2.15.1")).unwrap();
    let plan = run("plan", &[]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains("nats-server version"), "{}", text(&plan));

    let load = Load::start(urls, None);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let apply = run("apply", &[]);
    assert!(apply.status.success(), "{}", text(&apply));
    let restarted = text(&apply).matches("restarted (").count();
    load.stop_and_check(&format!("a rolling upgrade from nats-server 2.14.6 to 2.15.1 on {target}"));
    assert_eq!(restarted, 3, "{}", text(&apply));

    let report = json_of(&run("verify", &["-o", "json"]));
    assert_eq!(report["ok"], true, "{report}");
    assert!(versions(&report).iter().all(|(_, v)| v == "2.15.1"), "{:?}", versions(&report));
    assert_eq!(run("plan", &[]).status.code(), Some(0));
}

/// A server left on another version is named by verify.
#[test]
fn verify_names_a_server_on_another_version_than_the_topology_pins() {
    let mut d = Deployment::new(std::path::Path::new("unused"), "pinned", 1);
    d.topology = d.dir.path().join("pinned.yaml");
    std::fs::write(&d.topology, "name: pinned\nregions:\n  main:\n    nodes: 1\n").unwrap();
    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    // The file now pins 2.14.6; the server still runs the suite's 2.15.1 until the next apply.
    std::fs::write(
        &d.topology,
        "name: pinned\nnats_server: { version: 2.14.6 }\nregions:\n  main:\n    nodes: 1\n",
    )
    .unwrap();
    let verify = d.cmd("verify").args(["--timeout", "1", "-o", "json"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    let node = &json_of(&verify)["nodes"][0];
    assert_eq!(node["healthy"], false);
    assert_eq!(node["detail"], "runs nats-server 2.15.1, the topology pins 2.14.6", "{node}");
}
