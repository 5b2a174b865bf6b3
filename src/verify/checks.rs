//! Pure comparison of the expected links with what the servers report.

use serde::Serialize;
use std::collections::BTreeMap;

use crate::desired::{Desired, Link, Role};
use crate::observed::NodeObservation;

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub region: String,
    pub role: Role,
    pub client_url: String,
    pub monitor_url: String,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How full its fuller JetStream store is, in percent of its limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_used_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    /// `route`, `gateway` or `leaf`.
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetaReport {
    pub node: String,
    pub leader: Option<String>,
    pub cluster_size: usize,
    pub expected_cluster_size: usize,
    pub ok: bool,
}

pub struct Evaluation {
    pub nodes: Vec<NodeReport>,
    pub links: Vec<LinkReport>,
    pub jetstream: Vec<MetaReport>,
}

impl Evaluation {
    pub fn ok(&self) -> bool {
        self.nodes.iter().all(|n| n.healthy) && self.links.iter().all(|l| l.ok) && self.jetstream.iter().all(|m| m.ok)
    }
}

/// A JetStream store of the server at or above the topology's threshold, named with how full
/// it is and the objects placed where the server runs (the ones that fill it).
fn full_store(desired: &Desired, s: &crate::desired::ServerSpec, o: &NodeObservation) -> Option<String> {
    let figures = o.figures.as_ref()?;
    let threshold = u128::from(desired.store_full_percent);
    let (kind, used, limit) = [("file", figures.file_store), ("memory", figures.memory_store)]
        .into_iter()
        .map(|(kind, (used, limit))| (kind, used, limit))
        .find(|(_, used, limit)| *limit > 0 && u128::from(*used) * 100 >= u128::from(*limit) * threshold)?;
    let here: Vec<&str> = desired
        .streams_by_region()
        .filter(|(_, region)| *region == s.region)
        .map(|(j, _)| j.stream.as_str())
        .collect();
    Some(format!(
        "its JetStream {kind} store is {}% full ({used} of {limit} bytes, the threshold is {threshold}%): publishes to {} will be refused",
        u128::from(used) * 100 / u128::from(limit),
        if here.is_empty() {
            "its streams".to_string()
        } else {
            here.join(", ")
        }
    ))
}

/// The fuller of a server's JetStream stores, in percent of its limit (none without a limit).
fn store_used_percent(o: &NodeObservation) -> Option<f64> {
    let f = o.figures.as_ref()?;
    [f.file_store, f.memory_store]
        .into_iter()
        .filter(|(_, limit)| *limit > 0)
        .map(|(used, limit)| 100.0 * used as f64 / limit as f64)
        .reduce(f64::max)
}

