//! Verification: live evidence that the topology exists. Reads every server's monitoring
//! endpoints until the expected links are all up (or the timeout passes), then sends the probes.

mod checklist;
mod checks;
mod flows;
mod probes;
mod readers;
mod streams;
mod trace;

pub use checklist::{Check, Findings, Level, Thresholds, nagios, problems, prometheus, worst};
pub use checks::{Evaluation, LinkReport, MetaReport, NodeReport, evaluate};
pub use flows::FlowReport;
pub use probes::{Clients as ProbeClients, ProbeReport, run_all as run_probes};
pub use streams::{StreamReport, check_all as check_streams};
pub use trace::{FlowTrace, Hop};

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::desired::{Desired, ObjectKind};
use crate::material::Keys;
use crate::observed::jetstream::{self, StreamPlacement};
use crate::observed::{Monitor, NodeObservation};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub topology: String,
    pub target: String,
    pub ok: bool,
    pub elapsed_ms: u128,
    pub nodes: Vec<NodeReport>,
    pub links: Vec<LinkReport>,
    pub jetstream: Vec<MetaReport>,
    pub probes: Vec<ProbeReport>,
    pub streams: Vec<StreamReport>,
    /// The declared flows, when asked for (`--flows`).
    pub flows: Vec<FlowReport>,
    /// The path of each flow's message as the servers traced it (`--flows --trace`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<FlowTrace>,
    /// Where the verification's time went.
    pub phases: Vec<crate::timings::Phase>,
    /// Days left on each TLS server's certificate as issued (`Err`: unreadable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    pub server: String,
    pub days_left: Result<i64, String>,
}

/// The certificates of the deployment's TLS servers, as this machine holds them.
fn certificates(desired: &Desired) -> Vec<CertificateReport> {
    desired
        .certificates
        .iter()
        .map(|(server, path)| CertificateReport {
            server: server.clone(),
            days_left: std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
                .and_then(|pem| crate::material::pki::days_left(&pem)),
        })
        .collect()
}

impl Report {
    /// One line per thing that is wrong, naming it.
    pub fn failures(&self) -> Vec<String> {
        problems(&self.checks(&Thresholds::default()))
    }
}

/// How far convergence has come, for a progress display.
pub struct Progress<'a> {
    pub evaluation: &'a Evaluation,
    pub probing: bool,
}

pub async fn observe_all(monitor: &Monitor, desired: &Desired) -> BTreeMap<String, NodeObservation> {
    let reads = desired
        .servers
        .iter()
        .map(|s| async move { (s.name.clone(), monitor.observe(&s.monitor_url).await) });
    futures_util::future::join_all(reads).await.into_iter().collect()
}

/// What a verification covers beyond the links: the declared flows, when asked.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub timeout: Duration,
    pub flows: bool,
    /// Also trace each flow's message through the servers and check its `via:`.
    pub trace: bool,
}

