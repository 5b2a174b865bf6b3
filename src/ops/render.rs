//! `render`: every artefact for the hosts the topology declares.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::load;
use super::material::{KeyMode, secrets_for};
use crate::desired::{self, Addressing, DEFAULT_LOCAL_PORT_BASE, LOCAL_PORT_STRIDE, RenderedFile};
use crate::material::auth;
use crate::material::pki::{CertRequest, Rotation};
use crate::model::Topology;
use crate::plan;
use crate::topology::Loaded;

/// What `render` wrote, and the topology (with its warnings) it came from.
pub struct Rendered {
    pub loaded: Loaded,
    pub out: PathBuf,
    pub files: Vec<RenderedFile>,
    /// What differs from the files in `out` before this render (all of it, with `dry_run`,
    /// still to be written).
    pub changes: Vec<plan::FileChange>,
}

/// The certificates an output tree holds: one PKI for the hosts and the pods, each server with
/// a certificate for the names it is reached by.
fn cert_requests(t: &Topology, pods: Option<&(Topology, Addressing)>) -> Vec<CertRequest> {
    let mut requests = desired::cert_requests(t, &Addressing::Declared);
    if let Some((pods, addressing)) = pods {
        requests.extend(
            desired::cert_requests(pods, addressing)
                .into_iter()
                .filter(|r| !r.stem.starts_with("clients/")),
        );
    }
    requests
}

/// Renders every artefact for the hosts the topology declares into `out` (keys generated once).
/// With `dry_run` nothing is written or generated: `changes` says what a render would change.
pub fn render(path: &Path, out: Option<&Path>, dry_run: bool) -> Result<Rendered> {
    let loaded = load(path)?;
    let t = &loaded.topology;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("out").join(&t.name));
    let pods = match &t.kubernetes {
        Some(k) => {
            let pods = desired::kubernetes::pod_topology(t, k);
            let addressing = desired::kubernetes::addressing(&pods, k, DEFAULT_LOCAL_PORT_BASE, LOCAL_PORT_STRIDE, &BTreeMap::new())
                .map_err(anyhow::Error::msg)?;
            Some((pods, addressing))
        }
        None => None,
    };
    let requests = cert_requests(t, pods.as_ref());
    let mode = if dry_run { KeyMode::Inspect } else { KeyMode::Generate };
    let secrets = secrets_for(t, &out, &requests, mode, Rotation::None)?;
    let tree = std::path::absolute(&out)?;
    let desired = desired::build(t, &Addressing::Declared, &secrets.material(&tree));
    let mut files = desired::render_files(&desired).context("cannot render the server configs")?;
    files.extend(desired::compose_file(
        &desired,
        &t.env_var_names(),
        desired::Publish::Declared,
        desired::DECLARED_CONFIG_DIR,
    ));
    files.extend(desired::host_projects(&desired, &t.env_var_names(), desired::DECLARED_CONFIG_DIR));
    files.push(desired::hosts::inventory(t));
    files.push(desired::hosts::terraform_vars(t));
    files.extend(desired::monitoring::scrape_files(t));
    files.push(desired::monitoring::alerts_file(t));
    let mut owned = vec![
        "nats".to_string(),
        "compose".to_string(),
        "wireguard".to_string(),
        "ansible".to_string(),
        "terraform".to_string(),
        "monitoring".to_string(),
    ];
    owned.extend(desired.servers.iter().map(|s| format!("compose/{}", s.name)));
    owned.extend(auth::tree_dirs(t));
    if let Some(mesh) = &t.wireguard {
        let hosts: Vec<&str> = desired::wireguard::mesh_hosts(t).iter().map(|n| n.name.as_str()).collect();
        let keys = crate::material::wireguard::WgKeyStore::new(&out).load(&hosts, mesh.preshared_keys, !dry_run)?;
        files.extend(desired::wireguard::configs(t, &keys));
    }
    if let (Some(k), Some((pods, addressing))) = (&t.kubernetes, &pods) {
        let pod_desired = desired::build(pods, addressing, &secrets.material(&tree));
        let pod_configs = desired::render_files(&pod_desired).context("cannot render the pods' configs")?;
        let secret_files = desired::kubernetes::secret_files(&out, &pod_desired)?;
        files.extend(desired::kubernetes::manifests(
            pods,
            k,
            &pod_desired,
            &pod_configs,
            &t.env_var_names(),
            &secret_files,
        ));
        owned.extend(t.regions.iter().map(|r| format!("k8s/{}", r.name)));
    }
    let on_disk = crate::observed::files::read_tree(&out, &owned)?;
    let changes = plan::file_changes(&files, &on_disk);
    if !dry_run {
        // Only what differs is written: a render that changes nothing touches no file.
        let changed: Vec<&plan::FileChange> = changes.iter().collect();
        crate::targets::local::write_under(&out, &changed)?;
    }
    Ok(Rendered {
        loaded,
        out,
        files,
        changes,
    })
}
