use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::plan::render_human;
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// First port of the local target's range (kept from the last apply when not given)
    #[arg(long, env = "NOTIF_INFRA_PORT_BASE")]
    port_base: Option<u16>,
    /// Delete JetStream objects on the servers that the topology does not name
    #[arg(long)]
    prune: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: PlanArgs) -> Result<ExitCode> {
    let (loaded, plan) = match a.target.ssh() {
        Some(mut opts) => {
            opts.prune = a.prune;
            ops::plan_ssh(&opts, &|server, step| eprintln!("{server}: {step}")).await?
        }
        None => {
            let mut opts = a.target.local(a.port_base)?;
            opts.prune = a.prune;
            ops::plan_local(&opts).await?
        }
    };
    match a.output {
        Format::Human => {
            ui::warnings(&loaded);
            print!("{}", render_human(&plan, true));
        }
        Format::Json => ui::json(&json!({ "plan": plan, "warnings": loaded.warnings })),
    }
    Ok(if plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
