//! JetStream objects as code against a real 3-node cluster: drift is planned and restored,
//! replacements need --allow-replace, unmanaged objects are listed and pruned only on request,
//! and a server refusal names the object, the server's error and what to change.

use serde_json::{Value, json};
use std::path::Path;

use crate::support::{Deployment, assert_contains_all, json_of, text};

const BASE: &str = "name: js\ndefaults:\n  jetstream: { max_file_store: 1GB, max_memory_store: 256MB }\nregions:\n  main:\n    nodes: 3\n    jetstream: true\n";

fn objects(orders_storage: &str) -> String {
    format!(
        "streams:\n  EVENTS:\n    subjects: [\"events.>\"]\n    replicas: 3\n    max_age: 1d\n  ORDERS:\n    subjects: [\"orders.*\"]\n    retention: workqueue\n    storage: {orders_storage}\n\
consumers:\n  - durable: processor\n    stream: EVENTS\n    filter_subject: events.created\n    max_deliver: 4\n    backoff: [1s, 2s]\n  - durable: shipper\n    stream: ORDERS\n\
kv:\n  settings:\n    history: 3\n    replicas: 3\n"
    )
}

fn write(file: &Path, extra: &str) {
    std::fs::write(file, format!("{BASE}{extra}")).unwrap();
}

/// A JetStream API request on the deployment's first node, as another operator would make it.
fn js_request(d: &Deployment, api: &str, body: Value) -> Value {
    let url = format!("nats://127.0.0.1:{}", d.port_base);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        // A loaded machine can keep the meta leader from answering in time: ask again (the
        // requests made here are idempotent).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match client
                .request(format!("$JS.API.{api}"), serde_json::to_vec(&body).unwrap().into())
                .await
            {
                Ok(reply) => break serde_json::from_slice(&reply.payload).unwrap(),
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("{api}: {e}; asking again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{api}: {e}"),
            }
        }
    })
}

fn plan_json(d: &Deployment, args: &[&str]) -> (Option<i32>, Value) {
    let out = d.cmd("plan").args(["-o", "json"]).args(args).output().unwrap();
    (out.status.code(), json_of(&out)["plan"]["jetstream"].clone())
}

