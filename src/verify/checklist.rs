//! The verification as one list of checks, each with a level as natscli's `server check` gives
//! it (OK, WARNING, CRITICAL, UNKNOWN). Every machine-facing output reads this list: the
//! problems the table and apply print, the JSON `checks`, Nagios and Prometheus. A new kind of
//! check is added here, once.

use serde::Serialize;
use std::fmt::Write as _;

use crate::desired::monitoring::CHECK_STATUS;

use super::{CertificateReport, FlowReport, FlowTrace, LinkReport, MetaReport, NodeReport, ProbeReport, Report, StreamReport};

/// natscli's levels, in order of gravity; the number is Nagios' exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

/// One thing verify looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What sort of thing: `node`, `route`, `gateway`, `leaf`, `meta`, a probe's kind, a stream's
    /// kind, `flow`.
    pub kind: String,
    /// The thing itself: a server, a link `a -> b`, a stream.
    pub subject: String,
    pub level: Level,
    /// What was seen.
    pub evidence: String,
    /// A measured figure with its unit, where there is one (a probe's latency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<(f64, &'static str)>,
    /// How a problem of this check reads after its subject (`unhealthy`, `missing`).
    #[serde(skip)]
    pub failing_as: &'static str,
}

/// Levels for measured figures: at or above `warning`, WARNING; at or above `critical`,
/// CRITICAL.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    pub probe_latency_ms: (Option<f64>, Option<f64>),
    /// Percent of a JetStream store's limit in use.
    pub store_used_percent: (Option<f64>, Option<f64>),
    /// Days left on a server's certificate: at or below, WARNING or CRITICAL.
    pub certificate_days: (Option<f64>, Option<f64>),
}

impl Default for Thresholds {
    /// A certificate warns 30 days before it expires and is critical 7 days before, as nats
    /// server check's defaults do; the rest has no threshold.
    fn default() -> Self {
        Thresholds {
            probe_latency_ms: (None, None),
            store_used_percent: (None, None),
            certificate_days: (Some(30.0), Some(7.0)),
        }
    }
}

fn pass_or_fail(ok: bool) -> Level {
    if ok { Level::Ok } else { Level::Critical }
}

fn under(value: f64, (warning, critical): (Option<f64>, Option<f64>)) -> Level {
    if critical.is_some_and(|c| value <= c) {
        Level::Critical
    } else if warning.is_some_and(|w| value <= w) {
        Level::Warning
    } else {
        Level::Ok
    }
}

fn over(value: f64, (warning, critical): (Option<f64>, Option<f64>)) -> Level {
    if critical.is_some_and(|c| value >= c) {
        Level::Critical
    } else if warning.is_some_and(|w| value >= w) {
        Level::Warning
    } else {
        Level::Ok
    }
}

/// What the checks are made of: a verification's findings, or `monitor`'s latest picture.
#[derive(Default)]
pub struct Findings<'a> {
    pub nodes: &'a [NodeReport],
    pub links: &'a [LinkReport],
    pub jetstream: &'a [MetaReport],
    pub probes: &'a [ProbeReport],
    pub streams: &'a [StreamReport],
    pub flows: &'a [FlowReport],
    pub traces: &'a [FlowTrace],
    pub certificates: &'a [CertificateReport],
}

impl Report {
    /// Every check of the report, in the report's order.
    pub fn checks(&self, thresholds: &Thresholds) -> Vec<Check> {
        Findings {
            nodes: &self.nodes,
            links: &self.links,
            jetstream: &self.jetstream,
            probes: &self.probes,
            streams: &self.streams,
            flows: &self.flows,
            traces: &self.traces,
            certificates: &self.certificates,
        }
        .checks(thresholds)
    }
}

