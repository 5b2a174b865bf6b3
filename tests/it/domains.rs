//! The JetStream schema parts the seeds write, live: the regions' own JetStream domain, reached
//! by a client on a leafnode through `$JS.<domain>.API`, and encryption at rest, whose key is
//! read from the servers' environment and whose stored files hold no payload in clear.

use serde_json::Value;
use std::path::Path;

use crate::support::{Deployment, json_of, text};

const KEY: &str = "a-test-encryption-key-of-32-chars";

/// Applies `yaml` on the local target with the encryption key in the environment (the topology
/// file lives in the deployment's own directory).
fn applied(yaml: &str, name: &str, servers: u16) -> (Deployment, Value) {
    let mut d = Deployment::new(Path::new("unused"), name, servers);
    d.topology = d.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&d.topology, yaml).unwrap();
    let apply = d.cmd("apply").env("JS_KEY", KEY).args(["-o", "json"]).output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let verify = d.cmd("verify").args(["-o", "json"]).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    (d, json_of(&verify))
}

fn client_url(report: &Value, server: &str) -> String {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == server)
        .and_then(|n| n["client_url"].as_str())
        .unwrap()
        .to_string()
}

/// The regions' JetStream in domain `hub`, a leafnode's own in `edge`: a client on the leaf
/// publishes to and reads the regions' stream through `$JS.hub.API`, and the leaf's cache stream
/// sources the regions' stream across the domains; the flows prove both, and a plan afterwards
/// finds nothing to change (the leaf's objects are read back from the leaf).
#[test]
fn a_leaf_reads_the_regions_stream_through_their_domain_and_its_cache_sources_it() {
    let yaml = r#"name: dom
defaults:
  jetstream: { domain: hub }
regions:
  main:
    nodes: 3
    jetstream: true
leafnodes:
  edge:
    hub: main
    jetstream: { domain: edge }
streams:
  ORDERS: { subjects: ["orders.>"], replicas: 3 }
  EDGE_CACHE:
    leafnode: edge
    sources: [{ name: ORDERS, filter_subject: "orders.eu.>" }]
consumers:
  - { durable: cache-reader, stream: EDGE_CACHE }
flows:
  eu-order-cached-on-the-edge:
    publish: { at: main, subject: orders.eu.1 }
    reaches:
      - stream: ORDERS
      - stream: EDGE_CACHE
      - consumer: EDGE_CACHE/cache-reader
  us-order-not-cached:
    publish: { at: main, subject: orders.us.1 }
    reaches:
      - stream: ORDERS
    never:
      - stream: EDGE_CACHE
"#;
    let (d, report) = applied(yaml, "dom", 4);
    let verify = d.cmd("verify").args(["--flows", "-o", "json"]).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let plan = d.cmd("plan").output().unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let edge = client_url(&report, "edge");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(edge).await.unwrap();
        let hub = async_nats::jetstream::with_domain(client.clone(), "hub");
        // Published on the leaf, acknowledged by the regions' stream, read back through the domain.
        let ack = hub.publish("orders.us.42", "from the edge".into()).await.unwrap().await.unwrap();
        assert_eq!(ack.stream, "ORDERS");
        let stream = hub.get_stream("ORDERS").await.unwrap();
        let message = stream.get_raw_message(ack.sequence).await.unwrap();
        assert_eq!(message.payload.as_ref(), b"from the edge");
        // The leaf's own JetStream is another domain: it holds the cache, not the regions' stream.
        let own = async_nats::jetstream::with_domain(client, "edge");
        assert!(own.get_stream("ORDERS").await.is_err());
        assert!(own.get_stream("EDGE_CACHE").await.is_ok());
    });
}

