use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// Where to serve /metrics (default: the topology's `monitoring.listen`, else 127.0.0.1:7777)
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub async fn run(a: MonitorArgs) -> Result<ExitCode> {
    let ready = |addr: SocketAddr| eprintln!("monitor: serving http://{addr}/metrics");
    ops::monitor(&a.target.options(None), a.listen, &ready, Box::new(|line| eprintln!("{line}"))).await?;
    Ok(ExitCode::SUCCESS)
}
