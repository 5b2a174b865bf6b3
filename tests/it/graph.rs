//! `graph`: every shipped topology as DOT that Graphviz's grammar accepts (parsed by pydot, as
//! installed by scripts/install-test-tools.sh), with one edge per route pair, region pair and
//! leafnode; the pictures of `supercluster.yaml` as snapshots.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{notif_infra, project_root, topology};

fn graph(file: &std::path::Path, format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path())
        .args(["graph", "--format", format])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// (edges, subgraphs) of a DOT text as pydot parses it; fails when it does not parse.
fn parsed_by_pydot(dot: &str) -> (usize, usize) {
    let script = "import sys, pydot\n\
                  graphs = pydot.graph_from_dot_data(sys.stdin.read())\n\
                  if not graphs or len(graphs) != 1: sys.exit('not one DOT graph')\n\
                  g = graphs[0]\n\
                  print(len(g.get_edges()), len(g.get_subgraphs()))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("PYTHONPATH", project_root().join(".tools").join("python"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pydot rejected the DOT (is it installed? run scripts/install-test-tools.sh): {}\n{dot}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (counts[0], counts[1])
}

#[test]
fn every_shipped_topology_draws_as_valid_dot_with_each_link_once() {
    for &(name, _) in notif_infra::ops::EXAMPLES {
        let file = topology(name);
        let t = notif_infra::ops::load(&file).unwrap().topology;
        let routes: usize = t.regions.iter().map(|r| r.nodes.len() * (r.nodes.len() - 1) / 2).sum();
        let gateways = t.regions.len() * (t.regions.len() - 1) / 2;
        let expected = routes + gateways + t.leafnodes.len();
        assert_eq!(parsed_by_pydot(&graph(&file, "dot")), (expected, t.regions.len()), "{name}");
    }
}

#[test]
fn supercluster_pictures() {
    insta::assert_snapshot!("supercluster_mermaid", graph(&topology("supercluster"), "mermaid"));
    insta::assert_snapshot!("supercluster_dot", graph(&topology("supercluster"), "dot"));
}

#[test]
fn svg_without_graphviz_says_what_to_install_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = notif_infra(dir.path())
        .env("PATH", dir.path())
        .args(["graph", "--format", "svg"])
        .arg(topology("dev"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("install graphviz"), "{out:?}");
    assert!(!dir.path().join("dev.svg").exists());
}
