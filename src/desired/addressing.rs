//! Where each server listens and how peers reach it, for one target.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::{Ports, Topology};

/// Ports a server gets on the local target: `base + stride * slot + offset`, offsets
/// client 0, cluster 1, gateway 2, leafnode 3, monitor 4. A deployment keeps the stride it was
/// created with: one started with the old stride of 10 keeps its ports.
pub const LOCAL_PORT_STRIDE: u16 = 5;
pub const DEFAULT_LOCAL_PORT_BASE: u16 = 14000;
/// Where rendered artefacts expect the output tree's `pki/` and `auth/` on a real host.
pub const DECLARED_CONFIG_DIR: &str = "/etc/nats";

#[derive(Debug, Clone)]
pub enum Addressing {
    /// Hosts, ports and paths as the topology declares them: artefacts for real hosts.
    Declared,
    /// Real hosts deployed over SSH: declared hosts and ports, each host's own directories, and
    /// the client and monitoring ports reached at the address notif-infra logs in at.
    Ssh,
    /// Every server on 127.0.0.1 under one state directory, ports derived from its slot.
    Local {
        port_base: u16,
        port_stride: u16,
        /// Slot of each server; a server keeps its slot (and so its ports) when others come or go.
        slots: BTreeMap<String, u16>,
        state_dir: PathBuf,
    },
    /// Containers of one Docker Compose project on this machine: each server on the hosts and
    /// ports the topology declares inside the project's network, its client and monitoring
    /// ports published on 127.0.0.1 at the local target's slot ports. Certificates and
    /// credentials are mounted at their paths in the state directory.
    Compose {
        port_base: u16,
        port_stride: u16,
        slots: BTreeMap<String, u16>,
        state_dir: PathBuf,
    },
    /// Pods of a Kubernetes namespace: each server on its pod's stable DNS name and the ports
    /// the topology declares; certificates and credentials at paths relative to the pod's
    /// working directory (`/etc/nats`, where they are mounted), so that nats-server computes
    /// the same config digest in the pod and on this machine. Its client and monitoring ports
    /// are reached through port-forwards on 127.0.0.1 at the local target's slot ports.
    Kubernetes {
        namespace: String,
        port_base: u16,
        port_stride: u16,
        slots: BTreeMap<String, u16>,
    },
}

/// The directory a pod's config paths are relative to (its working directory).
pub const POD_CONFIG_DIR: &str = ".";

/// How one server is addressed under an `Addressing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listen_host: String,
    pub host: String,
    pub ports: Ports,
    pub store_dir: String,
    /// Where the server's certificates and credentials are, on its host.
    pub config_dir: String,
    /// How notif-infra reaches the server's client and monitoring listeners from this machine.
    pub reach_host: String,
    pub reach_ports: Ports,
}

