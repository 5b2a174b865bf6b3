//! The WireGuard mesh: the network, each node's VPN address and public endpoint, and the clashes
//! that would break the mesh (one address twice, an address outside the network, two hosts on
//! one public address and port).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{Validator, loc};
use crate::model::*;
use crate::topology::diagnostic::Diagnostic;
use crate::topology::schema::*;

pub const DEFAULT_PORT: u16 = 51820;

impl Validator {
    pub(super) fn node_wireguard(&mut self, n: &NodeSpec) -> Option<WgPeer> {
        let wg = &n.wireguard.as_ref()?.value;
        let object = format!("node `{}`", n.name.value);
        let address = match wg.address.value.parse::<Ipv4Addr>() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    Diagnostic::error(format!("`{}` is not an IPv4 address", wg.address.value))
                        .at(loc(&wg.address))
                        .object(object.clone()),
                );
                Ipv4Addr::UNSPECIFIED
            }
        };
        if let Some(host) = &n.host
            && host.value != wg.address.value
        {
            self.error(
                Diagnostic::error(format!(
                    "node `{}` is dialled at `{}` but its WireGuard address is {}",
                    n.name.value, host.value, wg.address.value
                ))
                .at(loc(host))
                .object(object.clone())
                .help("over WireGuard the other servers dial the VPN address: leave `host` out"),
            );
        }
        if wg.endpoint.value.trim().is_empty() {
            self.error(
                Diagnostic::error("an empty WireGuard endpoint")
                    .at(loc(&wg.endpoint))
                    .object(object.clone()),
            );
        }
        let interface = self.wireguard_interface(wg.interface.as_ref(), &object);
        Some(WgPeer {
            address,
            interface,
            endpoint: wg.endpoint.value.clone(),
            // 0: the mesh's default port.
            port: wg.port.as_ref().map(|p| p.value).unwrap_or(0),
        })
    }

    pub(super) fn wireguard(&mut self, file: &TopologyFile, topology: &Topology) -> Option<WireGuard> {
        let peers: Vec<(&NodeSpec, &Node)> = file
            .regions
            .values()
            .filter_map(|r| match &r.nodes.value {
                NodesSpec::List(list) => Some(list),
                NodesSpec::Count(_) => None,
            })
            .flatten()
            .filter(|n| n.wireguard.is_some())
            .filter_map(|spec| {
                Some((
                    spec,
                    topology.regions.iter().flat_map(|r| &r.nodes).find(|n| n.name == spec.name.value)?,
                ))
            })
            .collect();
        let Some(spec) = &file.wireguard else {
            if let Some((first, _)) = peers.first() {
                self.error(
                    Diagnostic::error(format!(
                        "node `{}` has a WireGuard address but the topology declares no mesh",
                        first.name.value
                    ))
                    .at(loc(first.wireguard.as_ref().expect("filtered")))
                    .help("add `wireguard: { network: 10.0.0.0/16 }` at the top level"),
                );
            }
            return None;
        };
        let network = parse_network(&spec.value.network.value);
        let valid_network = network.is_ok();
        let (net, prefix) = network.unwrap_or_else(|e| {
            self.error(Diagnostic::error(e).at(loc(&spec.value.network)).help("write it as `10.0.0.0/16`"));
            (Ipv4Addr::UNSPECIFIED, 0)
        });
        let default_port = spec.value.port.as_ref().map(|p| p.value).unwrap_or(DEFAULT_PORT);
        let mut addresses: HashMap<Ipv4Addr, &str> = HashMap::new();
        let mut endpoints: HashMap<(String, u16), &str> = HashMap::new();
        for (spec_node, node) in &peers {
            let wg = &spec_node.wireguard.as_ref().expect("filtered").value;
            let Some(peer) = &node.wireguard else { continue };
            if valid_network && !in_network(peer.address, net, prefix) {
                self.error(
                    Diagnostic::error(format!(
                        "{} is outside the WireGuard network {}",
                        peer.address, spec.value.network.value
                    ))
                    .at(loc(&wg.address))
                    .object(format!("node `{}`", node.name)),
                );
            }
            if let Some(other) = addresses.insert(peer.address, &node.name) {
                self.error(
                    Diagnostic::error(format!(
                        "nodes `{other}` and `{}` share the WireGuard address {}",
                        node.name, peer.address
                    ))
                    .at(loc(&wg.address))
                    .help("give every host its own VPN address"),
                );
            }
            let port = if peer.port == 0 { default_port } else { peer.port };
            if let Some(other) = endpoints.insert((peer.endpoint.clone(), port), &node.name) {
                self.error(
                    Diagnostic::error(format!(
                        "nodes `{other}` and `{}` both listen for WireGuard on {}:{port}",
                        node.name, peer.endpoint
                    ))
                    .at(loc(&wg.endpoint))
                    .help("hosts behind one public address need different WireGuard ports: set `port:`"),
                );
            }
        }
        Some(WireGuard {
            network: net,
            prefix,
            port: default_port,
            preshared_keys: spec.value.preshared_keys,
            keepalive: spec.value.keepalive.as_ref().map(|k| k.value),
        })
    }
}

fn parse_network(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a network in CIDR form"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("`/{prefix}` is not a prefix length"))?;
    Ok((addr, prefix))
}

fn in_network(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(addr) & mask == u32::from(net) & mask
}