pub fn evaluate(desired: &Desired, seen: &BTreeMap<String, NodeObservation>) -> Evaluation {
    let empty = NodeObservation::default();
    let obs = |name: &str| seen.get(name).unwrap_or(&empty);
    let nodes = desired
        .servers
        .iter()
        .map(|s| {
            let o = obs(&s.name);
            let wrong_version = desired
                .nats_server_version
                .as_ref()
                .filter(|want| o.version.as_ref().is_some_and(|v| v != *want));
            let (healthy, detail) = match (&o.health, &o.error) {
                (Some(Ok(())), _) if wrong_version.is_some() => (
                    false,
                    Some(format!(
                        "runs nats-server {}, the topology pins {}",
                        o.version.as_deref().unwrap_or("?"),
                        wrong_version.map(String::as_str).unwrap_or_default()
                    )),
                ),
                (Some(Ok(())), _) => match full_store(desired, s, o) {
                    Some(full) => (false, Some(full)),
                    None => (true, None),
                },
                (Some(Err(reason)), _) => (false, Some(reason.clone())),
                (None, Some(e)) => (false, Some(format!("unreachable: {e}"))),
                (None, None) => (false, Some("not observed".into())),
            };
            NodeReport {
                name: s.name.clone(),
                region: s.region.clone(),
                role: s.role,
                client_url: s.client_url.clone(),
                monitor_url: s.monitor_url.clone(),
                healthy,
                detail,
                store_used_percent: store_used_percent(o),
            }
        })
        .collect();

    let links = desired
        .links()
        .iter()
        .map(|link| match link {
            Link::Route { from, to } => {
                let ok = obs(from).route_peers.iter().any(|p| p == to);
                LinkReport {
                    kind: "route",
                    from: from.clone(),
                    to: to.clone(),
                    ok,
                    detail: if ok {
                        "connected".into()
                    } else {
                        format!("{from} has no route to {to}")
                    },
                }
            }
            Link::Gateway { from, to } => {
                let ok = obs(from).gateways_out.iter().any(|g| g == to);
                LinkReport {
                    kind: "gateway",
                    from: from.clone(),
                    to: to.clone(),
                    ok,
                    detail: if ok {
                        "outbound connected".into()
                    } else {
                        format!("{from} has no outbound gateway to region {to}")
                    },
                }
            }
            Link::GatewayInbound { from, to, expected } => {
                // Inbound connections land unevenly on a region's nodes: only the set of remote
                // servers across the region is fixed. A node of `from` can be held twice for a
                // while (seen at 110 servers: its old connection still listed on another node
                // after it reconnected), so servers are counted, not connections.
                let remotes: Vec<&String> = desired
                    .servers
                    .iter()
                    .filter(|s| s.region == *to && s.role == Role::Node)
                    .flat_map(|s| obs(&s.name).gateways_in.get(from).into_iter().flatten())
                    .collect();
                let servers = remotes.iter().collect::<std::collections::BTreeSet<_>>().len();
                let doubles = match remotes.len() - servers {
                    0 => String::new(),
                    n => format!(" ({n} held twice)"),
                };
                LinkReport {
                    kind: "gateway",
                    from: from.clone(),
                    to: to.clone(),
                    ok: servers == *expected,
                    detail: format!("region {to} holds inbound gateway connections from {servers}/{expected} nodes of {from}{doubles}"),
                }
            }
            Link::Leaf { from, to, account } => {
                // A leaf attaches to one hub node, chosen at random: look across the whole hub.
                let at_hub: Vec<String> = desired
                    .servers
                    .iter()
                    .filter(|s| s.region == *to && s.role == Role::Node)
                    .flat_map(|s| {
                        obs(&s.name)
                            .leafs
                            .iter()
                            .filter(|l| l.name == *from && !l.is_spoke)
                            .map(move |l| format!("{}@{}", l.account, s.name))
                    })
                    .collect();
                // In operator mode the servers name the account by its public key.
                let id = desired.account_id(account);
                let bound_right = at_hub.iter().any(|a| a.split('@').next() == Some(id.as_str()));
                let ok = at_hub.len() == 1 && bound_right;
                let detail = match at_hub.as_slice() {
                    [] => format!("leafnode {from} is not connected to region {to}"),
                    [one] if bound_right => format!("connected to {} on account {account}", one.split('@').nth(1).unwrap_or("?")),
                    [one] => format!("connected on account {} instead of {account}", one.split('@').next().unwrap_or("?")),
                    many => format!("{} connections to region {to}, expected 1", many.len()),
                };
                LinkReport {
                    kind: "leaf",
                    from: from.clone(),
                    to: to.clone(),
                    ok,
                    detail,
                }
            }
        })
        .collect();

    let expected = desired.jetstream_meta.len();
    let jetstream = desired
        .jetstream_meta
        .iter()
        .map(|node| {
            let meta = obs(node).meta.clone();
            let leader = meta.as_ref().and_then(|m| m.leader.clone());
            let cluster_size = meta.as_ref().map(|m| m.cluster_size).unwrap_or(0);
            MetaReport {
                node: node.clone(),
                ok: leader.is_some() && cluster_size == expected,
                leader,
                cluster_size,
                expected_cluster_size: expected,
            }
        })
        .collect();

    Evaluation { nodes, links, jetstream }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound_report(held: &[(&str, &[&str])]) -> LinkReport {
        let desired = crate::desired::build_declared("name: t\nregions:\n  a: { nodes: 3 }\n  b: { nodes: 2 }\n");
        let seen = held
            .iter()
            .map(|(node, remotes)| {
                let mut o = NodeObservation::default();
                o.gateways_in.insert("a".into(), remotes.iter().map(|r| r.to_string()).collect());
                (node.to_string(), o)
            })
            .collect();
        evaluate(&desired, &seen)
            .links
            .into_iter()
            .find(|l| l.kind == "gateway" && l.from == "a" && l.to == "b")
            .expect("the inbound check of region b")
    }

    #[test]
    fn inbound_gateways_count_remote_servers_not_connections() {
        let all = inbound_report(&[("b-1", &["A1", "A2"]), ("b-2", &["A3", "A1"])]);
        assert!(all.ok, "{}", all.detail);
        assert_eq!(
            all.detail,
            "region b holds inbound gateway connections from 3/3 nodes of a (1 held twice)"
        );
        let short = inbound_report(&[("b-1", &["A1", "A2"]), ("b-2", &["A2"])]);
        assert!(!short.ok);
        assert_eq!(
            short.detail,
            "region b holds inbound gateway connections from 2/3 nodes of a (1 held twice)"
        );
    }
}
