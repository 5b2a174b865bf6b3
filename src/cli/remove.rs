use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use super::add::{read, report, unwrap, write_keeping_mode};
use notif_infra::topology::edit;

#[derive(Args)]
pub struct RemoveArgs {
    #[command(subcommand)]
    what: RemoveWhat,
}

#[derive(Subcommand)]
enum RemoveWhat {
    /// Remove a node (a pod) from its region; apply moves its streams' replicas away first
    Node { file: PathBuf, name: String },
    /// Remove a region (a cluster) and its gateways
    Region { file: PathBuf, name: String },
}

pub fn run(a: RemoveArgs) -> Result<ExitCode> {
    let (file, text, loaded, what) = match &a.what {
        RemoveWhat::Node { file, name } => {
            let (text, loaded, region) = edit::remove_node(&read(file)?, name).map_err(unwrap)?;
            (file, text, loaded, format!("removed node {name} from region {region}"))
        }
        RemoveWhat::Region { file, name } => {
            let (text, loaded) = edit::remove_region(&read(file)?, name).map_err(unwrap)?;
            (file, text, loaded, format!("removed region {name}"))
        }
    };
    write_keeping_mode(file, &text)?;
    notif_infra::ui::warnings(&loaded);
    report(file, &loaded, &what);
    Ok(ExitCode::SUCCESS)
}
