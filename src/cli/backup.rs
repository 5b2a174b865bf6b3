use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format, TransferBar};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// A stream, KV bucket or object store to back up (repeatable; default: every declared one)
    #[arg(long = "stream", value_name = "NAME")]
    streams: Vec<String>,
    /// Include the deployment's identity (its CA, keys and credentials), encrypted with age under
    /// the passphrase in NOTIF_INFRA_BACKUP_PASSPHRASE (at least 12 characters)
    #[arg(long)]
    identity: bool,
    /// A new (or empty) directory for the snapshots and their manifest
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub async fn run(a: BackupArgs) -> Result<ExitCode> {
    let bar = TransferBar::new(a.output);
    let report = ops::backup(&a.target.options(None), &a.streams, &a.to, a.identity, &|t| bar.event(t)).await?;
    match a.output {
        Format::Human => print!("{}", ui::backup_table(&report)),
        Format::Json => ui::json(&report),
    }
    Ok(ExitCode::SUCCESS)
}
