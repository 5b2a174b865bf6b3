use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use notif_infra::ops;

#[derive(Args)]
pub struct RenderArgs {
    file: PathBuf,
    /// Output directory (default out/<topology name>)
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: RenderArgs) -> Result<ExitCode> {
    let (out, files) = ops::render(&a.file, a.out.as_deref())?;
    for f in &files {
        let note = if f.secret { "  (holds a secret: 0600)" } else { "" };
        println!("{}{note}", out.join(&f.path).display());
    }
    eprintln!("rendered {} file(s) into `{}`", files.len(), out.display());
    Ok(ExitCode::SUCCESS)
}
