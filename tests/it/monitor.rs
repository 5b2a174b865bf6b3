//! Monitoring with the real tools: promtool accepts the rendered scrape configs and alert rules
//! and its rule tests fire each alert (and only where the topology's thresholds say); a real
//! Prometheus scraping `notif-infra monitor` on a running super-cluster fires the consumer-lag
//! alert at the topology's threshold, fires the link-down alert for a killed server's links
//! within the rule's `for` plus two scrape intervals, and resolves it once the server is back;
//! and fires the store alert on a filling store while it still takes publishes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Deployment, STRIDE, free_port_base, get_json, project_root, render_into, text};

fn tool(name: &str) -> PathBuf {
    let p = project_root().join(".tools/bin").join(name);
    assert!(p.is_file(), "{name} is not installed: run `bash scripts/install-test-tools.sh`");
    p
}

fn promtool(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(tool("promtool")).current_dir(dir).args(args).output().unwrap()
}

const THRESHOLDS: &str = r#"name: mt
regions:
  main:
    nodes: 3
    jetstream: true
streams:
  EVENTS: { subjects: ["events.>"], replicas: 3 }
consumers:
  - { durable: processor, stream: EVENTS }
  - { durable: audit, stream: EVENTS }
monitoring:
  listen: 127.0.0.1:9
  interval: 2s
  alert_after: 10s
  store_full_percent: 80
  consumer_pending: 500
  consumers:
    EVENTS/processor: 10000
"#;

/// One alert the rule tests expect at 30 s: its name, labels and summary.
fn expected(alert: &str, labels: &str, summary: &str) -> String {
    format!(
        "      - eval_time: 30s\n        alertname: {alert}\n        exp_alerts:\n          - exp_labels: {{ severity: page, topology: mt, target: local, {labels} }}\n            exp_annotations: {{ summary: \"{summary}\" }}\n"
    )
}