fn actions(changes: &Value) -> Vec<(String, String, String)> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn drift_replacement_and_pruning_against_live_servers() {
    let mut d = Deployment::new(Path::new("js.yaml"), "js", 3);
    let file = d.dir.path().join("js.yaml");
    d.topology = file.clone();
    write(&file, &objects("file"));

    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_contains_all(
        &text(&out),
        &[
            "+ stream EVENTS",
            "+ consumer EVENTS/processor",
            "+ kv settings",
            "ok    stream       EVENTS",
        ],
    );
    let (code, changes) = plan_json(&d, &[]);
    assert_eq!((code, actions(&changes)), (Some(0), vec![]), "server defaults are not drift");

    // Someone else changes a stream (a field the topology writes, and one it leaves at the
    // server's default), a bucket and a consumer's default, deletes a consumer and adds a
    // stream of their own.
    let mut events = js_request(&d, "STREAM.INFO.EVENTS", json!({}))["config"].clone();
    events["max_age"] = json!(3_600_000_000_000u64);
    events["max_msgs"] = json!(12345);
    assert!(js_request(&d, "STREAM.UPDATE.EVENTS", events).get("error").is_none());
    let mut settings = js_request(&d, "STREAM.INFO.KV_settings", json!({}))["config"].clone();
    settings["max_consumers"] = json!(7);
    assert!(js_request(&d, "STREAM.UPDATE.KV_settings", settings).get("error").is_none());
    let mut shipper = js_request(&d, "CONSUMER.INFO.ORDERS.shipper", json!({}))["config"].clone();
    shipper["max_ack_pending"] = json!(5);
    let update = json!({"stream_name": "ORDERS", "config": shipper, "action": "update"});
    assert!(js_request(&d, "CONSUMER.CREATE.ORDERS.shipper", update).get("error").is_none());
    assert!(js_request(&d, "CONSUMER.DELETE.EVENTS.processor", json!({})).get("error").is_none());
    let rogue = js_request(
        &d,
        "STREAM.CREATE.ROGUE",
        json!({"name": "ROGUE", "subjects": ["rogue.>"], "storage": "memory"}),
    );
    assert!(rogue.get("error").is_none(), "{rogue}");

    let out = d.cmd("plan").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let human = text(&out);
    assert_contains_all(
        &human,
        &[
            "~   stream EVENTS",
            "max_age: 1h -> 1d",
            "max_msgs: 12345 -> -1",
            "~   kv settings",
            "max_consumers: 7 -> -1",
            "~   consumer ORDERS/shipper",
            "max_ack_pending: 5 -> 1000",
            "+   consumer EVENTS/processor",
            "?   stream ROGUE",
        ],
    );
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (code, changes) = plan_json(&d, &[]);
    assert_eq!(code, Some(0), "only the unmanaged stream remains, and it is not a change");
    assert_eq!(actions(&changes), [("unmanaged".into(), "stream".into(), "ROGUE".into())]);
    let events = js_request(&d, "STREAM.INFO.EVENTS", json!({}));
    assert_eq!(events["config"]["max_age"], 86_400_000_000_000u64, "drift restored");
    assert_eq!(
        events["config"]["max_msgs"], -1,
        "a field the topology leaves open is back at the server's default"
    );
    let shipper = js_request(&d, "CONSUMER.INFO.ORDERS.shipper", json!({}));
    assert_eq!(shipper["config"]["max_ack_pending"], 1000);

    // --prune deletes what the topology does not name.
    let (code, changes) = plan_json(&d, &["--prune"]);
    assert_eq!(
        (code, actions(&changes)),
        (Some(2), vec![("delete".into(), "stream".into(), "ROGUE".into())])
    );
    let out = d.cmd("apply").arg("--prune").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(js_request(&d, "STREAM.INFO.ROGUE", json!({}))["error"]["err_code"], 10059);

    // A storage change cannot be made in place: shown as a replacement, refused without the flag.
    write(&file, &objects("memory"));
    let (code, changes) = plan_json(&d, &[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        actions(&changes),
        [
            ("replace".into(), "stream".into(), "ORDERS".into()),
            ("create".into(), "consumer".into(), "shipper".into()),
        ],
        "replacing a stream deletes its consumers, so they are created again"
    );
    assert!(changes[0]["fields"][0]["replace_reason"].as_str().unwrap().contains("storage"));
    let out = d.cmd("apply").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--allow-replace"), "{}", text(&out));
    let orders = js_request(&d, "STREAM.INFO.ORDERS", json!({}));
    assert_eq!(orders["config"]["storage"], "file", "nothing touched without --allow-replace");
    let out = d.cmd("apply").arg("--allow-replace").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(js_request(&d, "STREAM.INFO.ORDERS", json!({}))["config"]["storage"], "memory");
    assert_eq!(plan_json(&d, &[]).0, Some(0));
}

#[test]
fn a_server_refusal_names_the_object_the_error_and_the_fix() {
    let mut d = Deployment::new(Path::new("js.yaml"), "jsfail", 3);
    let file = d.dir.path().join("js.yaml");
    d.topology = file.clone();
    let base = BASE.replace("name: js", "name: jsfail");
    std::fs::write(&file, format!("{base}streams:\n  SMALL:\n    subjects: [small.>]\n")).unwrap();
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Another team's stream already holds the subjects the topology now wants.
    let theirs = js_request(&d, "STREAM.CREATE.THEIRS", json!({"name": "THEIRS", "subjects": ["orders.>"]}));
    assert!(theirs.get("error").is_none(), "{theirs}");
    std::fs::write(
        &file,
        format!(
            "{base}streams:\n  SMALL:\n    subjects: [small.>]\n    max_age: 1h\n  ORDERS:\n    subjects: [orders.>]\nconsumers:\n  - durable: reader\n    stream: ORDERS\n"
        ),
    )
    .unwrap();
    let out = d.cmd("apply").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert_contains_all(
        &report,
        &[
            "JetStream apply failed for 1 object(s)",
            "stream ORDERS: ",
            "(JetStream error 400/10065)",
            "narrow `subjects:`",
            "not attempted (1)",
            "consumer ORDERS/reader",
            "applied (1):",
            "stream SMALL",
        ],
    );
    let small = js_request(&d, "STREAM.INFO.SMALL", json!({}));
    assert_eq!(
        small["config"]["max_age"], 3_600_000_000_000u64,
        "the independent change was applied"
    );
}

/// The stream and consumer settings of nats-server 2.11 to 2.15, in one topology.
fn todays_settings(ttl: bool, atomic: bool) -> String {
    let marker = if ttl { "    subject_delete_marker_ttl: 1m\n" } else { "" };
    format!(
        "streams:\n  TIMED:\n    subjects: [\"timed.>\"]\n    replicas: 3\n    allow_msg_ttl: {ttl}\n{marker}    allow_msg_schedules: true\n    allow_batched: true\n{}{}{}",
        "  COUNTS:\n    subjects: [\"counts.>\"]\n    allow_msg_counter: true\n    persist_mode: async\n",
        format_args!("  ATOMIC:\n    subjects: [\"atomic.>\"]\n    allow_atomic: {atomic}\n"),
        "consumers:\n  - durable: workers\n    stream: TIMED\n    priority_groups: [jobs]\n    priority_policy: pinned_client\n    priority_timeout: 1m\n    pause_until: \"2030-01-01T00:00:00Z\"\n"
    )
}

#[test]
fn todays_stream_and_consumer_settings_are_applied_read_back_and_planned_by_what_the_server_allows() {
    let mut d = Deployment::new(Path::new("js.yaml"), "today", 3);
    let file = d.dir.path().join("js.yaml");
    d.topology = file.clone();
    write(&file, &todays_settings(true, true));
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Read back from the server, as another client sees them.
    let timed = js_request(&d, "STREAM.INFO.TIMED", json!({}))["config"].clone();
    assert_eq!(timed["allow_msg_ttl"], true, "{timed}");
    assert_eq!(timed["subject_delete_marker_ttl"], 60_000_000_000u64, "{timed}");
    assert_eq!(timed["allow_msg_schedules"], true, "{timed}");
    assert_eq!(timed["allow_batched"], true, "{timed}");
    let counts = js_request(&d, "STREAM.INFO.COUNTS", json!({}))["config"].clone();
    assert_eq!(
        (&counts["allow_msg_counter"], &counts["persist_mode"]),
        (&json!(true), &json!("async")),
        "{counts}"
    );
    let atomic = js_request(&d, "STREAM.INFO.ATOMIC", json!({}))["config"].clone();
    assert_eq!(atomic["allow_atomic"], true, "{atomic}");
    let workers = js_request(&d, "CONSUMER.INFO.TIMED.workers", json!({}));
    let config = &workers["config"];
    assert_eq!(config["priority_groups"], json!(["jobs"]), "{workers}");
    assert_eq!(config["priority_policy"], "pinned_client", "{workers}");
    assert_eq!(config["priority_timeout"], 60_000_000_000u64, "{workers}");
    assert_eq!(config["pause_until"], "2030-01-01T00:00:00Z", "{workers}");
    assert_eq!(workers["paused"], true, "{workers}");
    let (code, changes) = plan_json(&d, &[]);
    assert_eq!(
        (code, actions(&changes)),
        (Some(0), vec![]),
        "what was applied reads back the same: {changes}"
    );

    // Atomic batches can be turned off in place; message TTLs cannot: a replacement, with why.
    write(&file, &todays_settings(true, false));
    let (code, changes) = plan_json(&d, &[]);
    assert_eq!(
        (code, actions(&changes)),
        (Some(2), vec![("update".into(), "stream".into(), "ATOMIC".into())])
    );
    assert!(d.cmd("apply").output().unwrap().status.success());
    // The server leaves a false setting out of what it reports.
    let atomic = js_request(&d, "STREAM.INFO.ATOMIC", json!({}))["config"]["allow_atomic"].clone();
    assert!(!atomic.as_bool().unwrap_or(false), "{atomic}");
    write(&file, &todays_settings(false, false));
    let (code, changes) = plan_json(&d, &[]);
    // Its consumer goes with the replaced stream and is created again.
    assert_eq!(
        (code, actions(&changes)),
        (
            Some(2),
            vec![
                ("replace".into(), "stream".into(), "TIMED".into()),
                ("create".into(), "consumer".into(), "workers".into())
            ]
        )
    );
    let reason = changes[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "allow_msg_ttl")
        .unwrap()["replace_reason"]
        .clone();
    assert_eq!(reason, "nats-server cannot turn off message TTLs or schedules once on");

    // The server's own refusals, refused by validate where they are written.
    let bad = d.dir.path().join("bad.yaml");
    write(
        &bad,
        "streams:\n  BAD:\n    subjects: [bad]\n    allow_msg_counter: true\n    allow_msg_ttl: true\n    subject_delete_marker_ttl: 1m\n",
    );
    let out = crate::support::notif_infra(d.dir.path())
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_contains_all(&text(&out), &["a counter stream cannot use message TTLs", "bad.yaml:11:24"]);
    assert!(d.cmd("destroy").output().unwrap().status.success());
}
