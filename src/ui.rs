//! Everything the commands show: reports on stdout (human tables or JSON), progress and event
//! lines on stderr. No other module prints.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::topology::Loaded;
use crate::verify::{Progress, Report};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn json<T: Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("reports serialize"));
}

pub fn warnings(loaded: &Loaded) {
    for w in &loaded.warnings {
        eprint!("{}", w.render(&loaded.source.path, &loaded.source.text));
    }
}

/// A spinner on stderr that shows convergence, above it a row per host with its latest step
/// (targets that work host by host); silent when stderr is not a terminal or JSON is asked for,
/// in which case event lines, host steps included, go to stderr as plain text.
pub struct Spinner {
    multi: MultiProgress,
    bar: ProgressBar,
    hosts: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Spinner {
    pub fn new(format: Format) -> Self {
        let multi = MultiProgress::with_draw_target(if format == Format::Json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}").expect("a valid template"));
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner {
            multi,
            bar,
            hosts: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    /// One step on one host: its row shows it (and keeps the last one when done).
    pub fn host(&self, server: &str, step: String) {
        if self.bar.is_hidden() {
            eprintln!("{server}: {step}");
            return;
        }
        let mut hosts = self.hosts.lock().expect("host rows");
        let row = hosts.entry(server.to_string()).or_insert_with(|| {
            let row = self.multi.insert_before(&self.bar, ProgressBar::new_spinner());
            row.set_style(ProgressStyle::with_template("  {prefix:.bold} {wide_msg}").expect("a valid template"));
            row.set_prefix(server.to_string());
            row
        });
        row.set_message(step);
    }

    pub fn progress(&self, p: Progress) {
        let e = p.evaluation;
        let healthy = e.nodes.iter().filter(|n| n.healthy).count();
        let links_up = e.links.iter().filter(|l| l.ok).count();
        let meta = e.jetstream.iter().filter(|m| m.ok).count();
        let mut msg = format!("verifying: {healthy}/{} healthy, {links_up}/{} links", e.nodes.len(), e.links.len());
        if !e.jetstream.is_empty() {
            msg += &format!(", meta leader seen by {meta}/{}", e.jetstream.len());
        }
        if p.probing {
            msg += ", sending probes";
        }
        self.bar.set_message(msg);
    }

    pub fn finish(&self) {
        for row in self.hosts.lock().expect("host rows").values() {
            row.finish();
        }
        self.bar.finish_and_clear();
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}

pub fn verify_table(r: &Report) -> String {
    let mut out = String::new();
    let status = if r.ok { "verified" } else { "NOT verified" };
    let took = if r.elapsed_ms < 1000 {
        format!("{} ms", r.elapsed_ms)
    } else {
        format!("{:.1} s", r.elapsed_ms as f64 / 1000.0)
    };
    out += &format!("Topology `{}` on target {}: {status} in {took}\n\n", r.topology, r.target);
    let w = r.nodes.iter().map(|n| n.name.len()).max().unwrap_or(4).max(4);
    let rw = r.nodes.iter().map(|n| n.region.len()).max().unwrap_or(6).max(6);
    out += &format!(
        "{:<w$}  {:<rw$}  {:<4}  {:<26}  {:<26}  HEALTH\n",
        "NODE", "REGION", "ROLE", "CLIENT", "MONITOR"
    );
    for n in &r.nodes {
        let role = match n.role {
            crate::desired::Role::Node => "node",
            crate::desired::Role::Leaf => "leaf",
        };
        let health = if n.healthy {
            "ok".to_string()
        } else {
            format!("FAIL {}", n.detail.as_deref().unwrap_or(""))
        };
        out += &format!(
            "{:<w$}  {:<rw$}  {role:<4}  {:<26}  {:<26}  {health}\n",
            n.name, n.region, n.client_url, n.monitor_url
        );
    }
    out += "\nLinks\n";
    for l in &r.links {
        out += &format!("  {}  {:<8} {} -> {}  {}\n", mark(l.ok), l.kind, l.from, l.to, l.detail);
    }
    if !r.jetstream.is_empty() {
        out += "\nJetStream meta group\n";
        for m in &r.jetstream {
            out += &format!(
                "  {}  {:<w$} leader {}, cluster size {}/{}\n",
                mark(m.ok),
                m.node,
                m.leader.as_deref().unwrap_or("none"),
                m.cluster_size,
                m.expected_cluster_size
            );
        }
    }
    if !r.probes.is_empty() {
        out += "\nProbes\n";
        for p in &r.probes {
            let kind = p.kind.name();
            let expect = if p.expect_delivery { "deliver" } else { "block" };
            out += &format!("  {}  {kind:<11} {} -> {} ({expect})  {}\n", mark(p.ok), p.from, p.to, p.detail);
        }
    }
    if !r.flows.is_empty() {
        out += "\nFlows\n";
        let w = r.flows.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &r.flows {
            out += &format!("  {}  {:<w$}  {:<7} {}: {}\n", mark(f.ok), f.name, f.expect, f.target, f.detail);
        }
    }
    if !r.traces.is_empty() {
        out += "\nTraced paths (as the servers recorded them)\n";
        for t in &r.traces {
            out += &format!("  {}  {}: {}\n", mark(t.ok), t.flow, t.detail);
            for h in &t.hops {
                let stored = if h.stored_in.is_empty() {
                    String::new()
                } else {
                    format!("; stored in {}", h.stored_in.join(", "))
                };
                let out_to = if h.went_out.is_empty() {
                    "nowhere".to_string()
                } else {
                    h.went_out.join(", ")
                };
                out += &format!(
                    "       {:>8.2} ms  {} ({})  in: {}  out: {out_to}{stored}\n",
                    h.at_ms, h.server, h.site, h.came_in
                );
            }
        }
    }
    if !r.streams.is_empty() {
        out += "\nStreams\n";
        let named: Vec<String> = r
            .streams
            .iter()
            .map(|s| match &s.account {
                Some(a) => format!("{} ({a})", s.name),
                None => s.name.clone(),
            })
            .collect();
        let w = named.iter().map(String::len).max().unwrap_or(0);
        for (s, name) in r.streams.iter().zip(&named) {
            let region = s.region.as_deref().unwrap_or("-");
            out += &format!("  {}  {:<12} {name:<w$}  in {region}: {}\n", mark(s.ok), s.kind.label(), s.detail);
        }
    }
    let failures = r.failures();
    if !failures.is_empty() {
        out += &format!("\n{} problem(s):\n", failures.len());
        for f in failures {
            out += &format!("  - {f}\n");
        }
    }
    out
}

/// A byte counter on stderr for each stream backup or restore moves (a bar when the size is
/// known); silent when stderr is not a terminal or JSON is asked for.
pub struct TransferBar {
    hidden: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl TransferBar {
    pub fn new(format: Format) -> Self {
        TransferBar {
            hidden: format == Format::Json,
            bar: Mutex::new(None),
        }
    }

    pub fn event(&self, t: crate::ops::Transfer) {
        use crate::ops::Transfer;
        let mut bar = self.bar.lock().expect("transfer bar");
        match t {
            Transfer::Begin { label, total } => {
                let target = if self.hidden {
                    ProgressDrawTarget::hidden()
                } else {
                    ProgressDrawTarget::stderr()
                };
                let (b, template) = match total {
                    Some(n) => (
                        ProgressBar::with_draw_target(Some(n), target),
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
                    ),
                    None => (
                        ProgressBar::with_draw_target(None, target),
                        "{spinner} {msg} {bytes} {binary_bytes_per_sec}",
                    ),
                };
                b.set_style(ProgressStyle::with_template(template).expect("a valid template"));
                b.set_message(label.to_string());
                b.enable_steady_tick(Duration::from_millis(100));
                *bar = Some(b);
            }
            Transfer::Bytes(n) => {
                if let Some(b) = bar.as_ref() {
                    b.inc(n);
                }
            }
            Transfer::End => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

pub fn backup_table(r: &crate::ops::BackupReport) -> String {
    let mut out = String::new();
    for s in &r.streams {
        out += &format!(
            "{:<40} {:>10} msgs  {:>12}  sha256 {}  consumers: {}\n",
            s.label(),
            s.messages,
            megabytes(s.bytes),
            &s.sha256[..16],
            if s.consumers.is_empty() {
                "-".to_string()
            } else {
                s.consumers.join(", ")
            }
        );
    }
    out += &format!(
        "backed up {} stream(s), {} in {:.2} s ({:.1} MB/s) into `{}`\n",
        r.streams.len(),
        megabytes(r.bytes),
        r.seconds,
        r.mb_per_s,
        r.dir
    );
    if let Some(file) = &r.identity {
        out += &format!(
            "the identity is sealed in `{}/{file}` (age, passphrase from the environment)\n",
            r.dir
        );
    }
    out
}

pub fn restore_table(r: &crate::ops::RestoreReport) -> String {
    let mut out = String::new();
    for s in &r.streams {
        out += &format!(
            "{:<40} {:>10} msgs  consumers: {}{}\n",
            s.label,
            s.messages,
            if s.consumers.is_empty() {
                "-".to_string()
            } else {
                s.consumers.join(", ")
            },
            if s.replaced { "  (replaced the existing stream)" } else { "" }
        );
    }
    out += &format!(
        "restored {} stream(s), {} in {:.2} s ({:.1} MB/s)\n",
        r.streams.len(),
        megabytes(r.bytes),
        r.seconds,
        r.mb_per_s
    );
    out
}
