use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Args)]
pub struct InitArgs {
    /// Where to write the topology
    #[arg(default_value = "topology.yaml")]
    file: PathBuf,
    /// Which shipped example to start from
    #[arg(long, default_value = "dev")]
    example: String,
    /// Overwrite an existing file
    #[arg(long)]
    force: bool,
}

pub fn run(a: InitArgs) -> Result<ExitCode> {
    let text = ops::example(&a.example)?;
    if a.file.exists() && !a.force {
        bail!("`{}` already exists; pass --force to overwrite it", a.file.display());
    }
    std::fs::write(&a.file, text).with_context(|| format!("cannot write `{}`", a.file.display()))?;
    eprintln!(
        "wrote `{}` from example `{}`; next: notif-infra apply {}",
        a.file.display(),
        a.example,
        a.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