#[test]
fn rendered_scrape_configs_and_alert_rules_pass_promtool_and_each_alert_fires_at_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mt.yaml");
    std::fs::write(&file, THRESHOLDS).unwrap();
    let out = dir.path().join("out");
    render_into(&file, &out);
    let monitoring = out.join("monitoring");
    for target in ["local", "compose", "ssh"] {
        let config = format!("prometheus-{target}.yml");
        let checked = promtool(&monitoring, &["check", "config", &config]);
        assert!(checked.status.success(), "{config}: {}", text(&checked));
    }
    let checked = promtool(&monitoring, &["check", "rules", "alerts.yml"]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains("SUCCESS: 7 rules found"), "{}", text(&checked));

    // Series as `monitor` exports them; only those past their threshold for 10 s may fire.
    let l = "topology=\"mt\",target=\"local\"";
    let series = [
        (
            format!("nats_link_up{{{l},kind=\"route\",from=\"main-1\",to=\"main-2\"}}"),
            "1 1 0x20",
        ),
        (format!("nats_link_up{{{l},kind=\"route\",from=\"main-2\",to=\"main-1\"}}"), "1x22"),
        (format!("nats_server_healthy{{{l},server=\"main-2\",region=\"main\"}}"), "1 0x21"),
        (format!("nats_server_healthy{{{l},server=\"main-1\",region=\"main\"}}"), "1x22"),
        (format!("nats_meta_leader_present{{{l},server=\"main-3\"}}"), "0x22"),
        (format!("nats_meta_leader_present{{{l},server=\"main-1\"}}"), "1x22"),
        (
            format!("nats_stream_replicas_current{{{l},kind=\"stream\",account=\"$G\",stream=\"EVENTS\"}}"),
            "2x22",
        ),
        (
            format!("nats_stream_replicas_wanted{{{l},kind=\"stream\",account=\"$G\",stream=\"EVENTS\"}}"),
            "3x22",
        ),
        (
            format!("nats_consumer_pending{{{l},account=\"$G\",stream=\"EVENTS\",consumer=\"processor\"}}"),
            "5000x22",
        ),
        (
            format!("nats_consumer_pending_threshold{{{l},account=\"$G\",stream=\"EVENTS\",consumer=\"processor\"}}"),
            "10000x22",
        ),
        (
            format!("nats_consumer_pending{{{l},account=\"$G\",stream=\"EVENTS\",consumer=\"audit\"}}"),
            "600x22",
        ),
        (
            format!("nats_consumer_pending_threshold{{{l},account=\"$G\",stream=\"EVENTS\",consumer=\"audit\"}}"),
            "500x22",
        ),
        (
            format!("nats_jetstream_store_used_bytes{{{l},server=\"main-1\",store=\"file\"}}"),
            "85x22",
        ),
        (
            format!("nats_jetstream_store_limit_bytes{{{l},server=\"main-1\",store=\"file\"}}"),
            "100x22",
        ),
        (
            format!("nats_jetstream_store_used_bytes{{{l},server=\"main-2\",store=\"file\"}}"),
            "75x22",
        ),
        (
            format!("nats_jetstream_store_limit_bytes{{{l},server=\"main-2\",store=\"file\"}}"),
            "100x22",
        ),
        (
            format!("nats_jetstream_store_used_bytes{{{l},server=\"main-3\",store=\"memory\"}}"),
            "85x22",
        ),
        (
            format!("nats_jetstream_store_limit_bytes{{{l},server=\"main-3\",store=\"memory\"}}"),
            "0x22",
        ),
        ("up{job=\"notif-infra-mt-local\",instance=\"127.0.0.1:9\"}".to_string(), "0x22"),
    ];
    let mut tests = String::from("rule_files: [alerts.yml]\nevaluation_interval: 2s\ntests:\n  - interval: 2s\n    input_series:\n");
    for (s, values) in &series {
        tests += &format!("      - series: '{s}'\n        values: '{values}'\n");
    }
    tests += "    alert_rule_test:\n";
    tests += &expected(
        "NatsLinkDown",
        "kind: route, from: main-1, to: main-2",
        "route main-1 -> main-2 is down",
    );
    tests += &expected(
        "NatsServerUnhealthy",
        "server: main-2, region: main",
        "server main-2 is unreachable or fails /healthz",
    );
    tests += &expected(
        "NatsMetaLeaderMissing",
        "server: main-3",
        "server main-3 sees no JetStream meta leader",
    );
    tests += &expected(
        "NatsStreamReplicaNotCurrent",
        "kind: stream, account: $G, stream: EVENTS",
        "stream EVENTS has 2 current replica(s), fewer than it wants",
    );
    tests += &expected(
        "NatsConsumerPendingHigh",
        "account: $G, stream: EVENTS, consumer: audit",
        "consumer EVENTS/audit has 600 messages pending",
    );
    tests += &expected(
        "NatsStoreNearlyFull",
        "server: main-1, store: file",
        "the file store of main-1 is above 80% of its limit",
    );
    tests += "      - eval_time: 30s\n        alertname: NotifInfraMonitorDown\n        exp_alerts:\n          - exp_labels: { severity: page, job: notif-infra-mt-local, instance: \"127.0.0.1:9\" }\n            exp_annotations: { summary: \"notif-infra monitor at 127.0.0.1:9 is not answering: nothing else here can fire\" }\n";
    // Not yet 10 s past the link going down: pending, not firing.
    tests += "      - eval_time: 12s\n        alertname: NatsLinkDown\n        exp_alerts: []\n";
    std::fs::write(monitoring.join("alerts_test.yml"), tests).unwrap();
    let tested = promtool(&monitoring, &["test", "rules", "alerts_test.yml"]);
    assert!(tested.status.success(), "{}", text(&tested));
}

/// A process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two regions of two JetStream servers; a stream in west whose consumer lags behind its
/// threshold of 5 once 10 messages are in.
const SUPERCLUSTER: &str = r#"regions:
  east:
    nodes: 2
    jetstream: true
  west:
    nodes: 2
    jetstream: true
streams:
  EVENTS: { subjects: ["events.>"], placement: { region: west } }
consumers:
  - { durable: worker, stream: EVENTS }
"#;

