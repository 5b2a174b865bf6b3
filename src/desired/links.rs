//! What verification expects of a topology: every route, gateway and leafnode connection, the
//! message probes that prove they carry traffic, and the JetStream meta group.

use serde::Serialize;

use super::GLOBAL_ACCOUNT;
use crate::model::{Pattern, Topology};

/// A link the live servers must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Link {
    /// `from` has a route to `to` (same region).
    Route { from: String, to: String },
    /// Node `from` has its outbound gateway to region `to`.
    Gateway { from: String, to: String },
    /// The nodes of region `to` hold inbound gateway connections from all `expected` nodes of
    /// region `from`.
    GatewayInbound { from: String, to: String, expected: usize },
    /// Leafnode `from` is connected to a node of hub region `to`, bound to `account`.
    Leaf { from: String, to: String, account: String },
}

/// A message sent from one server to another, one per link; `expect_delivery` false is a
/// negative probe that proves a deny rule blocks the subject. A gateway probe goes from a node
/// to a region (`to` is the region's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub kind: ProbeKind,
    pub from: String,
    pub to: String,
    /// The account both ends connect to; `None` without accounts.
    pub account: Option<String>,
    /// A fixed subject (negative probes); positive probes use a fresh subject per run.
    pub subject: Option<String>,
    pub expect_delivery: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Route,
    Gateway,
    LeafImport,
    LeafExport,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Route => "route",
            ProbeKind::Gateway => "gateway",
            ProbeKind::LeafImport => "leaf_import",
            ProbeKind::LeafExport => "leaf_export",
        }
    }
}

/// The account probes use for traffic between regions: the first application account.
pub fn probe_account(topology: &Topology) -> Option<String> {
    topology.app_accounts().next().map(|a| a.name.clone())
}

pub(super) fn expected_links(topology: &Topology) -> Vec<Link> {
    let mut links = Vec::new();
    for region in &topology.regions {
        for from in &region.nodes {
            for to in region.nodes.iter().filter(|n| n.name != from.name) {
                links.push(Link::Route {
                    from: from.name.clone(),
                    to: to.name.clone(),
                });
            }
        }
    }
    for region in &topology.regions {
        for other in topology.regions.iter().filter(|r| r.name != region.name) {
            for node in &region.nodes {
                links.push(Link::Gateway {
                    from: node.name.clone(),
                    to: other.name.clone(),
                });
            }
            links.push(Link::GatewayInbound {
                from: other.name.clone(),
                to: region.name.clone(),
                expected: other.nodes.len(),
            });
        }
    }
    for leaf in &topology.leafnodes {
        links.push(Link::Leaf {
            from: leaf.name.clone(),
            to: leaf.hub.clone(),
            account: leaf.account.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.into()),
        });
    }
    links
}

pub(super) fn probes(topology: &Topology) -> Vec<Probe> {
    let account = probe_account(topology);
    let mut probes = Vec::new();
    let positive = |kind, from: &str, to: &str, account: &Option<String>| Probe {
        kind,
        from: from.to_string(),
        to: to.to_string(),
        account: account.clone(),
        subject: None,
        expect_delivery: true,
    };
    for region in &topology.regions {
        for from in &region.nodes {
            for to in region.nodes.iter().filter(|n| n.name != from.name) {
                probes.push(positive(ProbeKind::Route, &from.name, &to.name, &account));
            }
        }
    }
    // Every node's own outbound gateway to every other region: `to` names the region, since
    // the message arrives at whichever of its nodes the gateway connected to.
    for from in &topology.regions {
        for node in &from.nodes {
            for to in topology.regions.iter().filter(|r| r.name != from.name) {
                probes.push(positive(ProbeKind::Gateway, &node.name, &to.name, &account));
            }
        }
    }
    for leaf in &topology.leafnodes {
        let Some(hub) = topology.region(&leaf.hub).and_then(|r| r.nodes.first()) else {
            continue;
        };
        let account = leaf.account.clone();
        let hub_clustered = topology.region(&leaf.hub).is_some_and(|r| topology.is_clustered(r));
        let import_blocked = covers_probe_subjects(&leaf.deny_import);
        let export_blocked = covers_probe_subjects(&leaf.deny_export) || (hub_clustered && import_blocked);
        for (kind, from, to, deny, blocked) in [
            (ProbeKind::LeafImport, &hub.name, &leaf.name, &leaf.deny_import, import_blocked),
            (ProbeKind::LeafExport, &leaf.name, &hub.name, &leaf.deny_export, export_blocked),
        ] {
            if !blocked {
                probes.push(positive(kind, from, to, &account));
            }
            if let Some(pattern) = deny.first() {
                probes.push(Probe {
                    kind,
                    from: from.clone(),
                    to: to.clone(),
                    account: account.clone(),
                    subject: Some(crate::subject::instance(&pattern.subject, "probe")),
                    expect_delivery: false,
                });
            }
        }
        // A declared allow list keeps out what it does not name: a subject outside it must not
        // cross (the link carries notif-infra's own probes, so the fence still gets through).
        // Each probe on its own subject: the leaf's export probe must not feed its import probe.
        for (kind, from, to, list, way) in [
            (ProbeKind::LeafImport, &hub.name, &leaf.name, &leaf.imports, "import"),
            (ProbeKind::LeafExport, &leaf.name, &hub.name, &leaf.exports, "export"),
        ] {
            let subject = format!("{OUTSIDE_ALLOW_LISTS}.{}.{way}", leaf.name);
            let keeps_out = list
                .as_ref()
                .is_some_and(|l| !l.iter().any(|p| crate::subject::matches(&p.subject, &subject)));
            if keeps_out {
                probes.push(Probe {
                    kind,
                    from: from.clone(),
                    to: to.clone(),
                    account: account.clone(),
                    subject: Some(subject),
                    expect_delivery: false,
                });
            }
        }
    }
    probes
}

