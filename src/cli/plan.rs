use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
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
    /// Save the plan (0600, secrets by reference only) for `apply PLANFILE` to carry out exactly
    #[arg(long, value_name = "PLANFILE")]
    out: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub async fn run(a: PlanArgs) -> Result<ExitCode> {
    let mut opts = a.target.options(a.port_base);
    opts.prune = a.prune;
    let outcome = ops::plan(&opts, a.out.as_deref(), &|server, step| eprintln!("{server}: {step}")).await?;
    match a.output {
        Format::Human => {
            ui::warnings(&outcome.loaded);
            print!("{}", render_human(&outcome.plan, true));
            if let Some(out) = &a.out {
                println!(
                    "\nSaved the plan to `{}`: `notif-infra apply {}` carries out exactly this plan.",
                    out.display(),
                    out.display()
                );
            }
        }
        Format::Json => ui::json(&json!({ "plan": outcome.plan, "warnings": outcome.loaded.warnings })),
    }
    Ok(if outcome.plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
