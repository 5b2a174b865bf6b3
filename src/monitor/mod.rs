//! `monitor`: the deployment watched continuously and served as Prometheus metrics: every
//! server's monitoring endpoints (links, health, meta group, figures, streams and consumers)
//! read when Prometheus scrapes, and probes sent at the topology's interval, a round starting
//! only after the previous one ended, so a link never has more than one probe in flight.

mod http;
mod metrics;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::desired::{Desired, ObjectKind};
use crate::material::Keys;
use crate::model::{AccountName, Monitoring};
use crate::observed::jetstream::{self, LiveObject};
use crate::observed::{Monitor, ServerFigures};
use crate::verify::{self, Evaluation, ProbeReport, StreamReport};

pub use http::serve;

/// The latest reading of everything the metrics show.
#[derive(Default)]
pub struct Picture {
    pub evaluation: Option<Evaluation>,
    /// Each server's figures; `None` while it does not answer.
    pub figures: BTreeMap<String, Option<ServerFigures>>,
    pub streams: Vec<StreamReport>,
    /// The declared consumers as the servers report them.
    pub consumers: Vec<LiveObject>,
    /// Why the JetStream state could not be read, when it could not.
    pub jetstream_error: Option<String>,
    pub probes: Vec<ProbeReport>,
    pub read_seconds: f64,
    pub probe_seconds: f64,
}

impl Picture {
    /// The picture as verify's list of checks (what a monitor reading holds of it).
    pub fn checks(&self) -> Vec<verify::Check> {
        let Some(e) = &self.evaluation else { return Vec::new() };
        verify::Findings {
            nodes: &e.nodes,
            links: &e.links,
            jetstream: &e.jetstream,
            probes: &self.probes,
            streams: &self.streams,
            ..Default::default()
        }
        .checks(&verify::Thresholds::default())
    }
}

/// What the monitor watches and how.
pub struct Watched {
    pub desired: Desired,
    pub keys: Keys,
    pub monitoring: Monitoring,
    /// The target's name, a label on every series.
    pub target: String,
}

/// A reading fresher than this serves a scrape as is (several Prometheus servers, or one
/// retrying, need not each make the servers answer again).
const FRESH: Duration = Duration::from_millis(250);

/// The latest picture and how to renew it. Servers are read when Prometheus scrapes (as
/// exporters do: a scrape shows the servers as they are, not as they were an interval ago)
/// and once an interval in between, for the log; probes go out on their own fixed interval.
pub struct Watcher {
    watched: Watched,
    monitor: Monitor,
    picture: RwLock<Picture>,
    reading: tokio::sync::Mutex<Reading>,
    log: Log,
}

/// Where the monitor reports each problem when it starts and when it ends.
pub type Log = Box<dyn Fn(String) + Send + Sync>;

#[derive(Default)]
struct Reading {
    last: Option<Instant>,
    problems: BTreeSet<String>,
}

impl Watcher {
    pub fn new(watched: Watched, log: Log) -> Arc<Watcher> {
        Arc::new(Watcher {
            monitor: Monitor::for_desired(&watched.desired),
            watched,
            picture: RwLock::new(Picture::default()),
            reading: Default::default(),
            log,
        })
    }

    /// Reads every server again unless the last reading is younger than `max_age`; one reading
    /// at a time.
    pub async fn refresh(&self, max_age: Duration) {
        let mut reading = self.reading.lock().await;
        if reading.last.is_some_and(|t| t.elapsed() < max_age) {
            return;
        }
        let started = Instant::now();
        let (evaluation, figures, js) = read_round(&self.watched.desired, &self.monitor).await;
        // The same list of checks verify reads, for what the log says went down or came back.
        let findings = verify::Findings {
            nodes: &evaluation.nodes,
            links: &evaluation.links,
            jetstream: &evaluation.jetstream,
            ..Default::default()
        };
        let problems: BTreeSet<String> = verify::problems(&findings.checks(&verify::Thresholds::default()))
            .into_iter()
            .collect();
        for p in problems.difference(&reading.problems) {
            (self.log)(format!("down: {p}"));
        }
        for p in reading.problems.difference(&problems) {
            (self.log)(format!("back: {p}"));
        }
        reading.problems = problems;
        let mut p = self.picture.write().expect("picture");
        p.evaluation = Some(evaluation);
        p.figures = figures;
        match js {
            Ok((streams, consumers)) => {
                p.streams = streams;
                p.consumers = consumers;
                p.jetstream_error = None;
            }
            Err(e) => p.jetstream_error = Some(e),
        }
        p.read_seconds = started.elapsed().as_secs_f64();
        reading.last = Some(started);
    }

    /// The metrics as Prometheus' text format, from a reading at most `FRESH` old.
    pub async fn scrape(&self) -> String {
        self.refresh(FRESH).await;
        metrics::encode(&self.watched, &self.picture.read().expect("picture"))
    }

    /// Reads and probes on their intervals, until the process ends.
    pub async fn watch(&self) {
        let interval = self.watched.monitoring.interval;
        let reads = async {
            loop {
                let started = Instant::now();
                // While Prometheus scrapes, its readings serve the log too: read only when none
                // came within the last interval.
                self.refresh(interval).await;
                sleep_rest(started, interval).await;
            }
        };
        let probes = async {
            let clients = verify::ProbeClients::default();
            for round in 0u64.. {
                let started = Instant::now();
                let nonce = format!("monitor.{}.{round}", std::process::id());
                let probes = verify::run_probes(&self.watched.desired, &self.watched.keys, &clients, &nonce).await;
                {
                    let mut p = self.picture.write().expect("picture");
                    p.probes = probes;
                    p.probe_seconds = started.elapsed().as_secs_f64();
                }
                sleep_rest(started, interval).await;
            }
        };
        tokio::join!(reads, probes);
    }
}

async fn sleep_rest(started: Instant, interval: Duration) {
    tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
}

type JetStreamReading = Result<(Vec<StreamReport>, Vec<LiveObject>), String>;

/// One reading of every server: the links and health, each server's figures, and the declared
/// streams' replicas and consumers' progress.
async fn read_round(desired: &Desired, monitor: &Monitor) -> (Evaluation, BTreeMap<String, Option<ServerFigures>>, JetStreamReading) {
    let seen = verify::observe_all(monitor, desired).await;
    let evaluation = verify::evaluate(desired, &seen);
    let figures = seen.iter().map(|(name, o)| (name.clone(), o.figures.clone())).collect();
    let js = if desired.jetstream.is_empty() {
        Ok((Vec::new(), Vec::new()))
    } else {
        let live = jetstream::read_monitoring(monitor, desired).await;
        let placements = live.as_deref().map(jetstream::StreamPlacement::of).map_err(String::clone);
        let streams = verify::check_streams(desired, &placements);
        let declared: HashSet<(&AccountName, &str, &str)> = desired
            .jetstream
            .iter()
            .filter(|o| o.kind == ObjectKind::Consumer)
            .map(|o| (&o.account, o.stream.as_str(), o.name.as_str()))
            .collect();
        live.map(|live| {
            let consumers = live
                .into_iter()
                .filter(|l| l.kind == ObjectKind::Consumer && declared.contains(&(&l.account, l.stream.as_str(), l.name.as_str())))
                .collect();
            (streams, consumers)
        })
    };
    (evaluation, figures, js)
}
