use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

use notif_infra::ops;
use notif_infra::plan::render_human;
use notif_infra::ui::{self, Format, Spinner};

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// First port of the local target's range (kept from the last apply when not given)
    #[arg(long, env = "NOTIF_INFRA_PORT_BASE")]
    port_base: Option<u16>,
    /// Seconds to wait for the topology to verify
    #[arg(long, default_value = "60")]
    timeout: f64,
    /// Delete JetStream objects on the servers that the topology does not name
    #[arg(long)]
    prune: bool,
    /// Replace JetStream objects the server cannot change in place (a stream's messages, a consumer's position are lost)
    #[arg(long)]
    allow_replace: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: ApplyArgs) -> Result<ExitCode> {
    let mut opts = a.target.local(a.port_base);
    opts.prune = a.prune;
    opts.allow_replace = a.allow_replace;
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
        progress: &|p| spinner.progress(p),
    };
    let result = ops::apply_local(&opts, Duration::from_secs_f64(a.timeout), events).await;
    spinner.finish();
    let (loaded, plan, report) = result?;
    match a.output {
        Format::Human => print!("{}", ui::verify_table(&report)),
        Format::Json => ui::json(&json!({ "plan": plan, "verify": report, "warnings": loaded.warnings })),
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
