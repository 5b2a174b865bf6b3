//! The hosts of a topology for the tools that provision and prepare them: the Terraform
//! variables of the module in `terraform/`, and the Ansible inventory (a group per region, and
//! one for leafnodes; each host with the login the ssh target uses and the variables the
//! `nats_host` role in `ansible/` reads: server name, directories, binary, environment, ports,
//! VPN address, WireGuard port).

use serde_json::{Map, Value, json};
use std::path::PathBuf;

use super::RenderedFile;
use crate::model::{Node, Ports, SshHost, Topology};

fn host_vars(t: &Topology, name: &str, ssh: &SshHost, ports: Ports, node: Option<&Node>) -> Value {
    // Ansible logs in where the ssh target does and prepares the directories and binary it uses.
    let mut vars = json!({
        "ansible_host": ssh.address,
        "ansible_port": ssh.port,
        "ansible_user": ssh.user,
        "nats_host_server_name": name,
        "nats_host_config_dir": ssh.config_dir,
        "nats_host_data_dir": ssh.data_dir,
        "nats_host_log_dir": ssh.log_dir,
        "nats_host_binary": ssh.nats_server,
        "nats_host_ports": {
            "client": ports.client,
            "cluster": ports.cluster,
            "gateway": ports.gateway,
            "leafnode": ports.leafnode,
            "monitor": ports.monitor,
        },
    });
    if let Some(key) = &ssh.key {
        vars["ansible_ssh_private_key_file"] = json!(key);
    }
    if let Some(known_hosts) = &ssh.known_hosts {
        vars["ansible_ssh_common_args"] = json!(format!("-o UserKnownHostsFile={known_hosts}"));
    }
    if !ssh.env.is_empty() {
        vars["nats_host_environment"] = Value::Object(ssh.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
    }
    if let (Some(w), Some(mesh)) = (node.and_then(|n| n.wireguard.as_ref()), &t.wireguard) {
        vars["nats_host_vpn_address"] = json!(w.address.to_string());
        vars["nats_host_wireguard_port"] = json!(mesh.port_of(w));
    }
    vars
}

pub fn inventory(t: &Topology) -> RenderedFile {
    let mut children = Map::new();
    for region in &t.regions {
        let hosts: Map<String, Value> = region
            .nodes
            .iter()
            .map(|n| (n.name.clone(), host_vars(t, &n.name, &n.ssh, n.ports, Some(n))))
            .collect();
        children.insert(group_name(&region.name), json!({ "hosts": hosts }));
    }
    if !t.leafnodes.is_empty() {
        let hosts: Map<String, Value> = t
            .leafnodes
            .iter()
            .map(|l| (l.name.clone(), host_vars(t, &l.name, &l.ssh, l.ports, None)))
            .collect();
        children.insert("leafnodes".into(), json!({ "hosts": hosts }));
    }
    let inventory = json!({ "all": { "children": children } });
    RenderedFile {
        path: PathBuf::from("ansible/inventory.yml"),
        content: format!(
            "# Rendered by notif-infra from topology `{}`: ansible-playbook -i <this file> ansible/playbook.yml\n---\n{}",
            t.name,
            serde_saphyr::to_string(&inventory).expect("the inventory serializes")
        ),
        secret: false,
    }
}

/// Ansible group names are identifiers: `-` becomes `_`.
fn group_name(region: &str) -> String {
    region.replace('-', "_")
}

/// `terraform/terraform.tfvars.json` for the module in `terraform/`: the topology's name, each
/// region's servers, the NATS ports to open and the WireGuard port.
pub fn terraform_vars(t: &Topology) -> RenderedFile {
    let ports = t.regions.first().and_then(|r| r.nodes.first()).map(|n| n.ports).unwrap_or_default();
    let regions: Map<String, Value> = t
        .regions
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                json!({ "nodes": r.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>() }),
            )
        })
        .collect();
    let mut vars = json!({
        "topology": t.name,
        "regions": regions,
        "ports": {
            "client": ports.client,
            "cluster": ports.cluster,
            "gateway": ports.gateway,
            "leafnode": ports.leafnode,
            "monitor": ports.monitor,
        },
    });
    if let Some(mesh) = &t.wireguard {
        vars["wireguard_port"] = json!(mesh.port);
    }
    RenderedFile {
        path: PathBuf::from("terraform/terraform.tfvars.json"),
        content: serde_json::to_string_pretty(&vars).expect("JSON serializes") + "\n",
        secret: false,
    }
}
