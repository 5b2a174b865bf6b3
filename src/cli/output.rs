use anyhow::Result;
use clap::{Args, ValueEnum};
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum OutputFormat {
    /// Every user's URLs, CA, credentials or password variable, certificate and natscli context
    Json,
    /// NAME=value lines: NATS_URL, NATS_MONITOR_URLS, NATS_CA, NATS_CREDS_<ACCOUNT>_<USER>
    Env,
}

#[derive(Args)]
pub struct OutputArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    #[arg(short = 'o', long, value_enum, default_value = "json")]
    pub(super) output: OutputFormat,
}

/// How clients reach the applied deployment, read from its state without verifying it again.
pub async fn run(a: OutputArgs) -> Result<ExitCode> {
    let opts = a.target.options(None);
    match a.output {
        OutputFormat::Json => notif_infra::ui::json(&ops::client_access(&opts).await?),
        OutputFormat::Env => {
            for (name, value) in ops::client_environment(&opts).await? {
                println!("{name}={value}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
