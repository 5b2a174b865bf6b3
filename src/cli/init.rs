use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Args)]
pub struct InitArgs {
    /// Where to write the topology
    #[arg(default_value = super::DEFAULT_TOPOLOGY)]
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
    // The file's modeline names the schema beside it: editors validate and complete from it.
    let schema = a.file.with_file_name(notif_infra::topology::SCHEMA_FILE);
    std::fs::write(&schema, notif_infra::topology::schema_text()).with_context(|| format!("cannot write `{}`", schema.display()))?;
    eprintln!(
        "wrote `{}` from example `{}` and its schema `{}`; next: notif-infra apply {}",
        a.file.display(),
        a.example,
        schema.display(),
        a.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
