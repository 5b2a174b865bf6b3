use anyhow::Result;
use clap::{Args, ValueEnum};
use std::process::ExitCode;
use std::time::Duration;

use notif_infra::ops;
use notif_infra::ui::{self, Format, Spinner};
use notif_infra::verify::{self, Level, Thresholds};

/// What verify prints: the table, JSON, or a monitoring system's format (as natscli's
/// `server check --format`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum VerifyFormat {
    #[value(alias = "text")]
    Human,
    Json,
    /// One Nagios plugin line; exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    Nagios,
    /// Prometheus text exposition of every check; always exits 0
    Prometheus,
}

/// The report as JSON, with the list of checks every other format reads and its gravest level.
#[derive(serde::Serialize)]
struct WithChecks<'a> {
    #[serde(flatten)]
    report: &'a verify::Report,
    level: Level,
    checks: &'a [verify::Check],
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// How long to wait for convergence before reporting what is missing (`30s`, `2m`, or seconds)
    #[arg(long, default_value = "30s", value_parser = super::duration_arg)]
    timeout: Duration,
    /// Also prove the topology's declared flows live: marked messages as the declared users
    #[arg(long)]
    flows: bool,
    /// With --flows: trace each flow's message through the servers (nats-server 2.11+), print
    /// its hops and check the regions and leafnodes its `via:` names
    #[arg(long, requires = "flows")]
    trace: bool,
    /// A probe slower than this is a WARNING (`250ms`, `1s`)
    #[arg(long, value_parser = super::duration_arg)]
    warn_latency: Option<Duration>,
    /// A probe slower than this is CRITICAL
    #[arg(long, value_parser = super::duration_arg)]
    crit_latency: Option<Duration>,
    /// A JetStream store fuller than this percent of its limit is a WARNING
    #[arg(long)]
    warn_store: Option<f64>,
    /// A JetStream store fuller than this percent of its limit is CRITICAL
    #[arg(long)]
    crit_store: Option<f64>,
    /// A server certificate expiring within this many days is a WARNING
    #[arg(long, default_value_t = 30.0)]
    warn_cert_days: f64,
    /// A server certificate expiring within this many days is CRITICAL
    #[arg(long, default_value_t = 7.0)]
    crit_cert_days: f64,
    #[arg(short = 'o', long, alias = "format", value_enum, default_value = "human")]
    pub(super) output: VerifyFormat,
}

pub async fn run(a: VerifyArgs) -> Result<ExitCode> {
    let shown = if a.output == VerifyFormat::Human {
        Format::Human
    } else {
        Format::Json
    };
    let spinner = Spinner::new(shown);
    let progress = |p: verify::Progress<'_>| spinner.progress(p);
    let opts = notif_infra::ops::Options {
        flows: a.flows,
        trace: a.trace,
        ..a.target.options(None)
    };
    let report = ops::verify(&opts, a.timeout, &progress).await;
    spinner.finish();
    let millis = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let thresholds = Thresholds {
        probe_latency_ms: (millis(a.warn_latency), millis(a.crit_latency)),
        store_used_percent: (a.warn_store, a.crit_store),
        certificate_days: (Some(a.warn_cert_days), Some(a.crit_cert_days)),
    };
    let report = match (report, a.output) {
        (Ok(report), _) => report,
        // A check that could not run is UNKNOWN to a monitoring system, not a crash.
        (Err(e), VerifyFormat::Nagios) => {
            println!(
                "UNKNOWN notif-infra: {}",
                notif_infra::material::redact(&format!("{e:#}")).replace('\n', " ")
            );
            return Ok(ExitCode::from(Level::Unknown as u8));
        }
        (Err(e), _) => return Err(e),
    };
    let checks = report.checks(&thresholds);
    let topology = report.topology.as_str();
    match a.output {
        VerifyFormat::Human => print!("{}", ui::verify_table(&report)),
        VerifyFormat::Json => ui::json(&WithChecks {
            report: &report,
            level: verify::worst(&checks),
            checks: &checks,
        }),
        VerifyFormat::Nagios => {
            print!("{}", verify::nagios(topology, &checks, &thresholds));
            return Ok(ExitCode::from(verify::worst(&checks) as u8));
        }
        VerifyFormat::Prometheus => {
            print!("{}", verify::prometheus(topology, &report.target, &checks));
            return Ok(ExitCode::SUCCESS);
        }
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
