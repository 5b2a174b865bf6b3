use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use notif_infra::topology::edit::{self, EditError};
use notif_infra::topology::{Loaded, Source};

#[derive(Args)]
pub struct AddArgs {
    #[command(subcommand)]
    what: AddWhat,
}

#[derive(Subcommand)]
enum AddWhat {
    /// Add a node to a region (a pod to a cluster)
    Node {
        file: PathBuf,
        region: String,
        /// Needed when the region lists its nodes by name; `nodes: N` regions name it <region>-<N+1>
        name: Option<String>,
        /// The new host's public address, when the region's hosts form a WireGuard mesh
        #[arg(long)]
        endpoint: Option<String>,
        /// Its VPN address (default: the one after the highest in use)
        #[arg(long)]
        vpn_address: Option<String>,
    },
    /// Add a region (a cluster joined to the others by gateways)
    Region {
        file: PathBuf,
        name: String,
        #[arg(long, default_value = "3")]
        nodes: u64,
    },
}

pub fn run(a: AddArgs) -> Result<ExitCode> {
    let (file, edited) = match &a.what {
        AddWhat::Node {
            file,
            region,
            name,
            endpoint,
            vpn_address,
        } => {
            let source = read(file)?;
            let mesh = edit::MeshPlace {
                endpoint: endpoint.clone(),
                address: vpn_address.clone(),
            };
            let (text, loaded, node) = edit::add_node(&source, region, name.as_deref(), &mesh).map_err(unwrap)?;
            (file, (text, loaded, format!("added node {node} to region {region}")))
        }
        AddWhat::Region { file, name, nodes } => {
            let source = read(file)?;
            let (text, loaded) = edit::add_region(&source, name, *nodes).map_err(unwrap)?;
            (file, (text, loaded, format!("added region {name} with {nodes} node(s)")))
        }
    };
    let (text, loaded, what) = edited;
    write_keeping_mode(file, &text)?;
    notif_infra::ui::warnings(&loaded);
    report(file, &loaded, &what);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn read(file: &Path) -> Result<Source> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read topology file `{}`", file.display()))?;
    Ok(Source {
        path: file.display().to_string(),
        text,
    })
}

/// A topology error keeps its own full report; main prints it as is.
pub(super) fn unwrap(e: EditError) -> anyhow::Error {
    match e {
        EditError::Invalid(t) => t.into(),
        refused => refused.into(),
    }
}

pub(super) fn write_keeping_mode(file: &Path, text: &str) -> Result<()> {
    let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
    notif_infra::fsio::write_atomic(file, text.as_bytes(), mode)
}

pub(super) fn report(file: &Path, loaded: &Loaded, what: &str) {
    let t = &loaded.topology;
    println!(
        "{what} in `{}` ({} region(s), {} node(s)); `notif-infra plan {}` shows the rollout",
        file.display(),
        t.regions.len(),
        t.node_count(),
        file.display()
    );
}
