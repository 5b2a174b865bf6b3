use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::process::ExitCode;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell the script is for
    shell: Shell,
}

/// The script, generated from the CLI definition: it completes every command and flag.
pub fn run(a: CompletionsArgs) -> Result<ExitCode> {
    let mut cli = super::Cli::command();
    clap_complete::generate(a.shell, &mut cli, "notif-infra", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
