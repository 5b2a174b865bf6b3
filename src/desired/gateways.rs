//! The gateway seed lists of a super-cluster: each node index dials a bounded window of every
//! remote region, each list written once as a shared file.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Endpoint, RemoteGatewayConf, SharedBlock, host_port};
use crate::model::Topology;

/// The servers of a remote region that the `index`-th server of a region lists as gateway
/// seeds: all of them when there are no more than `seeds`, otherwise a window of `seeds` that
/// starts at `index`, so the first connections spread over the remote region. Each config
/// stays bounded however large the super-cluster grows; gossip brings the rest.
fn gateway_seeds(remote: &[crate::model::Node], index: usize, seeds: usize) -> impl Iterator<Item = &crate::model::Node> {
    let n = remote.len();
    let (start, count) = if n <= seeds { (0, n) } else { (index % n, seeds) };
    (0..count).map(move |k| &remote[(start + k) % n])
}

/// The gateway seed list of each node index (the `index`-th node of every region dials the
/// same seeds), each written once as a shared file: lists that come out alike (every region
/// smaller than the seed count) share one file.
pub(super) fn gateway_lists(
    topology: &Topology,
    endpoints: &BTreeMap<&str, Endpoint>,
    shared: &mut Vec<SharedBlock>,
) -> Vec<(String, Arc<Vec<RemoteGatewayConf>>)> {
    let widest = topology.regions.iter().map(|r| r.nodes.len()).max().unwrap_or(0);
    let mut lists: Vec<(String, Arc<Vec<RemoteGatewayConf>>)> = Vec::with_capacity(widest);
    for index in 0..widest {
        let remotes: Vec<RemoteGatewayConf> = topology
            .regions
            .iter()
            .map(|r| RemoteGatewayConf {
                name: r.name.clone(),
                urls: gateway_seeds(&r.nodes, index, topology.settings.gateway_seeds)
                    .map(|n| {
                        let ne = &endpoints[n.name.as_str()];
                        format!("nats://{}", host_port(&ne.host, ne.ports.gateway))
                    })
                    .collect(),
            })
            .collect();
        match lists.iter().find(|(_, l)| **l == remotes) {
            Some(same) => lists.push(same.clone()),
            None => {
                let file = format!("_gateways-{index}.conf");
                let remotes = Arc::new(remotes);
                shared.push(SharedBlock::Gateways {
                    file: file.clone(),
                    remotes: remotes.clone(),
                });
                lists.push((file, remotes));
            }
        }
    }
    lists
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Source, parse};

    #[test]
    fn gateway_blocks_list_a_bounded_window_of_each_remote_region() {
        let text =
            "name: t\ndefaults:\n  gateway_seeds: 2\nregions:\n  a:\n    nodes: 5\n  b:\n    nodes: 5\n  c:\n    nodes: 2\n".to_string();
        let t = parse(Source {
            path: "t.yaml".into(),
            text,
        })
        .expect("valid topology")
        .topology;
        let names = |region: &str, index: usize| -> Vec<String> {
            let r = t.region(region).unwrap();
            gateway_seeds(&r.nodes, index, t.settings.gateway_seeds)
                .map(|n| n.name.clone())
                .collect()
        };
        assert_eq!(names("b", 0), ["b-1", "b-2"]);
        assert_eq!(names("b", 3), ["b-4", "b-5"]);
        assert_eq!(names("b", 4), ["b-5", "b-1"], "the window wraps around");
        assert_eq!(
            names("c", 4),
            ["c-1", "c-2"],
            "a region no larger than the window is listed whole, in order"
        );
        let too_few = "name: t\ndefaults:\n  gateway_seeds: 1\nregions:\n  a:\n    nodes: 3\n".to_string();
        let Err(e) = parse(Source {
            path: "t.yaml".into(),
            text: too_few,
        }) else {
            panic!("one seed is refused")
        };
        assert!(e.to_string().contains("gateway_seeds is 1"), "{e}");
    }
}
