use anyhow::Result;
use clap::{Args, Subcommand};
use std::process::ExitCode;

use notif_infra::material::pki::Rotation;
use notif_infra::ops;

#[derive(Args)]
pub struct RotateArgs {
    #[command(subcommand)]
    what: RotateWhat,
}

#[derive(Subcommand)]
enum RotateWhat {
    /// New server and client certificates from the existing CA
    Certs {
        #[command(flatten)]
        target: super::TargetArgs,
        /// Replace the CA too: every client must then be given the new ca.pem
        #[arg(long)]
        ca: bool,
    },
}

pub fn run(a: RotateArgs) -> Result<ExitCode> {
    let RotateWhat::Certs { target, ca } = a.what;
    let rotation = if ca { Rotation::All } else { Rotation::Leaves };
    let issued = ops::rotate_certs(&target.options(None), rotation, &|l| eprintln!("{l}"))?;
    for c in &issued {
        println!("issued {} ({})", c.key, c.description);
    }
    println!(
        "{} certificate(s) issued; run `notif-infra apply --target {} {}` to reload the servers with them",
        issued.len(),
        notif_infra::targets::TargetKind::from(target.target).name(),
        target.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