/// A Prometheus API answer; `None` while Prometheus is still starting (it answers 503 in plain
/// text until its storage is ready).
/// `notif-infra monitor` on the deployment, serving on `monitor_port` (its log read in the
/// background, which keeps its pipe from filling), and a real Prometheus on `prometheus_port`
/// scraping it with the config rendered into `out`; both stop when dropped. Returns Prometheus's
/// URL last.
fn watch(
    d: &Deployment,
    out: &Path,
    monitor_port: u16,
    prometheus_port: u16,
) -> (Running, std::thread::JoinHandle<Vec<String>>, Running, String) {
    let mut monitor = Command::new(env!("CARGO_BIN_EXE_notif-infra"));
    monitor
        .current_dir(d.dir.path())
        .args(["monitor"])
        .arg(&d.topology)
        .stderr(Stdio::piped());
    let mut monitor = Running(monitor.spawn().unwrap());
    let mut said = BufReader::new(monitor.0.stderr.take().unwrap()).lines();
    let first = said.next().unwrap().unwrap();
    assert_eq!(first, format!("monitor: serving http://127.0.0.1:{monitor_port}/metrics"));
    let log = std::thread::spawn(move || said.map_while(Result::ok).collect::<Vec<_>>());
    let prometheus = Running(
        Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", out.join("monitoring/prometheus-local.yml").display()))
            .arg(format!("--storage.tsdb.path={}", d.dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (monitor, log, prometheus, format!("http://127.0.0.1:{prometheus_port}"))
}

fn api(url: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}

/// The firing alerts named `alert`, each as its labels.
fn firing(prometheus: &str, alert: &str) -> Vec<serde_json::Value> {
    let alerts = get_json(&format!("{prometheus}/api/v1/alerts"));
    alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == alert && a["state"] == "firing")
        .map(|a| a["labels"].clone())
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn prometheus_fires_link_down_for_a_killed_server_and_resolves_it_when_the_server_is_back() {
    let ports = free_port_base(1);
    let (monitor_port, prometheus_port) = (ports, ports + 1);
    let mut d = Deployment::new(Path::new("unused"), "mon", 4);
    d.topology = d.dir.path().join("mon.yaml");
    let scrape = Duration::from_secs(2);
    let alert_after = Duration::from_secs(4);
    std::fs::write(
        &d.topology,
        format!(
            "name: mon\n{SUPERCLUSTER}monitoring:\n  listen: 127.0.0.1:{monitor_port}\n  interval: {}s\n  alert_after: {}s\n  consumers:\n    EVENTS/worker: 5\n",
            scrape.as_secs(),
            alert_after.as_secs()
        ),
    )
    .unwrap();
    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let out = d.dir.path().join("out");
    render_into(&d.topology, &out);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://127.0.0.1:{}", d.port_base + 2 * STRIDE))
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        for i in 0..10 {
            js.publish(format!("events.{i}"), "waiting".into()).await.unwrap().await.unwrap();
        }
    });

    let (monitor, log, _prometheus, prometheus) = watch(&d, &out, monitor_port, prometheus_port);
    wait_for("Prometheus scraping every link up", Duration::from_secs(60), || {
        api(&format!("{prometheus}/api/v1/query?query=min(nats_link_up)")).is_some_and(|up| up["data"]["result"][0]["value"][1] == "1")
    });
    assert!(firing(&prometheus, "NatsLinkDown").is_empty());
    // verify's list of checks, as monitor serves it: every one OK while all is up.
    let checks = get_json(&format!(
        "{prometheus}/api/v1/query?query=max(notif_infra_check_status)%20by%20(kind)"
    ));
    let kinds: Vec<(&str, &str)> = checks["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"]["kind"].as_str().unwrap(), r["value"][1].as_str().unwrap()))
        .collect();
    for kind in ["node", "route", "gateway", "meta group"] {
        assert!(kinds.contains(&(kind, "0")), "{kind} checks OK: {kinds:?}");
    }
    // The consumer's pending count, read from its leader, past the topology's threshold of 5.
    let pending = get_json(&format!("{prometheus}/api/v1/query?query=nats_consumer_pending"));
    assert_eq!(pending["data"]["result"][0]["value"][1], "10", "{pending}");
    wait_for("NatsConsumerPendingHigh firing for worker", Duration::from_secs(30), || {
        firing(&prometheus, "NatsConsumerPendingHigh")
            .iter()
            .any(|l| l["consumer"] == "worker")
    });

    let victim = "east-1";
    let pid = d.pid(victim).expect("east-1 runs");
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let fired = wait_for("NatsLinkDown firing", Duration::from_secs(30), || {
        firing(&prometheus, "NatsLinkDown")
            .iter()
            .any(|l| l["from"] == victim || l["to"] == victim)
    });
    let bound = alert_after + 2 * scrape;
    eprintln!(
        "NatsLinkDown fired {:.2} s after the kill (for {alert_after:?}, scrape {scrape:?}: bound {bound:?})",
        fired.as_secs_f64()
    );
    assert!(killed.elapsed() >= alert_after, "fired before its `for`");
    assert!(
        fired <= bound,
        "fired after {fired:?}, more than for + 2 scrape intervals ({bound:?})"
    );
    // Every link that fires is one of the killed server's: its routes and gateways, and the
    // inbound gateway connections its region counts (those name the regions).
    std::thread::sleep(2 * scrape);
    let down = firing(&prometheus, "NatsLinkDown");
    let its = |l: &serde_json::Value| l["from"] == victim || l["to"] == victim || l["from"] == "east" || l["to"] == "east";
    assert!(down.iter().all(its), "{down:#?}");
    assert!(
        down.iter()
            .any(|l| l["kind"] == "route" && l["from"] == "east-2" && l["to"] == victim),
        "{down:#?}"
    );

    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let resolved = wait_for("NatsLinkDown resolved", Duration::from_secs(30), || {
        firing(&prometheus, "NatsLinkDown").is_empty()
    });
    eprintln!(
        "NatsLinkDown resolved {:.2} s after apply brought {victim} back",
        resolved.as_secs_f64()
    );
    assert!(resolved <= 3 * scrape, "resolved after {resolved:?}");

    drop(monitor);
    let log = log.join().unwrap();
    assert!(log.iter().any(|l| l.starts_with("down: ") && l.contains(victim)), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("back: ") && l.contains(victim)), "{log:?}");
}