#[test]
fn encrypted_stores_hold_no_payload_in_clear_and_the_key_is_in_no_file() {
    let payload = "a-payload-that-must-not-be-stored-in-clear";
    let stored_in_clear = |encrypt: bool| {
        let encryption = if encrypt {
            "\n    encryption: { cipher: chachapoly, key: \"${JS_KEY}\" }"
        } else {
            ""
        };
        let yaml = format!(
            "name: enc\ndefaults:\n  jetstream:\n    max_file_store: 1GB{encryption}\nregions:\n  main:\n    nodes: 1\n    jetstream: true\nstreams:\n  SECRETS: {{ subjects: [\"secret.>\"] }}\n"
        );
        let (d, report) = applied(&yaml, "enc", 1);
        let url = client_url(&report, "main-1");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            js.publish("secret.1", payload.into()).await.unwrap().await.unwrap();
        });
        // nats-server writes each message to its block file as it stores it.
        let files = files_under(&d.state_dir());
        let clear = files.iter().any(|(_, bytes)| contains(bytes, payload.as_bytes()));
        let key_written: Vec<&String> = files.iter().filter(|(_, b)| contains(b, KEY.as_bytes())).map(|(p, _)| p).collect();
        assert!(key_written.is_empty(), "the key is written in {key_written:?}");
        clear
    };
    assert!(
        stored_in_clear(false),
        "without encryption the payload must be found: the check could not fail"
    );
    assert!(!stored_in_clear(true), "an encrypted store holds the payload in clear");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
    out
}

/// Account subject mappings, default permissions, `no_auth_user`, route compression, advertised
/// addresses and client limits: nats-server runs the rendered options, and the flows prove the
/// mapping and the defaults carry (and stop) traffic as declared.
#[test]
fn server_options_and_account_mappings_work_live() {
    let yaml = r#"name: opts
defaults:
  compression: s2_auto
  advertise: true
  max_connections: 1000
  max_control_line: 8KB
  no_auth_user: writer
regions:
  main:
    nodes: 3
    jetstream: true
accounts:
  APP:
    jetstream: true
    mappings:
      "legacy.orders.*": "orders.{{wildcard(1)}}"
    default_permissions:
      publish: { deny: [">"] }
      subscribe: { deny: [">"] }
    users:
      # nats-server checks the publish permission on the mapped subject.
      - { user: writer, password: "${WRITER_PASS}", permissions: { publish: ["orders.>"], subscribe: ["_INBOX.>"] } }
      - { user: reader, password: "${READER_PASS}", permissions: { subscribe: ["orders.>"] } }
      - { user: idle, password: "${APP_PASS}" }
streams:
  ORDERS: { account: APP, subjects: ["orders.>"], replicas: 3 }
flows:
  legacy-order:
    publish: { user: writer, at: main, subject: legacy.orders.42 }
    reaches:
      - stream: ORDERS
      - subscriber: { user: reader, at: main, subject: "orders.>" }
    never:
      - subscriber: { user: idle, at: main, subject: "orders.>" }
"#;
    let (d, report) = applied(yaml, "opts", 3);
    let verify = d.cmd("verify").args(["--flows", "-o", "json"]).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let flows = json_of(&verify)["flows"].clone();
    let stored = flows.as_array().unwrap().iter().find(|f| f["target"] == "stream ORDERS").unwrap();
    assert!(stored["detail"].as_str().unwrap().contains("stored as orders.42"), "{flows}");
    let conf = std::fs::read_to_string(d.state_dir().join("nats/main-1.conf")).unwrap();
    for line in [
        "compression: s2_auto",
        "max_connections: 1000",
        "max_control_line: 8192",
        "no_auth_user: \"writer\"",
        "advertise: ",
    ] {
        assert!(conf.contains(line), "{line} missing from:\n{conf}");
    }
    // A client without credentials is the no_auth_user, allowed to publish what maps to orders.>.
    let url = client_url(&report, "main-1");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let ack = js.publish("legacy.orders.7", "anonymous".into()).await.unwrap().await.unwrap();
        assert_eq!(ack.stream, "ORDERS");
    });
}
