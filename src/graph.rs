//! The topology as a picture: regions as groups of nodes, routes inside a region, gateways
//! between regions, leafnodes to their hub with the account they bind to. Mermaid or Graphviz
//! DOT, optionally coloured by the links of the last verification.

use serde::Deserialize;

use crate::model::Topology;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// A link as the last verification reported it (`links[]` of `verify -o json`).
#[derive(Debug, Clone, Deserialize)]
pub struct LiveLink {
    pub kind: String,
    pub from: String,
    pub to: String,
    pub ok: bool,
}

/// The live links of a saved verification report.
pub fn live_links(report_json: &str) -> Result<Vec<LiveLink>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Saved {
        links: Vec<LiveLink>,
    }
    Ok(serde_json::from_str::<Saved>(report_json)?.links)
}

/// One edge of the picture, with its state when a verification saw it.
struct Edge {
    kind: EdgeKind,
    from: String,
    to: String,
    label: Option<String>,
    ok: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// Between two nodes of a region.
    Route,
    /// Between two regions.
    Gateway,
    /// From a leafnode to its hub region.
    Leaf,
}

/// Whether every reported link that `matches` is up; `None` when the report has none of them.
fn state(live: Option<&[LiveLink]>, matches: impl Fn(&LiveLink) -> bool) -> Option<bool> {
    let seen: Vec<bool> = live?.iter().filter(|l| matches(l)).map(|l| l.ok).collect();
    (!seen.is_empty()).then(|| seen.iter().all(|ok| *ok))
}

fn edges(t: &Topology, live: Option<&[LiveLink]>) -> Vec<Edge> {
    let mut edges = Vec::new();
    for region in &t.regions {
        for (i, a) in region.nodes.iter().enumerate() {
            for b in &region.nodes[i + 1..] {
                let pair =
                    |l: &LiveLink| l.kind == "route" && ((l.from == a.name && l.to == b.name) || (l.from == b.name && l.to == a.name));
                edges.push(Edge {
                    kind: EdgeKind::Route,
                    from: a.name.clone(),
                    to: b.name.clone(),
                    label: None,
                    ok: state(live, pair),
                });
            }
        }
    }
    for (i, a) in t.regions.iter().enumerate() {
        for b in &t.regions[i + 1..] {
            let node_of = |r: &crate::model::Region, n: &str| r.nodes.iter().any(|x| x.name == n);
            let between =
                |l: &LiveLink| l.kind == "gateway" && ((node_of(a, &l.from) && l.to == b.name) || (node_of(b, &l.from) && l.to == a.name));
            edges.push(Edge {
                kind: EdgeKind::Gateway,
                from: a.name.clone(),
                to: b.name.clone(),
                label: Some("gateway".into()),
                ok: state(live, between),
            });
        }
    }
    for leaf in &t.leafnodes {
        let label = match &leaf.account {
            Some(account) => format!("leaf: {account}"),
            None => "leaf".into(),
        };
        edges.push(Edge {
            kind: EdgeKind::Leaf,
            from: leaf.name.clone(),
            to: leaf.hub.clone(),
            label: Some(label),
            ok: state(live, |l| l.kind == "leaf" && l.from == leaf.name),
        });
    }
    edges
}

/// The picture of `t`, coloured by `live` (green up, red down) when given.
pub fn render(t: &Topology, format: GraphFormat, live: Option<&[LiveLink]>) -> String {
    let edges = edges(t, live);
    match format {
        GraphFormat::Mermaid => mermaid(t, &edges),
        GraphFormat::Dot => dot(t, &edges),
    }
}

/// A Mermaid identifier: names may hold `-` and `.`, identifiers may not.
fn mermaid_id(prefix: &str, name: &str) -> String {
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{prefix}_{safe}")
}

fn mermaid(t: &Topology, edges: &[Edge]) -> String {
    let mut out = String::from("flowchart LR\n");
    for region in &t.regions {
        out += &format!("  subgraph {}[\"region {}\"]\n", mermaid_id("r", &region.name), region.name);
        for node in &region.nodes {
            out += &format!("    {}[\"{}\"]\n", mermaid_id("n", &node.name), node.name);
        }
        out += "  end\n";
    }
    for leaf in &t.leafnodes {
        out += &format!("  {}([\"{} (leafnode)\"])\n", mermaid_id("l", &leaf.name), leaf.name);
    }
    let mut styles = String::new();
    for (i, e) in edges.iter().enumerate() {
        let (from, to, arrow) = match e.kind {
            EdgeKind::Route => (mermaid_id("n", &e.from), mermaid_id("n", &e.to), "---"),
            EdgeKind::Gateway => (mermaid_id("r", &e.from), mermaid_id("r", &e.to), "<==>"),
            EdgeKind::Leaf => (mermaid_id("l", &e.from), mermaid_id("r", &e.to), "-.->"),
        };
        match &e.label {
            Some(label) => out += &format!("  {from} {arrow}|{label}| {to}\n"),
            None => out += &format!("  {from} {arrow} {to}\n"),
        }
        if let Some(ok) = e.ok {
            let colour = if ok { "#2e9e44" } else { "#d32f2f" };
            styles += &format!("  linkStyle {i} stroke:{colour},stroke-width:2px\n");
        }
    }
    out + &styles
}

