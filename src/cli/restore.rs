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
    /// Restore only the backup's identity (CA, keys, credentials) into this machine's state
    /// directory, which must hold none, before the first apply; the passphrase comes from
    /// NOTIF_INFRA_BACKUP_PASSPHRASE
    #[arg(long, conflicts_with_all = ["streams", "replace"])]
    identity: bool,
    /// A stream, KV bucket or object store to restore (repeatable; default: all in the backup)
    #[arg(long = "stream", value_name = "NAME")]
    streams: Vec<String>,
    /// Delete and replace existing streams that hold messages (otherwise restore refuses)
    #[arg(long)]
    replace: bool,
    #[arg(short = 'o', long, value_enum, default_value = "human")]
    pub(super) output: Format,
}

pub async fn run(a: RestoreArgs) -> Result<ExitCode> {
    if a.identity {
        let restored = ops::restore_identity(&a.target.options(None), &a.from)?;
        match a.output {
            Format::Human => {
                for dir in &restored {
                    println!("restored {}", dir.display());
                }
                println!("the next apply deploys with this identity");
            }
            Format::Json => ui::json(&serde_json::json!({ "identity": restored })),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = TransferBar::new(a.output);
    let report = ops::restore(&a.target.options(None), &a.from, &a.streams, a.replace, &|t| bar.event(t)).await?;
    match a.output {
        Format::Human => print!("{}", ui::restore_table(&report)),
        Format::Json => ui::json(&report),
    }
    Ok(ExitCode::SUCCESS)
}
