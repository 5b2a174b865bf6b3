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
    /// Seconds to wait for convergence before reporting what is missing
    #[arg(long, default_value = "30")]
    timeout: f64,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: VerifyArgs) -> Result<ExitCode> {
    let spinner = Spinner::new(a.output);
    let timeout = Duration::from_secs_f64(a.timeout);
    let progress = |p: notif_infra::verify::Progress<'_>| spinner.progress(p);
    let report = ops::verify(&a.target.options(None), timeout, &progress).await;
    spinner.finish();
    let report = report?;
    match a.output {
        Format::Human => print!("{}", ui::verify_table(&report)),
        Format::Json => ui::json(&report),
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
