//! What Prometheus needs to watch a deployment: per target, a scrape configuration for the
//! `monitor` that serves the deployment's metrics, and the alert rules over those metrics with
//! the topology's thresholds. The metric names are the contract between these rules and
//! `monitor`: both take them from here.

use serde_json::{Value, json};
use std::path::PathBuf;

use super::RenderedFile;
use crate::model::Topology;

pub const LINK_UP: &str = "nats_link_up";
/// What `verify --format prometheus` prints too.
pub const CHECK_STATUS: &str = "notif_infra_check_status";
pub const PROBE_OK: &str = "nats_probe_ok";
pub const PROBE_LATENCY: &str = "nats_probe_latency_seconds";
pub const SERVER_UP: &str = "nats_server_up";
pub const SERVER_HEALTHY: &str = "nats_server_healthy";
pub const SERVER_CONNECTIONS: &str = "nats_server_connections";
pub const SERVER_SLOW_CONSUMERS: &str = "nats_server_slow_consumers";
pub const SERVER_MEMORY: &str = "nats_server_memory_bytes";
pub const STORE_USED: &str = "nats_jetstream_store_used_bytes";
pub const STORE_LIMIT: &str = "nats_jetstream_store_limit_bytes";
pub const META_LEADER: &str = "nats_meta_leader_present";
pub const META_SIZE: &str = "nats_meta_cluster_size";
pub const META_SIZE_WANTED: &str = "nats_meta_cluster_size_wanted";
pub const STREAM_REPLICAS_CURRENT: &str = "nats_stream_replicas_current";
pub const STREAM_REPLICAS_WANTED: &str = "nats_stream_replicas_wanted";
pub const CONSUMER_PENDING: &str = "nats_consumer_pending";
pub const CONSUMER_PENDING_THRESHOLD: &str = "nats_consumer_pending_threshold";
pub const CONSUMER_ACK_PENDING: &str = "nats_consumer_ack_pending";
pub const CONSUMER_REDELIVERED: &str = "nats_consumer_redelivered";
pub const CONSUMER_IDLE: &str = "nats_consumer_idle_seconds";
pub const READ_SECONDS: &str = "notif_infra_monitor_read_seconds";
pub const PROBE_ROUND_SECONDS: &str = "notif_infra_monitor_probe_round_seconds";
pub const JETSTREAM_READ_OK: &str = "notif_infra_monitor_jetstream_read_ok";

/// The alerts, by name: what each watches (a PromQL comparison on this topology's series).
pub fn alert_rules(t: &Topology) -> Vec<(&'static str, String, String)> {
    let on = format!("{{topology=\"{}\"}}", t.name);
    let full = f64::from(t.monitoring.store_full_percent) / 100.0;
    vec![
        (
            "NatsLinkDown",
            format!("{LINK_UP}{on} == 0"),
            "{{ $labels.kind }} {{ $labels.from }} -> {{ $labels.to }} is down".into(),
        ),
        (
            "NatsServerUnhealthy",
            format!("{SERVER_HEALTHY}{on} == 0"),
            "server {{ $labels.server }} is unreachable or fails /healthz".into(),
        ),
        (
            "NatsMetaLeaderMissing",
            format!("{META_LEADER}{on} == 0"),
            "server {{ $labels.server }} sees no JetStream meta leader".into(),
        ),
        (
            "NatsStreamReplicaNotCurrent",
            format!("{STREAM_REPLICAS_CURRENT}{on} < {STREAM_REPLICAS_WANTED}{on}"),
            "{{ $labels.kind }} {{ $labels.stream }} has {{ $value }} current replica(s), fewer than it wants".into(),
        ),
        (
            "NatsConsumerPendingHigh",
            // The two series carry the same labels, so they match one to one.
            format!("{CONSUMER_PENDING}{on} > {CONSUMER_PENDING_THRESHOLD}{on}"),
            "consumer {{ $labels.stream }}/{{ $labels.consumer }} has {{ $value }} messages pending".into(),
        ),
        (
            "NatsStoreNearlyFull",
            format!("{STORE_USED}{on} / ({STORE_LIMIT}{on} > 0) > {full}"),
            format!(
                "the {{{{ $labels.store }}}} store of {{{{ $labels.server }}}} is above {}% of its limit",
                t.monitoring.store_full_percent
            ),
        ),
    ]
}

fn seconds(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// `monitoring/alerts.yml`: one group, every rule firing after `alert_after`.
pub fn alerts_file(t: &Topology) -> RenderedFile {
    let rules: Vec<Value> = alert_rules(t)
        .into_iter()
        .map(|(name, expr, summary)| {
            json!({
                "alert": name,
                "expr": expr,
                "for": seconds(t.monitoring.alert_after),
                "labels": { "severity": "page" },
                "annotations": { "summary": summary },
            })
        })
        .chain(std::iter::once(json!({
            "alert": "NotifInfraMonitorDown",
            "expr": format!("up{{job=~\"notif-infra-{}-.*\"}} == 0", t.name),
            "for": seconds(t.monitoring.alert_after),
            "labels": { "severity": "page" },
            "annotations": { "summary": "notif-infra monitor at {{ $labels.instance }} is not answering: nothing else here can fire" },
        })))
        .collect();
    let doc = json!({ "groups": [{ "name": format!("notif-infra-{}", t.name), "rules": rules }] });
    RenderedFile {
        path: PathBuf::from("monitoring/alerts.yml"),
        content: format!(
            "# Alert rules for topology {}, over the metrics `notif-infra monitor` serves.\n{}",
            t.name,
            yaml(&doc)
        ),
        secret: false,
    }
}

/// `monitoring/prometheus-<target>.yml` for each target the topology can run on.
pub fn scrape_files(t: &Topology) -> Vec<RenderedFile> {
    let mut targets = vec!["local", "compose", "ssh"];
    if t.kubernetes.is_some() {
        targets.push("k8s");
    }
    let interval = seconds(t.monitoring.interval);
    // Rules evaluated twice per scrape: a condition a scrape shows starts its `for` within half
    // an interval, so an alert fires within its `for` plus two scrape intervals at worst.
    let evaluation = format!("{}ms", (t.monitoring.interval.as_millis() / 2).max(500));
    targets
        .into_iter()
        .map(|target| {
            let doc = json!({
                "global": { "scrape_interval": interval, "evaluation_interval": evaluation },
                "rule_files": ["alerts.yml"],
                "scrape_configs": [{
                    "job_name": format!("notif-infra-{}-{target}", t.name),
                    "static_configs": [{
                        "targets": [t.monitoring.listen.to_string()],
                        "labels": { "target": target },
                    }],
                }],
            });
            RenderedFile {
                path: PathBuf::from(format!("monitoring/prometheus-{target}.yml")),
                content: format!(
                    "# Prometheus for topology {name} on the {target} target. It scrapes\n#   notif-infra monitor {name}.yaml --target {target}\n# which serves the metrics on {listen}.\n{}",
                    yaml(&doc),
                    name = t.name,
                    listen = t.monitoring.listen,
                ),
                secret: false,
            }
        })
        .collect()
}

fn yaml(doc: &Value) -> String {
    serde_saphyr::to_string(doc).expect("JSON values serialize as YAML")
}
