use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use notif_infra::ops;
use notif_infra::plan::render_human;
use notif_infra::timings::Timings;
use notif_infra::ui::{self, Format, Spinner};

#[derive(Args)]
#[command(mut_arg("file", |a| a.value_name("FILE|PLANFILE").help("The topology file, or a plan saved by `plan --out` (carried out exactly, or refused when stale)")))]
pub struct ApplyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// First port of the local target's range (kept from the last apply when not given)
    #[arg(long, env = "NOTIF_INFRA_PORT_BASE")]
    port_base: Option<u16>,
    /// How long to wait for the topology to verify, and for an unreachable server of a cluster
    /// before a rolling restart stops (`90s`, `2m`, or seconds)
    #[arg(long, default_value = "60s", value_parser = super::duration_arg)]
    timeout: Duration,
    /// Delete JetStream objects on the servers that the topology does not name
    #[arg(long)]
    prune: bool,
    /// Replace JetStream objects the server cannot change in place (a stream's messages, a consumer's position are lost)
    #[arg(long)]
    allow_replace: bool,
    /// Also prove the topology's declared flows live after the apply verified (for CI bring-up)
    #[arg(long)]
    flows: bool,
    /// After a verified apply, append NATS_URL, NATS_MONITOR_URLS, NATS_CA and NATS_CREDS_<ACCOUNT>_<USER>
    /// to this file as NAME=value lines (e.g. "$GITHUB_ENV" for later CI steps)
    #[arg(long)]
    env_file: Option<std::path::PathBuf>,
    /// Print where the time went: each phase (prepare, each kind of rollout step, each part of
    /// verify) with its seconds and share (on stderr; `timings` in `-o json`)
    #[arg(long)]
    timings: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub async fn run(a: ApplyArgs) -> Result<ExitCode> {
    let saved = ops::read_plan_file(&a.target.file)?;
    let mut opts = a.target.options(a.port_base);
    if let Some(saved) = &saved {
        // A saved plan carries the options it was made with.
        opts.topology = saved.topology.clone();
        opts.target = saved.target;
        opts.state_root = saved.state_root.clone();
        opts.port_base = Some(saved.port_base);
        opts.prune = saved.prune;
        opts.image = saved.image.clone();
        opts.kube_context = saved.kube_context.clone();
    } else {
        opts.prune = a.prune;
    }
    opts.allow_replace = a.allow_replace;
    opts.flows = a.flows;
    let spinner = Spinner::new(a.output);
    let human = a.output == Format::Human;
    let events = ops::ApplyEvents {
        plan: &|loaded, plan| {
            if human {
                ui::warnings(loaded);
                spinner.line(render_human(plan, false));
            }
        },
        log: &|l| spinner.line(l),
        host: &|server, step| spinner.host(server, step),
        progress: &|p| spinner.progress(p),
    };
    let timeout = a.timeout;
    let timings = Timings::default();
    let started = Instant::now();
    let result = ops::apply(
        &opts,
        saved.as_ref().map(|s| (s, a.target.file.as_path())),
        timeout,
        events,
        &timings,
    )
    .await;
    spinner.finish();
    let (loaded, plan, report) = result?;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let phases = timings.phases();
    if a.timings && a.output == Format::Human {
        eprint!("{}", notif_infra::timings::table(&phases, total_ms));
    }
    if let (Some(file), true) = (&a.env_file, report.ok) {
        let vars = ops::client_environment(&opts).await?;
        let lines: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .with_context(|| format!("cannot append to `{}`", file.display()))?;
        eprintln!("wrote {} variable(s) to `{}`", vars.len(), file.display());
    }
    match a.output {
        Format::Human => print!("{}", ui::verify_table(&report)),
        Format::Json if a.timings => ui::json(&json!({
            "plan": plan,
            "verify": report,
            "warnings": loaded.warnings,
            "timings": { "total_ms": total_ms, "phases": phases },
        })),
        Format::Json => ui::json(&json!({ "plan": plan, "verify": report, "warnings": loaded.warnings })),
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