impl Findings<'_> {
    /// Every check, in this order: servers, stores, certificates, links, meta group, probes,
    /// JetStream objects, flows, traced paths.
    pub fn checks(&self, thresholds: &Thresholds) -> Vec<Check> {
        let mut checks = Vec::new();
        for n in self.nodes {
            checks.push(Check {
                kind: "node".into(),
                subject: n.name.clone(),
                level: pass_or_fail(n.healthy),
                evidence: n.detail.clone().unwrap_or_else(|| "healthy".into()),
                measured: None,
                failing_as: " unhealthy",
            });
        }
        for n in self.nodes {
            let Some(percent) = n.store_used_percent else { continue };
            checks.push(Check {
                kind: "store".into(),
                subject: n.name.clone(),
                level: over(percent, thresholds.store_used_percent),
                evidence: format!("JetStream store {percent:.1}% full"),
                measured: Some((percent, "%")),
                failing_as: "",
            });
        }
        for c in self.certificates {
            let (level, evidence, measured) = match &c.days_left {
                Ok(days) => (
                    under(*days as f64, thresholds.certificate_days),
                    format!("its certificate expires in {days} day(s)"),
                    Some((*days as f64, "days")),
                ),
                Err(e) => (Level::Unknown, e.clone(), None),
            };
            checks.push(Check {
                kind: "certificate".into(),
                subject: c.server.clone(),
                level,
                evidence,
                measured,
                failing_as: "",
            });
        }
        for l in self.links {
            checks.push(Check {
                kind: l.kind.into(),
                subject: format!("{} -> {}", l.from, l.to),
                level: pass_or_fail(l.ok),
                evidence: l.detail.clone(),
                measured: None,
                failing_as: " missing",
            });
        }
        for m in self.jetstream {
            checks.push(Check {
                kind: "meta group".into(),
                subject: m.node.clone(),
                level: pass_or_fail(m.ok),
                evidence: format!(
                    "leader {}, cluster size {} (expected {})",
                    m.leader.as_deref().unwrap_or("none"),
                    m.cluster_size,
                    m.expected_cluster_size
                ),
                measured: None,
                failing_as: "",
            });
        }
        for p in self.probes {
            let level = match (p.ok, p.latency_ms) {
                (false, _) => Level::Critical,
                (true, Some(ms)) => over(ms, thresholds.probe_latency_ms),
                (true, None) => Level::Ok,
            };
            checks.push(Check {
                kind: format!("{} probe", p.kind.name()),
                subject: format!("{} -> {} on {}", p.from, p.to, p.subject),
                level,
                evidence: p.detail.clone(),
                measured: p.latency_ms.map(|ms| (ms, "ms")),
                failing_as: "",
            });
        }
        for s in self.streams {
            let account = s.account.as_deref().map(|a| format!(" (account {a})")).unwrap_or_default();
            checks.push(Check {
                kind: s.kind.label().into(),
                subject: format!("{}{account}", s.name),
                level: pass_or_fail(s.ok),
                evidence: s.detail.clone(),
                measured: None,
                failing_as: "",
            });
        }
        for f in self.flows {
            checks.push(Check {
                kind: "flow".into(),
                subject: format!("{} ({} {})", f.name, f.expect, f.target),
                level: pass_or_fail(f.ok),
                evidence: f.detail.clone(),
                measured: None,
                failing_as: "",
            });
        }
        for t in self.traces {
            checks.push(Check {
                kind: "flow path".into(),
                subject: t.flow.clone(),
                level: pass_or_fail(t.ok),
                evidence: t.detail.clone(),
                measured: None,
                failing_as: "",
            });
        }
        checks
    }
}

/// The gravest level among `checks` (OK when there are none).
pub fn worst(checks: &[Check]) -> Level {
    checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok)
}

/// One line per check that is not OK, naming it.
pub fn problems(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.level != Level::Ok)
        .map(|c| format!("{} {}{}: {}", c.kind, c.subject, c.failing_as, c.evidence))
        .collect()
}

/// The Nagios plugin line: `LEVEL notif-infra NAME: summary | perfdata`.
pub fn nagios(topology: &str, checks: &[Check], thresholds: &Thresholds) -> String {
    let level = worst(checks);
    let failing = checks.iter().filter(|c| c.level != Level::Ok).count();
    let summary = if level == Level::Ok {
        format!("{} checks OK", checks.len())
    } else {
        let mut graver: Vec<&Check> = checks.iter().filter(|c| c.level != Level::Ok).collect();
        graver.sort_by_key(|c| std::cmp::Reverse(c.level));
        let graver: Vec<Check> = graver.into_iter().cloned().collect();
        format!("{failing} of {} checks not OK: {}", checks.len(), problems(&graver).join("; "))
    };
    let latency = checks
        .iter()
        .filter_map(|c| c.measured)
        .filter(|(_, unit)| *unit == "ms")
        .map(|(v, _)| v)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut perf = format!("checks={} not_ok={failing}", checks.len());
    if let Some(ms) = latency {
        let (w, c) = thresholds.probe_latency_ms;
        let limit = |t: Option<f64>| t.map(|t| format!("{t}")).unwrap_or_default();
        let _ = write!(perf, " probe_latency_max={ms:.3}ms;{};{}", limit(w), limit(c));
    }
    format!("{} notif-infra {topology}: {summary} | {perf}\n", level.name())
}

/// The checks as Prometheus text exposition (what natscli's `--format prometheus` is for).
pub fn prometheus(topology: &str, target: &str, checks: &[Check]) -> String {
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let labels = |c: &Check| {
        format!(
            "topology=\"{}\",target=\"{}\",kind=\"{}\",subject=\"{}\"",
            escape(topology),
            escape(target),
            escape(&c.kind),
            escape(&c.subject)
        )
    };
    let mut out = format!(
        "# HELP {CHECK_STATUS} The level of one verify check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE {CHECK_STATUS} gauge\n"
    );
    for c in checks {
        let _ = writeln!(out, "{CHECK_STATUS}{{{}}} {}", labels(c), c.level as u8);
    }
    // Each unit a check measures in, as its own metric in Prometheus' base units.
    let measures: [(&str, &str, &str, f64); 3] = [
        ("ms", "notif_infra_check_latency_seconds", "A probe's latency.", 1000.0),
        (
            "%",
            "notif_infra_check_store_used_ratio",
            "How full a server's fuller JetStream store is.",
            100.0,
        ),
        (
            "days",
            "notif_infra_check_certificate_expiry_days",
            "Days until a server's certificate expires.",
            1.0,
        ),
    ];
    for (unit, metric, help, divisor) in measures {
        let _ = write!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge\n");
        for c in checks {
            if let Some((value, u)) = c.measured
                && u == unit
            {
                let _ = writeln!(out, "{metric}{{{}}} {}", labels(c), value / divisor);
            }
        }
    }
    let _ = write!(
        out,
        "# HELP notif_infra_verify_status The gravest level of all checks.\n# TYPE notif_infra_verify_status gauge\nnotif_infra_verify_status{{topology=\"{}\",target=\"{}\"}} {}\n",
        escape(topology),
        escape(target),
        worst(checks) as u8
    );
    out
}