/// Polls until everything verifies or `timeout` passes; probes run once the links are up, and
/// the declared flows (when asked) once everything else verified.
/// `known_streams` is a reading of the live streams just taken (by plan, when apply changed
/// nothing): the first stream check uses it instead of reading again.
pub async fn verify(
    desired: &Desired,
    keys: &Keys,
    target: &str,
    scope: Scope,
    known_streams: Option<Vec<StreamPlacement>>,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> Report {
    let timeout = scope.timeout;
    let mut known_streams = known_streams;
    let started = Instant::now();
    let monitor = Monitor::for_desired(desired);
    let clients = probes::Clients::default();
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let poll = Monitor::poll_interval(desired.servers.len() * Monitor::ENDPOINTS_OBSERVED);
    let timings = crate::timings::Timings::default();
    let mut links_up = false;
    // The probes' connections open while the servers are first read.
    let mut opening = Some(clients.open_all(desired, keys));
    let mut report = loop {
        let seen = match opening.take() {
            Some(open) => tokio::join!(observe_all(&monitor, desired), open).0,
            None => observe_all(&monitor, desired).await,
        };
        let evaluation = evaluate(desired, &seen);
        let mut probes = Vec::new();
        if evaluation.ok() {
            if !links_up {
                timings.record("verify: health, links and meta group up", started);
                links_up = true;
            }
            on_progress(Progress {
                evaluation: &evaluation,
                probing: true,
            });
            let round = Instant::now();
            probes = probes::run_all(desired, keys, &clients, &nonce).await;
            if probes.iter().all(|p| p.ok) {
                timings.record(format!("verify: message probes ({})", probes.len()), round);
                let phase = Instant::now();
                let streams = streams_until_current(desired, &monitor, known_streams.take(), started, timeout).await;
                timings.record(format!("verify: JetStream objects placed and current ({})", streams.len()), phase);
                break build_report(desired, target, started, evaluation, probes, streams);
            }
        } else {
            on_progress(Progress {
                evaluation: &evaluation,
                probing: false,
            });
        }
        if started.elapsed() >= timeout {
            if !evaluation.ok() {
                // Out of time: still send every probe, so the report shows which paths carry
                // messages despite the missing links.
                probes = probes::run_all(desired, keys, &clients, &nonce).await;
            }
            let streams = streams_until_current(desired, &monitor, known_streams.take(), started, timeout).await;
            break build_report(desired, target, started, evaluation, probes, streams);
        }
        tokio::time::sleep(poll).await;
    };
    clients.close().await;
    if scope.flows && !(desired.flows.is_empty() && desired.bucket_uses.is_empty() && desired.request_checks.is_empty()) {
        let phase = Instant::now();
        report.flows = flows::run_all(desired, keys, &nonce).await;
        report.flows.extend(readers::use_buckets(desired).await);
        report.flows.extend(readers::make_requests(desired, keys, &nonce).await);
        report.ok &= report.flows.iter().all(|f| f.ok);
        timings.record(format!("verify: flows ({})", report.flows.len()), phase);
    }
    if scope.flows && scope.trace {
        let phase = Instant::now();
        report.traces = trace::trace_all(desired, keys, &nonce).await;
        report.ok &= report.traces.iter().all(|t| t.ok);
        timings.record(format!("verify: traced paths ({})", report.traces.len()), phase);
    }
    report.certificates = certificates(desired);
    report.phases = timings.phases();
    report
}

/// Checks the streams until they are all in place and current, or `timeout` (counted from
/// `started`) passes; then reports them as last seen.
async fn streams_until_current(
    desired: &Desired,
    monitor: &Monitor,
    known: Option<Vec<StreamPlacement>>,
    started: Instant,
    timeout: Duration,
) -> Vec<StreamReport> {
    if !desired.jetstream.iter().any(|o| o.kind != ObjectKind::Consumer) {
        return Vec::new();
    }
    let mut known = known;
    loop {
        let live = match known.take() {
            Some(k) => Ok(k),
            None => jetstream::read_placements(monitor, desired).await,
        };
        let reports = streams::check_all(desired, &live);
        if reports.iter().all(|r| r.ok) || started.elapsed() >= timeout {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn build_report(
    desired: &Desired,
    target: &str,
    started: Instant,
    e: Evaluation,
    probes: Vec<ProbeReport>,
    streams: Vec<StreamReport>,
) -> Report {
    let ok = e.ok() && probes.iter().all(|p| p.ok) && streams.iter().all(|s| s.ok);
    Report {
        topology: desired.name.clone(),
        target: target.to_string(),
        ok,
        elapsed_ms: started.elapsed().as_millis(),
        nodes: e.nodes,
        links: e.links,
        jetstream: e.jetstream,
        probes,
        streams,
        flows: Vec::new(),
        traces: Vec::new(),
        phases: Vec::new(),
        certificates: Vec::new(),
    }
}