/// The first tokens of the negative probes of links whose `imports` or `exports` leave them out.
const OUTSIDE_ALLOW_LISTS: &str = "_NOTIF_INFRA_OUTSIDE.probe";

/// The subject of positive probe `index` in verification run `nonce`: a subject of its own, so
/// no application subscriber sees probes and no two runs mix.
pub fn probe_subject(nonce: &str, index: usize) -> String {
    format!("{}.{nonce}.{index}", crate::access::PROBE_PREFIX)
}

/// Whether a deny list blocks positive probes, whose subjects no path can then carry.
fn covers_probe_subjects(deny: &[Pattern]) -> bool {
    let sample = probe_subject("run", 0);
    deny.iter().any(|d| crate::subject::matches(&d.subject, &sample))
}

pub(super) fn jetstream_meta(topology: &Topology) -> Vec<String> {
    if !topology.regions.iter().any(|r| topology.is_clustered(r)) {
        return Vec::new();
    }
    topology
        .regions
        .iter()
        .filter(|r| r.jetstream.is_some())
        .flat_map(|r| r.nodes.iter().map(|n| n.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pattern;
    use crate::topology::{Source, parse};

    fn leaf_probes(hub_nodes: usize, deny_import: &str, deny_export: &str) -> Vec<(ProbeKind, bool)> {
        let text = format!(
            "name: t\nregions:\n  hub:\n    nodes: {hub_nodes}\nleafnodes:\n  edge:\n    hub: hub\n    deny_import: {deny_import}\n    deny_export: {deny_export}\n"
        );
        let loaded = parse(Source {
            path: "t.yaml".into(),
            text,
        })
        .expect("valid topology");
        probes(&loaded.topology)
            .into_iter()
            .filter(|p| matches!(p.kind, ProbeKind::LeafImport | ProbeKind::LeafExport))
            .map(|p| (p.kind, p.expect_delivery))
            .collect()
    }

    #[test]
    fn a_leaf_denying_every_import_from_a_clustered_hub_gets_no_positive_export_probe() {
        // nats-server drops the leaf's own messages on denied-import subjects when the hub is clustered.
        assert_eq!(leaf_probes(3, r#"[">"]"#, "[]"), vec![(ProbeKind::LeafImport, false)]);
        assert_eq!(
            leaf_probes(1, r#"[">"]"#, "[]"),
            vec![(ProbeKind::LeafImport, false), (ProbeKind::LeafExport, true)]
        );
    }

    #[test]
    fn deny_rules_that_cover_probe_subjects_drop_the_positive_probe_and_keep_the_negative_one() {
        assert_eq!(
            leaf_probes(3, r#"["secret.>"]"#, r#"["*.>"]"#),
            vec![
                (ProbeKind::LeafImport, true),
                (ProbeKind::LeafImport, false),
                (ProbeKind::LeafExport, false)
            ]
        );
    }

    #[test]
    fn every_route_and_every_outbound_gateway_gets_one_probe() {
        let text = "name: t\nregions:\n  east:\n    nodes: 3\n  west:\n    nodes: 2\n  north:\n    nodes: 1\n";
        let loaded = parse(Source {
            path: "t.yaml".into(),
            text: text.into(),
        })
        .expect("valid topology");
        let probes = probes(&loaded.topology);
        let links = expected_links(&loaded.topology);
        let probed = |kind| -> Vec<(String, String)> {
            let mut pairs: Vec<_> = probes
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| (p.from.clone(), p.to.clone()))
                .collect();
            pairs.sort();
            pairs
        };
        let linked = |kind| -> Vec<(String, String)> {
            let mut pairs: Vec<_> = links
                .iter()
                .filter_map(|l| match (l, kind) {
                    (Link::Route { from, to }, ProbeKind::Route) | (Link::Gateway { from, to }, ProbeKind::Gateway) => {
                        Some((from.clone(), to.clone()))
                    }
                    _ => None,
                })
                .collect();
            pairs.sort();
            pairs
        };
        assert_eq!(probed(ProbeKind::Route), linked(ProbeKind::Route));
        assert_eq!(probed(ProbeKind::Gateway), linked(ProbeKind::Gateway));
        assert_eq!(linked(ProbeKind::Gateway).len(), 6 * 2);
    }

    #[test]
    fn probe_subjects_stay_out_of_application_subjects() {
        let subject = probe_subject("abc", 7);
        assert!(crate::subject::check(&subject).is_ok());
        let patterns = |list: &[&str]| -> Vec<Pattern> {
            list.iter()
                .map(|s| Pattern {
                    subject: s.to_string(),
                    loc: Default::default(),
                })
                .collect()
        };
        assert!(covers_probe_subjects(&patterns(&[">"])));
        assert!(!covers_probe_subjects(&patterns(&["orders.>", "_INBOX.>"])));
    }
}
