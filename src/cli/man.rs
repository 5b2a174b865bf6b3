use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ManArgs {
    /// Write every page (notif-infra.1 and one per command, notif-infra-<command>.1) into DIR
    /// instead of printing the main page
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The manual pages, generated from the CLI definition.
pub fn run(a: ManArgs) -> Result<ExitCode> {
    let cli = super::Cli::command();
    match a.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(cli, &dir).with_context(|| format!("cannot write the pages into `{}`", dir.display()))?;
            println!("wrote the manual pages into `{}`", dir.display());
        }
        None => clap_mangen::Man::new(cli).render(&mut std::io::stdout())?,
    }
    Ok(ExitCode::SUCCESS)
}
