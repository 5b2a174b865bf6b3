use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;
use notif_infra::ui::{self, Format, TransferBar};

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    target: super::TargetArgs,
    /// The backup directory (written by `backup --to`)
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// A stream, KV bucket or object store to restore (repeatable; default: all in the backup)
    #[arg(long = "stream", value_name = "NAME")]
    streams: Vec<String>,
    /// Delete and replace existing streams that hold messages (otherwise restore refuses)
    #[arg(long)]
    replace: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    output: Format,
}

pub async fn run(a: RestoreArgs) -> Result<ExitCode> {
    let bar = TransferBar::new(a.output);
    let report = ops::restore(&a.target.options(None), &a.from, &a.streams, a.replace, &|t| bar.event(t)).await?;
    match a.output {
        Format::Human => print!("{}", ui::restore_table(&report)),
        Format::Json => ui::json(&report),
    }
    Ok(ExitCode::SUCCESS)
}
