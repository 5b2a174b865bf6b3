//! wg-quick configs for a full mesh: every host with a VPN address gets its interface and, as
//! peers, every other host (public key, endpoint, its VPN address as AllowedIPs, the pair's
//! pre-shared key when asked). The files hold the host's private key: they are secrets.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::RenderedFile;
use crate::material::NOT_YET_GENERATED;
use crate::material::wireguard::WgKeys;
use crate::model::{Node, Topology};

/// The hosts of the mesh: nodes that give a WireGuard address, in topology order.
pub fn mesh_hosts(t: &Topology) -> Vec<&Node> {
    t.regions.iter().flat_map(|r| &r.nodes).filter(|n| n.wireguard.is_some()).collect()
}

/// `wireguard/<host>.conf` for every host of the mesh (none without a `wireguard:` block); keys
/// not generated yet (a dry run) are placeholders.
pub fn configs(t: &Topology, keys: &WgKeys) -> Vec<RenderedFile> {
    let Some(mesh) = &t.wireguard else { return Vec::new() };
    let hosts = mesh_hosts(t);
    hosts
        .iter()
        .filter_map(|host| {
            let me = host.wireguard.as_ref()?;
            let mut conf = format!(
                "# WireGuard interface of {}, rendered by notif-infra from topology `{}` (a full mesh).\n[Interface]\nAddress = {}/{}\nListenPort = {}\nPrivateKey = {}\n",
                host.name,
                t.name,
                me.address,
                mesh.prefix,
                mesh.port_of(me),
                keys.private.get(&host.name).map_or(NOT_YET_GENERATED, String::as_str)
            );
            for peer in hosts.iter().filter(|p| p.name != host.name) {
                let them = peer.wireguard.as_ref()?;
                let _ = write!(
                    conf,
                    "\n# {}\n[Peer]\nPublicKey = {}\n",
                    peer.name,
                    keys.public.get(&peer.name).map_or(NOT_YET_GENERATED, String::as_str)
                );
                let pair = if host.name < peer.name {
                    (host.name.clone(), peer.name.clone())
                } else {
                    (peer.name.clone(), host.name.clone())
                };
                if let Some(psk) = keys.preshared.get(&pair) {
                    let _ = writeln!(conf, "PresharedKey = {psk}");
                }
                let _ = writeln!(conf, "Endpoint = {}:{}", them.endpoint, mesh.port_of(them));
                let _ = writeln!(conf, "AllowedIPs = {}/32", them.address);
                if let Some(k) = mesh.keepalive {
                    let _ = writeln!(conf, "PersistentKeepalive = {k}");
                }
            }
            Some(RenderedFile {
                path: PathBuf::from(format!("wireguard/{}.conf", host.name)),
                content: conf,
                secret: true,
            })
        })
        .collect()
}