impl Addressing {
    pub fn endpoint(&self, topology: &Topology, server: &str, host: &str, ports: Ports) -> Endpoint {
        // A leafnode may bind its listeners elsewhere (loopback for an edge serving its own host).
        let declared_listen = topology
            .leafnodes
            .iter()
            .find(|l| l.name == server)
            .and_then(|l| l.listen.clone())
            .unwrap_or_else(|| topology.settings.listen_host.clone());
        let declared_store = format!("{}/{server}", topology.settings.jetstream_store_dir.trim_end_matches('/'));
        match self {
            Addressing::Declared => Endpoint {
                listen_host: declared_listen,
                host: host.to_string(),
                ports,
                store_dir: declared_store,
                config_dir: DECLARED_CONFIG_DIR.into(),
                reach_host: host.to_string(),
                reach_ports: ports,
            },
            Addressing::Ssh => {
                let ssh = topology.ssh_host(server).expect("every server has a host");
                Endpoint {
                    listen_host: declared_listen,
                    host: host.to_string(),
                    ports,
                    store_dir: format!("{}/jetstream/{server}", ssh.data_dir),
                    config_dir: ssh.config_dir.clone(),
                    reach_host: ssh.address.clone(),
                    reach_ports: ports,
                }
            }
            Addressing::Compose {
                port_base,
                port_stride,
                slots,
                state_dir,
            } => Endpoint {
                listen_host: "0.0.0.0".into(),
                host: host.to_string(),
                ports,
                store_dir: declared_store,
                config_dir: state_dir.display().to_string(),
                reach_host: "127.0.0.1".into(),
                reach_ports: slot_ports(*port_base, *port_stride, slots[server]),
            },
            Addressing::Kubernetes {
                port_base,
                port_stride,
                slots,
                ..
            } => Endpoint {
                listen_host: "0.0.0.0".into(),
                host: host.to_string(),
                ports,
                store_dir: declared_store,
                config_dir: POD_CONFIG_DIR.into(),
                reach_host: "127.0.0.1".into(),
                reach_ports: slot_ports(*port_base, *port_stride, slots[server]),
            },
            Addressing::Local {
                port_base,
                port_stride,
                slots,
                state_dir,
            } => {
                let ports = slot_ports(*port_base, *port_stride, slots[server]);
                Endpoint {
                    listen_host: "127.0.0.1".into(),
                    host: "127.0.0.1".into(),
                    ports,
                    store_dir: state_dir.join("data").join(server).display().to_string(),
                    config_dir: state_dir.display().to_string(),
                    reach_host: "127.0.0.1".into(),
                    reach_ports: ports,
                }
            }
        }
    }
}

impl Addressing {
    /// More names a server is reached by, for its certificate: on Kubernetes, its region's
    /// services (clients dial the client service, whichever pod answers).
    pub fn aliases(&self, topology: &Topology, server: &str) -> Vec<String> {
        let Addressing::Kubernetes { namespace, .. } = self else {
            return Vec::new();
        };
        let Some(region) = topology.regions.iter().find(|r| r.nodes.iter().any(|n| n.name == server)) else {
            return Vec::new();
        };
        let client = format!("{}-client", region.name);
        vec![
            format!("{client}.{namespace}.svc.cluster.local"),
            format!("{client}.{namespace}.svc"),
            format!("{client}.{namespace}"),
            client,
            format!("{}.{namespace}.svc.cluster.local", region.name),
        ]
    }
}

/// The ports of local slot `slot`.
fn slot_ports(port_base: u16, stride: u16, slot: u16) -> Ports {
    let port = |offset: u16| port_base + stride * slot + offset;
    Ports {
        client: port(0),
        cluster: port(1),
        gateway: port(2),
        leafnode: port(3),
        monitor: port(4),
    }
}

/// Slots for the local target: servers already placed keep theirs, new ones take the lowest free
/// slots in topology order. Fails when the ports would run past 65535.
pub fn assign_slots(
    topology: &Topology,
    port_base: u16,
    stride: u16,
    previous: &BTreeMap<String, u16>,
) -> Result<BTreeMap<String, u16>, String> {
    let names = topology.server_names();
    let named: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    let mut slots: BTreeMap<String, u16> = previous
        .iter()
        .filter(|(name, _)| named.contains(name.as_str()))
        .map(|(n, s)| (n.clone(), *s))
        .collect();
    let mut taken: std::collections::BTreeSet<u16> = slots.values().copied().collect();
    let mut next = 0u16;
    for name in names {
        if slots.contains_key(name) {
            continue;
        }
        while taken.contains(&next) {
            next += 1;
        }
        taken.insert(next);
        slots.insert(name.to_string(), next);
    }
    let highest = slots.values().copied().max().unwrap_or(0);
    let top = u32::from(port_base) + u32::from(stride) * u32::from(highest) + 4;
    if top > 65535 {
        return Err(format!(
            "port base {port_base} leaves no room for {} servers (ports would reach {top})",
            slots.len()
        ));
    }
    Ok(slots)
}
