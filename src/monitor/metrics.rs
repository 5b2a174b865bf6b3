//! The picture as Prometheus metrics, through the official client library's registry and text
//! encoder. A fresh registry per round: a server that stops answering loses its figures instead
//! of repeating its last ones.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::{Picture, Watched};
use crate::desired::ObjectKind;
use crate::desired::monitoring::*;

type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Registers the gauges of one metric as they are set.
struct Metrics<'a> {
    registry: Registry,
    families: Vec<(&'static str, Gauges)>,
    common: &'a [(&'static str, String)],
}

impl Metrics<'_> {
    fn set(&mut self, name: &'static str, help: &str, labels: &[(&'static str, String)], value: f64) {
        let family = match self.families.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => f.clone(),
            None => {
                let f = Gauges::default();
                self.registry.register(name, help, f.clone());
                self.families.push((name, f.clone()));
                f
            }
        };
        let mut all: Labels = self.common.to_vec();
        all.extend(labels.iter().cloned());
        family.get_or_create(&all).set(value);
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn account_label(account: &Option<String>) -> String {
    account.clone().unwrap_or_else(|| crate::desired::GLOBAL_ACCOUNT.to_string())
}

pub fn encode(w: &Watched, p: &Picture) -> String {
    let common = [("topology", w.desired.name.clone()), ("target", w.target.clone())];
    let mut m = Metrics {
        registry: Registry::default(),
        families: Vec::new(),
        common: &common,
    };
    // Every check as verify's Prometheus output names it: one list behind both.
    for c in p.checks() {
        m.set(
            CHECK_STATUS,
            "The level of one verify check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
            &[("kind", c.kind.clone()), ("subject", c.subject.clone())],
            c.level as u8 as f64,
        );
    }
    if let Some(e) = &p.evaluation {
        for n in &e.nodes {
            let labels = [("server", n.name.clone()), ("region", n.region.clone())];
            let answered = p.figures.get(&n.name).is_some_and(Option::is_some);
            m.set(
                SERVER_UP,
                "1 when the server's monitoring endpoint answers",
                &labels,
                flag(answered),
            );
            m.set(
                SERVER_HEALTHY,
                "1 when /healthz passes (and the server runs the pinned version)",
                &labels,
                flag(n.healthy),
            );
        }
        for l in &e.links {
            let labels = [("kind", l.kind.to_string()), ("from", l.from.clone()), ("to", l.to.clone())];
            m.set(
                LINK_UP,
                "1 when the expected link is connected, as both ends report",
                &labels,
                flag(l.ok),
            );
        }
        for j in e.jetstream.iter().filter(|j| p.figures.get(&j.node).is_some_and(Option::is_some)) {
            let labels = [("server", j.node.clone())];
            m.set(
                META_LEADER,
                "1 when the server sees a JetStream meta leader",
                &labels,
                flag(j.leader.is_some()),
            );
            m.set(
                META_SIZE,
                "The JetStream meta group's size as the server sees it",
                &labels,
                j.cluster_size as f64,
            );
            m.set(
                META_SIZE_WANTED,
                "The JetStream meta group's size the topology gives",
                &labels,
                j.expected_cluster_size as f64,
            );
        }
    }
    for (server, f) in p.figures.iter().filter_map(|(s, f)| f.as_ref().map(|f| (s, f))) {
        let labels = [("server", server.clone())];
        m.set(SERVER_CONNECTIONS, "Client connections", &labels, f.connections as f64);
        m.set(
            SERVER_SLOW_CONSUMERS,
            "Slow consumers since the server started",
            &labels,
            f.slow_consumers as f64,
        );
        m.set(
            SERVER_MEMORY,
            "Resident memory of the server process",
            &labels,
            f.memory_bytes as f64,
        );
        for (store, (used, limit)) in [("memory", f.memory_store), ("file", f.file_store)] {
            let labels = [("server", server.clone()), ("store", store.to_string())];
            m.set(STORE_USED, "Bytes the JetStream store holds", &labels, used as f64);
            m.set(
                STORE_LIMIT,
                "The JetStream store's limit on the server (0: none)",
                &labels,
                limit as f64,
            );
        }
    }
    for s in &p.streams {
        let wanted = w
            .desired
            .jetstream
            .iter()
            .find(|o| o.kind == s.kind && o.account == s.account && o.name == s.name)
            .map(|o| o.replicas)
            .unwrap_or(1);
        let labels = [
            ("kind", s.kind.label().to_string()),
            ("account", account_label(&s.account)),
            ("stream", s.name.clone()),
        ];
        m.set(
            STREAM_REPLICAS_CURRENT,
            "Replicas up to date: the leader and its current followers",
            &labels,
            s.current as f64,
        );
        m.set(STREAM_REPLICAS_WANTED, "Replicas the topology gives", &labels, f64::from(wanted));
    }
    for o in w.desired.jetstream.iter().filter(|o| o.kind == ObjectKind::Consumer) {
        let labels = [
            ("account", account_label(&o.account)),
            ("stream", o.stream.clone()),
            ("consumer", o.name.clone()),
        ];
        let threshold = w.monitoring.pending_threshold(&o.stream, &o.name);
        m.set(
            CONSUMER_PENDING_THRESHOLD,
            "Pending messages above which the consumer alerts",
            &labels,
            threshold as f64,
        );
        let live = p
            .consumers
            .iter()
            .find(|l| l.account == o.account && l.stream == o.stream && l.name == o.name);
        if let Some(progress) = live.and_then(|l| l.progress.as_ref()) {
            m.set(
                CONSUMER_PENDING,
                "Messages in the stream the consumer has not yet delivered",
                &labels,
                progress.num_pending as f64,
            );
            m.set(
                CONSUMER_ACK_PENDING,
                "Messages delivered and not yet acknowledged",
                &labels,
                progress.num_ack_pending as f64,
            );
            m.set(
                CONSUMER_REDELIVERED,
                "Messages delivered more than once and not yet acknowledged",
                &labels,
                progress.num_redelivered as f64,
            );
            if let Some(idle) = progress.delivered.last_active.as_deref().and_then(seconds_since) {
                m.set(CONSUMER_IDLE, "Seconds since the consumer last delivered a message", &labels, idle);
            }
        }
    }
    for probe in &p.probes {
        let labels = [
            ("kind", probe.kind.name().to_string()),
            ("from", probe.from.clone()),
            ("to", probe.to.clone()),
            ("expect", if probe.expect_delivery { "deliver" } else { "block" }.to_string()),
        ];
        m.set(
            PROBE_OK,
            "1 when the last probe did what the topology says (delivered, or blocked)",
            &labels,
            flag(probe.ok),
        );
        if let Some(ms) = probe.latency_ms {
            m.set(
                PROBE_LATENCY,
                "The last probe's time from first send to delivery",
                &labels,
                ms / 1000.0,
            );
        }
    }
    m.set(READ_SECONDS, "How long the last reading of every server took", &[], p.read_seconds);
    m.set(PROBE_ROUND_SECONDS, "How long the last round of probes took", &[], p.probe_seconds);
    m.set(
        JETSTREAM_READ_OK,
        "1 when the last reading of the JetStream state succeeded",
        &[],
        flag(p.jetstream_error.is_none()),
    );
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &m.registry).expect("metrics encode to a string");
    text
}

/// Seconds from an RFC 3339 time to now.
fn seconds_since(at: &str) -> Option<f64> {
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    Some((time::OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0))
}
