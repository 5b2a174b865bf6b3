//! Traced flows: `verify --flows --trace` sends each flow's message with `Nats-Trace-Dest`
//! (nats-server's own message tracing) and prints the hops the servers recorded; a flow's
//! `via:` must appear on its path, and when a link is down the report says where it stopped.

use serde_json::json;

use crate::support::{Deployment, json_of, text, topology};

/// The supercluster (east and west joined by gateways, leafnode `edge` on east) with two
/// flows: one from east to a subscriber in west, one from the leafnode through east to west.
fn supercluster_with_flows(dir: &std::path::Path) -> std::path::PathBuf {
    let base = std::fs::read_to_string(topology("supercluster")).unwrap();
    let flows = "flows:\n  east-to-west:\n    publish: { user: APP/app, at: east, subject: orders.created }\n    reaches:\n      - subscriber: { user: APP/app, at: west, subject: \"orders.>\" }\n    via: [east, west]\n  edge-to-west:\n    publish: { user: APP/app, at: edge, subject: orders.shipped }\n    reaches:\n      - subscriber: { user: APP/app, at: west, subject: \"orders.>\" }\n    via: [edge, east, west]\n";
    let path = dir.join("traced.yaml");
    std::fs::write(&path, format!("{base}{flows}")).unwrap();
    path
}

#[test]
fn a_traced_flow_shows_its_gateway_hop_and_names_where_it_stopped_when_the_link_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = supercluster_with_flows(dir.path());
    let d = Deployment::new(&file, "supercluster", 7);
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let out = d.cmd("verify").args(["--flows", "--trace"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(table.contains("Traced paths"), "{table}");
    eprintln!("{}", &table[table.find("Traced paths").unwrap()..]);
    let out = d.cmd("verify").args(["--flows", "--trace", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out);
    let traces = report["traces"].as_array().unwrap();
    let trace = |name: &str| {
        traces
            .iter()
            .find(|t| t["flow"] == name)
            .unwrap_or_else(|| panic!("no trace of {name}: {report}"))
    };

    // East to west: a client hop in east, then in through a gateway in west.
    let hops = trace("east-to-west")["hops"].as_array().unwrap();
    assert_eq!(hops[0]["site"], "east", "{hops:?}");
    assert!(hops[0]["came_in"].as_str().unwrap().starts_with("client"), "{hops:?}");
    assert!(
        hops[0]["went_out"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("gateway to west-")),
        "{hops:?}"
    );
    let west = hops.iter().find(|h| h["site"] == "west").expect("a hop in west");
    assert!(west["came_in"].as_str().unwrap().starts_with("gateway from east-"), "{hops:?}");
    assert_eq!(west["hop"], "1", "{west}");
    // From the leafnode: leaf, then east through the leafnode connection, then west by gateway.
    let hops = trace("edge-to-west")["hops"].as_array().unwrap();
    let sites: Vec<&str> = hops.iter().map(|h| h["site"].as_str().unwrap()).collect();
    assert_eq!(sites.first(), Some(&"edge"), "{hops:?}");
    assert!(
        hops.iter()
            .any(|h| h["site"] == "east" && h["came_in"].as_str().unwrap().starts_with("leafnode from")),
        "{hops:?}"
    );
    assert!(
        hops.iter()
            .any(|h| h["site"] == "west" && h["came_in"].as_str().unwrap().starts_with("gateway from east-")),
        "{hops:?}"
    );

    // Static accounts: `output` names the password's variable, never the password, and its
    // context's URLs, with that password, let a client in.
    let out = d.cmd("output").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let access = json_of(&out);
    let app = &access["users"][0];
    assert_eq!(
        (&app["account"], &app["user"], &app["password_env"]),
        (&json!("APP"), &json!("app"), &json!("APP_PASS")),
        "{access:#}"
    );
    assert!(!text(&out).contains("app-secret"));
    assert_eq!(access["sites"]["edge"].as_array().unwrap().len(), 1, "{access:#}");
    let urls: Vec<String> = app["context"]["url"].as_str().unwrap().split(',').map(String::from).collect();
    assert_eq!(urls.len(), 6, "{access:#}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let addrs: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().unwrap()).collect();
        let client = async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
            .connect(addrs)
            .await
            .expect("the context's URLs and user let a client in");
        client.flush().await.unwrap();
    });

    // West goes away: both flows fail their `via: west`, naming where the message stopped.
    for server in ["west-1", "west-2", "west-3"] {
        let pid = d.pid(server).unwrap();
        std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    }
    let out = d
        .cmd("verify")
        .args(["--flows", "--trace", "--timeout", "2s", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json_of(&out);
    // Nothing in west wants it any more: the message stops at the last server it reached.
    for (flow, stopped) in [
        ("east-to-west", "it did not pass through west: it stopped at east-"),
        ("edge-to-west", "it did not pass through east, west: it stopped at edge (edge"),
    ] {
        let t = report["traces"].as_array().unwrap().iter().find(|t| t["flow"] == flow).unwrap();
        assert_eq!(t["ok"], false, "{t}");
        assert!(t["detail"].as_str().unwrap().starts_with(stopped), "{t}");
        assert!(t["via"].as_array().unwrap().contains(&serde_json::json!(["west", false])), "{t}");
    }
    let checks = report["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["kind"] == "flow path" && c["level"] == "CRITICAL"),
        "{checks:?}"
    );
    assert!(d.cmd("destroy").output().unwrap().status.success());
}
