//! Backup and restore through the JetStream snapshot API on a real 3-node cluster: messages, KV
//! values and each consumer's acknowledged position survive destroy and apply; a non-empty stream
//! is only replaced on request; a damaged file is refused with nothing changed; and a backup
//! restores into another topology, which keeps its own replicas.

use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::support::{Deployment, json_of, text, topology};

const MESSAGES: u64 = 3000;
const ACKED: u64 = 1000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn js(port: u16) -> async_nats::jetstream::Context {
    let client = async_nats::connect(format!("nats://127.0.0.1:{port}")).await.unwrap();
    async_nats::jetstream::new(client)
}

/// Publishes distinct messages, puts KV values and acknowledges the first `ACKED` messages
/// through the durable consumer.
fn fill(port: u16) {
    runtime().block_on(async {
        let js = js(port).await;
        for i in 0..MESSAGES {
            let body = format!("event {i} {}", "x".repeat((i % 300) as usize));
            js.publish(format!("events.{}", i % 7), body.into()).await.unwrap().await.unwrap();
        }
        let kv = js.get_key_value("config").await.unwrap();
        kv.put("color", "blue".into()).await.unwrap();
        kv.put("color", "green".into()).await.unwrap();
        kv.put("size", "9".into()).await.unwrap();
        let stream = js.get_stream("EVENTS").await.unwrap();
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("processor").await.unwrap();
        let mut acked = 0;
        while acked < ACKED {
            let mut batch = consumer
                .fetch()
                .max_messages((ACKED - acked).min(200) as usize)
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .unwrap();
            while let Some(m) = batch.next().await {
                m.unwrap().double_ack().await.unwrap();
                acked += 1;
            }
        }
    });
}

/// What a deployment holds: EVENTS' message count and a digest of every message, the consumer's
/// acknowledged floor and pending count, the KV values.
#[derive(Debug, PartialEq)]
struct Held {
    messages: u64,
    digest: String,
    ack_floor: u64,
    pending: u64,
    kv: Vec<(String, String, u64)>,
}

fn held(port: u16) -> Held {
    runtime().block_on(async {
        let js = js(port).await;
        let mut stream = js.get_stream("EVENTS").await.unwrap();
        let messages = stream.info().await.unwrap().state.messages;
        let mut hash = Sha256::new();
        for seq in 1..=messages {
            let m = stream.get_raw_message(seq).await.unwrap();
            hash.update(m.subject.as_bytes());
            hash.update(&m.payload);
        }
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream.get_consumer("processor").await.unwrap();
        let info = consumer.info().await.unwrap();
        let kv = js.get_key_value("config").await.unwrap();
        let mut values = Vec::new();
        for key in ["color", "size"] {
            let e = kv.entry(key).await.unwrap().unwrap();
            values.push((key.to_string(), String::from_utf8(e.value.to_vec()).unwrap(), e.revision));
        }
        Held {
            messages,
            digest: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            ack_floor: info.ack_floor.stream_sequence,
            pending: info.num_pending,
            kv: values,
        }
    })
}

