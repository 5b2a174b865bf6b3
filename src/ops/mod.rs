//! The pipeline behind each command, target by target: topology -> desired -> plan -> apply ->
//! verify. The CLI commands are thin wrappers around these functions.

mod cluster;
mod local;
mod material;
mod render;
mod ssh;

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::apply::LocalTarget;
use crate::graph::{self, GraphFormat};
use crate::topology::{self, Loaded, TopologyError};

pub use local::*;
pub use render::*;
pub use ssh::*;

pub fn load(path: &Path) -> Result<Loaded, TopologyError> {
    topology::load(path)
}

/// Loads the topology and fails, listing every unset variable, when the servers would need
/// environment values that are missing.
fn load_for_servers(path: &Path) -> Result<Loaded> {
    let loaded = load(path)?;
    let missing = topology::check_env(&loaded.topology, |v| std::env::var(v).ok());
    if !missing.is_empty() {
        return Err(TopologyError::invalid(&loaded.source, missing).into());
    }
    Ok(loaded)
}

/// The topology as Mermaid or DOT; with `live`, coloured by the local deployment's last
/// verification.
pub fn graph(path: &Path, state_root: &Path, format: GraphFormat, live: bool) -> Result<String> {
    let loaded = load(path)?;
    let t = &loaded.topology;
    let links = if live {
        let target = LocalTarget::new(state_root, &t.name, PathBuf::new());
        let Some(report) = target.last_verification()? else {
            bail!(
                "topology `{}` has not been verified on the local target (nothing in `{}`): run `notif-infra verify {}` first",
                t.name,
                target.dir.display(),
                path.display()
            );
        };
        Some(graph::live_links(&report).context("the saved verification report is not readable: run verify again")?)
    } else {
        None
    };
    Ok(graph::render(t, format, links.as_deref()))
}

/// The starter topologies shipped in `topologies/`, by name.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("dev", include_str!("../../topologies/dev.yaml")),
    ("supercluster", include_str!("../../topologies/supercluster.yaml")),
    ("rsfga", include_str!("../../topologies/rsfga.yaml")),
    ("unityplan", include_str!("../../topologies/unityplan.yaml")),
    ("covenant", include_str!("../../topologies/covenant.yaml")),
    ("notif-hybrid", include_str!("../../topologies/notif-hybrid.yaml")),
    ("mcp", include_str!("../../topologies/mcp.yaml")),
    ("secure", include_str!("../../topologies/secure.yaml")),
];

pub fn example(name: &str) -> Result<&'static str> {
    let names: BTreeMap<_, _> = EXAMPLES.iter().copied().collect();
    names.get(name).copied().ok_or_else(|| {
        let mut msg = format!(
            "no example named `{name}`; the examples are: {}",
            EXAMPLES.iter().map(|e| e.0).collect::<Vec<_>>().join(", ")
        );
        if let Some(s) = topology::did_you_mean(name, EXAMPLES.iter().map(|e| e.0)) {
            msg += &format!("\nhelp: did you mean `{s}`?");
        }
        anyhow::anyhow!(msg)
    })
}
