use anyhow::Result;
use clap::Args;
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    target: super::TargetArgs,
}

pub async fn run(a: DestroyArgs) -> Result<ExitCode> {
    let (stopped, dir) = ops::destroy_local(&a.target.local(None)).await?;
    for s in &stopped {
        println!("stopped {s}");
    }
    println!("removed `{}` ({} server(s) stopped)", dir.display(), stopped.len());
    Ok(ExitCode::SUCCESS)
}