/// What the deployment holds once it matches `want`, or after 10 s: a consumer's pending count is
/// computed again by its new leader a moment after a restore.
fn held_settled(port: u16, want: &Held) -> Held {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = held(port);
        if &now == want || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn backup_destroy_apply_restore_brings_back_every_message_and_acknowledged_position() {
    let d = Deployment::new(&topology("dev"), "bk", 3);
    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    fill(d.port_base);
    let before = held(d.port_base);
    assert_eq!(
        (before.messages, before.ack_floor, before.pending),
        (MESSAGES, ACKED, MESSAGES - ACKED)
    );

    let to = d.dir.path().join("backup");
    let backup = d.cmd("backup").arg("--to").arg(&to).args(["-o", "json"]).output().unwrap();
    assert!(backup.status.success(), "{}", text(&backup));
    let report = json_of(&backup);
    let streams: Vec<(&str, u64, &Value)> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stream"].as_str().unwrap(), s["messages"].as_u64().unwrap(), &s["consumers"]))
        .collect();
    assert_eq!(
        streams,
        vec![
            ("EVENTS", MESSAGES, &serde_json::json!(["processor"])),
            ("KV_config", 3, &serde_json::json!([]))
        ]
    );
    eprintln!(
        "backup: {} bytes in {:.3} s, {:.1} MB/s",
        report["bytes"], report["seconds"], report["mb_per_s"]
    );

    // The deployment still holds its messages: nothing is overwritten without --replace.
    let refused = d.cmd("restore").arg("--from").arg(&to).output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("stream EVENTS holds {MESSAGES} message(s)")),
        "{}",
        text(&refused)
    );

    // A damaged copy is refused before anything changes, naming the file and the checksums.
    let damaged = d.dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in ["manifest.json", "EVENTS.tar.s2", "KV_config.tar.s2"] {
        std::fs::copy(to.join(f), damaged.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(damaged.join("EVENTS.tar.s2")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(damaged.join("EVENTS.tar.s2"), bytes).unwrap();
    let refused = d.cmd("restore").arg("--from").arg(&damaged).arg("--replace").output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = text(&refused);
    assert!(said.contains("EVENTS.tar.s2` is damaged: its SHA-256 is"), "{said}");
    assert!(said.contains("nothing was restored"), "{said}");
    assert_eq!(held(d.port_base), before);

    let destroy = d.cmd("destroy").output().unwrap();
    assert!(destroy.status.success(), "{}", text(&destroy));
    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let fresh = runtime().block_on(async {
        js(d.port_base)
            .await
            .get_stream("EVENTS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    });
    assert_eq!(fresh, 0);

    let restore = d.cmd("restore").arg("--from").arg(&to).args(["-o", "json"]).output().unwrap();
    assert!(restore.status.success(), "{}", text(&restore));
    let report = json_of(&restore);
    eprintln!(
        "restore: {} bytes in {:.3} s, {:.1} MB/s",
        report["bytes"], report["seconds"], report["mb_per_s"]
    );
    assert_eq!(held_settled(d.port_base, &before), before);

    // Then into another topology of one server: the stream takes that topology's replicas.
    let other = Deployment::new(&topology("dev"), "bk-other", 1);
    let file = other.dir.path().join("other.yaml");
    let yaml = std::fs::read_to_string(topology("dev"))
        .unwrap()
        .replace("name: dev", "name: bk-other")
        .replace("nodes: 3", "nodes: 1")
        .replace("replicas: 3", "replicas: 1");
    std::fs::write(&file, yaml).unwrap();
    let mut other = other;
    other.topology = file;
    let apply = other.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let restore = other.cmd("restore").arg("--from").arg(&to).output().unwrap();
    assert!(restore.status.success(), "{}", text(&restore));
    assert!(text(&restore).contains("(replaced the existing stream)"), "{}", text(&restore));
    assert_eq!(held_settled(other.port_base, &before), before);
    let verify = other.cmd("verify").args(["-o", "json"]).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let replicas = runtime().block_on(async {
        let mut s = js(other.port_base).await.get_stream("EVENTS").await.unwrap();
        s.info().await.unwrap().config.num_replicas
    });
    assert_eq!(replicas, 1);
}

/// The metrics text `monitor` serves at `addr`.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// backup, restore and monitor on the compose target: the containers reached through the ports
/// their project publishes on loopback.
#[test]
fn backup_restore_and_monitor_work_on_compose() {
    let d = Deployment::compose(&topology("dev"), "bkc", 4);
    let apply = d.cmd("apply").timeout(Duration::from_secs(180)).output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    fill(d.port_base);
    let before = held(d.port_base);

    let to = d.dir.path().join("backup");
    let backup = d.cmd("backup").arg("--to").arg(&to).output().unwrap();
    assert!(backup.status.success(), "{}", text(&backup));
    let restore = d.cmd("restore").arg("--from").arg(&to).arg("--replace").output().unwrap();
    assert!(restore.status.success(), "{}", text(&restore));
    assert_eq!(held_settled(d.port_base, &before), before);

    let listen = format!("127.0.0.1:{}", crate::support::free_port_base(1));
    let mut monitor = std::process::Command::new(env!("CARGO_BIN_EXE_notif-infra"));
    monitor
        .current_dir(d.dir.path())
        .arg("monitor")
        .arg(&d.topology)
        .args(["--target", "compose", "--listen", &listen])
        .stderr(std::process::Stdio::null());
    let mut monitor = monitor.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if std::net::TcpStream::connect(&listen).is_ok() {
            break scrape(&listen);
        }
        assert!(std::time::Instant::now() < deadline, "monitor never listened on {listen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = monitor.kill();
    let _ = monitor.wait();
    let links: Vec<&str> = metrics.lines().filter(|l| l.starts_with("nats_link_up{")).collect();
    assert_eq!(links.len(), 6, "{metrics}");
    assert!(links.iter().all(|l| l.ends_with(" 1.0")), "{links:?}");
    let pending = format!(
        "nats_consumer_pending{{topology=\"dev\",target=\"compose\",account=\"$G\",stream=\"EVENTS\",consumer=\"processor\"}} {}.0",
        MESSAGES - ACKED
    );
    assert!(metrics.lines().any(|l| l == pending), "{metrics}");
}