/// A store that fills under an application's acknowledged publishing: Prometheus fires
/// NatsStoreNearlyFull (at the topology's 80%) while publishes are still taken, nats-server
/// refuses the ones that do not fit later, every acknowledged message is stored, and verify
/// names the full store's server and stream.
#[test]
fn prometheus_fires_store_nearly_full_before_publishes_are_refused_and_nothing_acknowledged_is_lost() {
    let ports = free_port_base(1);
    let (monitor_port, prometheus_port) = (ports, ports + 1);
    let mut d = Deployment::new(Path::new("unused"), "smon", 1);
    d.topology = d.dir.path().join("smon.yaml");
    std::fs::write(
        &d.topology,
        format!(
            "name: smon\ndefaults:\n  jetstream: {{ max_file_store: 1MB }}\nregions:\n  main:\n    nodes: 1\n    jetstream: true\n\
accounts:\n  APP:\n    jetstream: true\n    users:\n      - {{ user: app, password: \"${{APP_PASS}}\" }}\n\
streams:\n  EVENTS: {{ account: APP, subjects: [\"events.>\"] }}\n\
monitoring:\n  listen: 127.0.0.1:{monitor_port}\n  interval: 2s\n  alert_after: 2s\n  store_full_percent: 80\n"
        ),
    )
    .unwrap();
    let apply = d.cmd("apply").output().unwrap();
    assert!(apply.status.success(), "{}", text(&apply));
    let out = d.dir.path().join("out");
    render_into(&d.topology, &out);

    let (_monitor, _log, _prometheus, prometheus) = watch(&d, &out, monitor_port, prometheus_port);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let js = rt.block_on(async {
        let client = async_nats::ConnectOptions::with_user_and_password("app".into(), "app-secret".into())
            .connect(format!("nats://127.0.0.1:{}", d.port_base))
            .await
            .unwrap();
        async_nats::jetstream::new(client)
    });
    let publish = |id: u64| {
        rt.block_on(async {
            js.publish(format!("events.{id}"), vec![b'x'; 1024].into())
                .await
                .unwrap()
                .await
                .is_ok()
        })
    };
    // 850 KiB of payload: past 80% of the 1 MiB store, short of its end.
    let mut acked = 0u64;
    while acked < 850 {
        assert!(publish(acked), "refused at {acked} KiB, before the store was 80% full");
        acked += 1;
    }
    let fired = wait_for("NatsStoreNearlyFull firing", Duration::from_secs(30), || {
        firing(&prometheus, "NatsStoreNearlyFull")
            .iter()
            .any(|l| l["server"] == "main-1" && l["store"] == "file")
    });
    // The store still takes messages after the alert; then it is full.
    assert!(publish(acked), "the alert fired only once publishes were refused");
    acked += 1;
    let last = acked + 500;
    let mut refused_at = None;
    while acked < last {
        if !publish(acked) {
            refused_at = Some(acked);
            break;
        }
        acked += 1;
    }
    let stored = rt.block_on(async { js.get_stream("EVENTS").await.unwrap().cached_info().state.messages });
    eprintln!(
        "NatsStoreNearlyFull fired {:.1} s after the store passed 80%; publishes refused from message {} on; {acked} acknowledged, {stored} stored",
        fired.as_secs_f64(),
        refused_at.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
    );
    assert!(refused_at.is_some(), "the 1 MiB store never filled");
    assert_eq!(stored, acked, "every acknowledged message is stored, and only those");
    // verify names the server, how full its store is and the stream that fills it.
    let out = d.cmd("verify").args(["--timeout", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for said in ["main-1", "JetStream file store is", "publishes to EVENTS will be refused"] {
        assert!(text(&out).contains(said), "no `{said}` in:\n{}", text(&out));
    }
}