fn dot(t: &Topology, edges: &[Edge]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "graph {} {{\n  compound=true;\n  rankdir=LR;\n  node [shape=box];\n",
        quote(&t.name)
    );
    for region in &t.regions {
        out += &format!(
            "  subgraph {} {{\n    label={};\n",
            quote(&format!("cluster_{}", region.name)),
            quote(&format!("region {}", region.name))
        );
        for node in &region.nodes {
            out += &format!("    {};\n", quote(&node.name));
        }
        out += "  }\n";
    }
    for leaf in &t.leafnodes {
        out += &format!(
            "  {} [shape=ellipse, label={}];\n",
            quote(&leaf.name),
            quote(&format!("{} (leafnode)", leaf.name))
        );
    }
    // Graphviz draws edges between nodes: a region stands for its first node, clipped to its box.
    let first_node = |region: &str| {
        t.regions
            .iter()
            .find(|r| r.name == region)
            .and_then(|r| r.nodes.first())
            .map(|n| n.name.clone())
            .unwrap_or_else(|| region.to_string())
    };
    for e in edges {
        let mut attrs: Vec<String> = Vec::new();
        let (from, to) = match e.kind {
            EdgeKind::Route => (e.from.clone(), e.to.clone()),
            EdgeKind::Gateway => {
                attrs.push(format!("ltail={}", quote(&format!("cluster_{}", e.from))));
                attrs.push(format!("lhead={}", quote(&format!("cluster_{}", e.to))));
                attrs.push("style=bold".into());
                (first_node(&e.from), first_node(&e.to))
            }
            EdgeKind::Leaf => {
                attrs.push(format!("lhead={}", quote(&format!("cluster_{}", e.to))));
                attrs.push("style=dashed".into());
                (e.from.clone(), first_node(&e.to))
            }
        };
        if let Some(label) = &e.label {
            attrs.push(format!("label={}", quote(label)));
        }
        if let Some(ok) = e.ok {
            attrs.push(format!("color={}", if ok { "green" } else { "red" }));
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        out += &format!("  {} -- {}{attrs};\n", quote(&from), quote(&to));
    }
    out + "}\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Source, parse};

    fn topology() -> Topology {
        let text = "name: t\nregions:\n  east:\n    nodes: 2\n  west:\n    nodes: 1\nleafnodes:\n  edge:\n    hub: east\n    account: APP\naccounts:\n  SYS: { system: true }\n  APP: {}\n";
        parse(Source {
            path: "t.yaml".into(),
            text: text.into(),
        })
        .unwrap()
        .topology
    }

    fn link(kind: &str, from: &str, to: &str, ok: bool) -> LiveLink {
        LiveLink {
            kind: kind.into(),
            from: from.into(),
            to: to.into(),
            ok,
        }
    }

    #[test]
    fn every_route_gateway_and_leaf_is_drawn_once() {
        let mermaid = render(&topology(), GraphFormat::Mermaid, None);
        assert_eq!(mermaid.matches(" --- ").count(), 1, "{mermaid}");
        assert!(mermaid.contains("n_east_1 --- n_east_2"), "{mermaid}");
        assert!(mermaid.contains("r_east <==>|gateway| r_west"), "{mermaid}");
        assert!(mermaid.contains("l_edge -.->|leaf: APP| r_east"), "{mermaid}");
        assert!(!mermaid.contains("linkStyle"), "no colours without a verification: {mermaid}");
    }

    #[test]
    fn live_links_colour_their_edges() {
        let live = [
            link("route", "east-1", "east-2", true),
            link("route", "east-2", "east-1", false),
            link("gateway", "east-1", "west", true),
            link("gateway", "west-1", "east", true),
            link("leaf", "edge", "east", true),
        ];
        let mermaid = render(&topology(), GraphFormat::Mermaid, Some(&live));
        // A route is up only when both of its directions are.
        assert!(mermaid.contains("linkStyle 0 stroke:#d32f2f"), "{mermaid}");
        assert!(mermaid.contains("linkStyle 1 stroke:#2e9e44"), "{mermaid}");
        assert!(mermaid.contains("linkStyle 2 stroke:#2e9e44"), "{mermaid}");
        let dot = render(&topology(), GraphFormat::Dot, Some(&live));
        assert!(dot.contains("\"east-1\" -- \"east-2\" [color=red];"), "{dot}");
        assert!(dot.contains("lhead=\"cluster_west\""), "{dot}");
    }
}
