use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct SchemaArgs {
    /// Write it to this file instead of printing it
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The JSON Schema of the topology file, for editors (yaml-language-server) and CI validators.
pub fn run(a: SchemaArgs) -> Result<ExitCode> {
    let text = notif_infra::topology::schema_text();
    match a.out {
        Some(path) => std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
