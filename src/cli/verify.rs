use anyhow::Result;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

use notif_infra::ops;
use notif_infra::ui::{self, Format, Spinner};

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
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: VerifyArgs) -> Result<ExitCode> {
    let spinner = Spinner::new(a.output);
    let timeout = a.timeout;
    let progress = |p: notif_infra::verify::Progress<'_>| spinner.progress(p);
    let opts = notif_infra::ops::Options {
        flows: a.flows,
        ..a.target.options(None)
    };
    let report = ops::verify(&opts, timeout, &progress).await;
    spinner.finish();
    let report = report?;
    match a.output {
        Format::Human => print!("{}", ui::verify_table(&report)),
        Format::Json => ui::json(&report),
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
