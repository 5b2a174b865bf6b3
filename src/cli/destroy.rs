use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format};

#[derive(Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: DestroyArgs) -> Result<ExitCode> {
    let opts = a.target.options(None);
    let (stopped, dir) = ops::destroy(&opts, &|l| eprintln!("{l}"), &|server, step| eprintln!("{server}: {step}")).await?;
    match a.output {
        Format::Human => {
            for s in &stopped {
                println!("stopped {s}");
            }
            println!("removed `{}` ({} server(s) stopped)", dir.display(), stopped.len());
        }
        Format::Json => ui::json(&json!({ "stopped": stopped, "removed": dir })),
    }
    Ok(ExitCode::SUCCESS)
}
