//! Day-2 edits of a topology file: add a node or a region by changing only the lines that must
//! change, so comments, order and formatting stay as the user wrote them. The result is parsed
//! and validated before the caller writes it.

use super::schema::{NodesSpec, TopologyFile};
use super::validate::loc;
use super::{Loaded, Source, TopologyError, parse};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(#[from] TopologyError),
    #[error("{path}: {message}")]
    Refused { path: String, message: String },
}

fn refused(source: &Source, message: impl Into<String>) -> EditError {
    EditError::Refused {
        path: source.path.clone(),
        message: message.into(),
    }
}

fn schema(source: &Source) -> Result<TopologyFile, EditError> {
    // A file that does not validate as it is gets no edits: the user fixes it first.
    parse(source.clone())?;
    Ok(serde_saphyr::from_str(&source.text).expect("a file that validated parses"))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The index of the first line after the block that starts at `start` (0-based) and holds every
/// following line indented deeper than `indent`. Trailing blank and comment lines stay outside.
fn block_end(lines: &[&str], start: usize, indent: usize) -> usize {
    let mut end = start + 1;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if is_content(line) {
            if indent_of(line) <= indent {
                break;
            }
            end = i + 1;
        }
    }
    end
}

fn finish(source: &Source, lines: Vec<String>) -> Result<(String, Loaded), EditError> {
    let mut text = lines.join("\n");
    if source.text.ends_with('\n') {
        text.push('\n');
    }
    let loaded = parse(Source {
        path: source.path.clone(),
        text: text.clone(),
    })?;
    Ok((text, loaded))
}

/// Where a new node joins the WireGuard mesh: its public endpoint, and its VPN address (the
/// address after the highest one in use when not given).
#[derive(Debug, Clone, Default)]
pub struct MeshPlace {
    pub endpoint: Option<String>,
    pub address: Option<String>,
}

/// Adds a node to `region`: `nodes: N` becomes `N+1` (the node is `<region>-<N+1>`), a node list
/// gets a new item after its last one; in a region of WireGuard hosts the new node joins the
/// mesh at `mesh`. Returns the new text and what it validates to.
pub fn add_node(source: &Source, region: &str, name: Option<&str>, mesh: &MeshPlace) -> Result<(String, Loaded, String), EditError> {
    let file = schema(source)?;
    let Some((_, spec)) = file.regions.iter().find(|(k, _)| k.value == region) else {
        let names: Vec<&str> = file.regions.keys().map(|k| k.value.as_str()).collect();
        return Err(refused(source, format!("no region `{region}` (regions: {})", names.join(", "))));
    };
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    let at = loc(&spec.nodes);
    let new_name = match &spec.nodes.value {
        NodesSpec::Count(n) => {
            if mesh.endpoint.is_some() {
                return Err(refused(
                    source,
                    format!("the nodes of region `{region}` are not in a WireGuard mesh: leave out --endpoint"),
                ));
            }
            let generated = format!("{region}-{}", n + 1);
            if let Some(wanted) = name.filter(|w| *w != generated) {
                return Err(refused(
                    source,
                    format!(
                        "region `{region}` declares `nodes: {n}`, so its new node is `{generated}`, not `{wanted}`; leave out the name, or list the nodes by name"
                    ),
                ));
            }
            let line = &mut lines[at.line as usize - 1];
            let col = at.col as usize - 1;
            let digits = line[col..].chars().take_while(char::is_ascii_digit).count();
            line.replace_range(col..col + digits, &(n + 1).to_string());
            generated
        }
        NodesSpec::List(nodes) => {
            let Some(last) = nodes.last() else {
                return Err(refused(source, format!("region `{region}` has an empty node list")));
            };
            let name = name.ok_or_else(|| {
                refused(
                    source,
                    format!("region `{region}` lists its nodes by name: give the new node's name"),
                )
            })?;
            let name_line = loc(&last.name).line as usize - 1;
            let text_lines: Vec<&str> = source.text.lines().collect();
            let item = &text_lines[name_line];
            let Some(dash) = item.find("- ") else {
                return Err(refused(
                    source,
                    format!("the nodes of region `{region}` are not a block list (`- name: ...` items): add the node by hand"),
                ));
            };
            let end = block_end(&text_lines, name_line, dash);
            let flow = item[dash + 2..].trim_start().starts_with('{');
            let wireguard = mesh_entry(source, region, nodes, mesh)?;
            let new_item = match (flow, wireguard) {
                (true, None) => format!("{}- {{ name: {name} }}", " ".repeat(dash)),
                (true, Some(wg)) => format!("{}- {{ name: {name}, wireguard: {wg} }}", " ".repeat(dash)),
                (false, None) => format!("{}- name: {name}", " ".repeat(dash)),
                (false, Some(wg)) => format!("{0}- name: {name}\n{0}  wireguard: {wg}", " ".repeat(dash)),
            };
            lines.insert(end, new_item);
            name.to_string()
        }
    };
    let (text, loaded) = finish(source, lines)?;
    Ok((text, loaded, new_name))
}

/// The new node's `wireguard:` value when its region's hosts are in the mesh; an error when
/// they are and no endpoint is given, or they are not and one is.
fn mesh_entry(source: &Source, region: &str, nodes: &[super::schema::NodeSpec], mesh: &MeshPlace) -> Result<Option<String>, EditError> {
    let addresses: Vec<std::net::Ipv4Addr> = nodes
        .iter()
        .filter_map(|n| n.wireguard.as_ref()?.value.address.value.parse().ok())
        .collect();
    match (addresses.is_empty(), &mesh.endpoint) {
        (true, None) => Ok(None),
        (true, Some(_)) => Err(refused(
            source,
            format!("the nodes of region `{region}` are not in a WireGuard mesh: leave out --endpoint"),
        )),
        (false, None) => Err(refused(
            source,
            format!("the nodes of region `{region}` are WireGuard hosts: give the new node's public address with --endpoint"),
        )),
        (false, Some(endpoint)) => {
            let address = match &mesh.address {
                Some(a) => a.clone(),
                None => {
                    let highest = addresses.iter().map(|a| u32::from(*a)).max().expect("not empty");
                    std::net::Ipv4Addr::from(highest + 1).to_string()
                }
            };
            Ok(Some(format!("{{ address: {address}, endpoint: {endpoint} }}")))
        }
    }
}

/// Where the plain or quoted scalar starting at byte `col` of `line` ends.
fn scalar_end(line: &str, col: usize) -> usize {
    let rest = &line[col..];
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map(|i| col + i + 2).unwrap_or(line.len()),
        _ => {
            let stop = rest.find([',', '}']).unwrap_or(rest.len());
            let comment = rest.find(" #").unwrap_or(rest.len());
            col + rest[..stop.min(comment)].trim_end().len()
        }
    }
}

/// Gives nodes the public addresses `addresses` names (by node): a node in the WireGuard mesh
/// gets it as its `endpoint` (peers keep dialling its VPN address), any other node as its
/// `host`. Only nodes listed by name can take one. Returns the new text and what it validates
/// to, and the nodes it changed.
pub fn set_addresses(
    source: &Source,
    addresses: &std::collections::BTreeMap<String, String>,
) -> Result<(String, Loaded, Vec<String>), EditError> {
    let file = schema(source)?;
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    let mut changed = Vec::new();
    // Edits go from the end of the file backwards so earlier positions stay valid.
    let mut edits: Vec<(usize, usize, String, bool)> = Vec::new();
    for (region, spec) in &file.regions {
        let wanted: Vec<&String> = addresses.keys().filter(|n| n.starts_with(&format!("{}-", region.value))).collect();
        let nodes = match &spec.nodes.value {
            NodesSpec::List(nodes) => nodes,
            NodesSpec::Count(_) if !wanted.is_empty() => {
                return Err(refused(
                    source,
                    format!(
                        "region `{}` declares its nodes by count: list them by name (`- name: ...`) to give them addresses",
                        region.value
                    ),
                ));
            }
            NodesSpec::Count(_) => continue,
        };
        for node in nodes {
            let Some(address) = addresses.get(&node.name.value) else { continue };
            changed.push(node.name.value.clone());
            let target = match (&node.wireguard, &node.host) {
                (Some(wg), _) => Some(loc(&wg.value.endpoint)),
                (None, Some(host)) => Some(loc(host)),
                (None, None) => None,
            };
            match target {
                Some(at) => edits.push((at.line as usize - 1, at.col as usize - 1, address.clone(), true)),
                None => {
                    let at = loc(&node.name);
                    edits.push((at.line as usize - 1, at.col as usize - 1, address.clone(), false));
                }
            }
        }
    }
    if let Some(name) = addresses.keys().find(|n| !changed.contains(n)) {
        return Err(refused(source, format!("the topology has no node `{name}`")));
    }
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    for (line, col, address, replace) in edits {
        let text = lines[line].clone();
        let end = scalar_end(&text, col);
        if replace {
            lines[line].replace_range(col..end, &address);
        } else if text[..col].contains('{') {
            lines[line].insert_str(end, &format!(", host: {address}"));
        } else {
            // A block mapping: `host:` goes under `name:`, at the same indent.
            let key = text[..col].rfind("name:").unwrap_or(col);
            lines.insert(line + 1, format!("{}host: {address}", " ".repeat(key)));
        }
    }
    let (text, loaded) = finish(source, lines)?;
    Ok((text, loaded, changed))
}

/// Adds a region of `nodes` nodes after the last one, running JetStream when the first region
/// does.
pub fn add_region(source: &Source, name: &str, nodes: u64) -> Result<(String, Loaded), EditError> {
    let file = schema(source)?;
    if file.regions.keys().any(|k| k.value == name) {
        return Err(refused(source, format!("region `{name}` already exists")));
    }
    let (last_key, _) = file.regions.iter().last().expect("a valid topology has a region");
    let (first_key, first) = file.regions.iter().next().expect("a valid topology has a region");
    let text_lines: Vec<&str> = source.text.lines().collect();
    let key_line = loc(last_key).line as usize - 1;
    let key_indent = loc(last_key).col as usize - 1;
    let field_indent = loc(&first.nodes).line as usize - 1;
    let field_indent = indent_of(text_lines[field_indent]);
    if text_lines[key_line].trim_start().starts_with('{') || field_indent <= key_indent || loc(first_key).line == loc(&first.nodes).line {
        return Err(refused(source, "the regions are written in flow style: add the region by hand"));
    }
    let end = block_end(&text_lines, key_line, key_indent);
    let mut block = vec![
        format!("{}{name}:", " ".repeat(key_indent)),
        format!("{}nodes: {nodes}", " ".repeat(field_indent)),
    ];
    if first.jetstream.is_some() {
        block.push(format!("{}jetstream: true", " ".repeat(field_indent)));
    }
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    for (i, l) in block.into_iter().enumerate() {
        lines.insert(end + i, l);
    }
    finish(source, lines)
}

/// Removes node `name`: a `nodes: N` region can lose its last node (`N` becomes `N-1`), a node
/// list loses the node's item. A region's only node is removed with its region. Returns the new
/// text, what it validates to, and the node's region.
pub fn remove_node(source: &Source, name: &str) -> Result<(String, Loaded, String), EditError> {
    let loaded = parse(source.clone())?;
    let Some(region) = loaded.topology.regions.iter().find(|r| r.nodes.iter().any(|n| n.name == name)) else {
        let names: Vec<&str> = loaded
            .topology
            .regions
            .iter()
            .flat_map(|r| r.nodes.iter().map(|n| n.name.as_str()))
            .collect();
        let mut message = format!("no node `{name}` in any region");
        if let Some(s) = super::did_you_mean(name, names.iter().copied()) {
            message += &format!(" (did you mean `{s}`?)");
        }
        return Err(refused(source, message));
    };
    let region_name = region.name.clone();
    if region.nodes.len() == 1 {
        return Err(refused(
            source,
            format!("`{name}` is the only node of region `{region_name}`: remove the region instead (`remove region {region_name}`)"),
        ));
    }
    let file = schema(source)?;
    let spec = &file
        .regions
        .iter()
        .find(|(k, _)| k.value == region_name)
        .expect("the region validated")
        .1;
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    match &spec.nodes.value {
        NodesSpec::Count(n) => {
            let last = format!("{region_name}-{n}");
            if name != last {
                return Err(refused(
                    source,
                    format!(
                        "region `{region_name}` declares `nodes: {n}`, so only its last node `{last}` can be removed; list the nodes by name to remove another"
                    ),
                ));
            }
            let at = loc(&spec.nodes);
            let line = &mut lines[at.line as usize - 1];
            let col = at.col as usize - 1;
            let digits = line[col..].chars().take_while(char::is_ascii_digit).count();
            line.replace_range(col..col + digits, &(n - 1).to_string());
        }
        NodesSpec::List(nodes) => {
            let node = nodes.iter().find(|n| n.name.value == name).expect("the node validated");
            let name_line = loc(&node.name).line as usize - 1;
            let text_lines: Vec<&str> = source.text.lines().collect();
            let item = text_lines[name_line];
            let dash = match item.find("- ") {
                Some(d) if item[..d].trim().is_empty() => d,
                _ => {
                    return Err(refused(
                        source,
                        format!("the nodes of region `{region_name}` are not a block list (`- name: ...` items): remove the node by hand"),
                    ));
                }
            };
            let end = block_end(&text_lines, name_line, dash);
            lines.drain(comments_above(&text_lines, name_line, dash)..end);
        }
    }
    let (text, loaded) = finish(source, lines)?;
    Ok((text, loaded, region_name))
}

/// Removes region `name` and its block. The last region cannot go; what still refers to the
/// region (placements, leafnode hubs, flows) makes the result fail validation, naming it.
pub fn remove_region(source: &Source, name: &str) -> Result<(String, Loaded), EditError> {
    let file = schema(source)?;
    let Some((key, _)) = file.regions.iter().find(|(k, _)| k.value == name) else {
        let names: Vec<&str> = file.regions.keys().map(|k| k.value.as_str()).collect();
        return Err(refused(source, format!("no region `{name}` (regions: {})", names.join(", "))));
    };
    if file.regions.len() == 1 {
        return Err(refused(
            source,
            format!("`{name}` is the only region: a topology needs one (use `destroy` to take it all down)"),
        ));
    }
    let text_lines: Vec<&str> = source.text.lines().collect();
    let key_line = loc(key).line as usize - 1;
    let key_indent = loc(key).col as usize - 1;
    if !text_lines[key_line].trim_start().starts_with(name) {
        return Err(refused(source, "the regions are written in flow style: remove the region by hand"));
    }
    let end = block_end(&text_lines, key_line, key_indent);
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    lines.drain(comments_above(&text_lines, key_line, key_indent)..end);
    finish(source, lines)
}

/// The first of the comment lines right above line `at` at its indent: they describe what is
/// removed, so they go with it.
fn comments_above(lines: &[&str], at: usize, indent: usize) -> usize {
    let mut start = at;
    while start > 0 {
        let above = lines[start - 1];
        if above.trim_start().starts_with('#') && indent_of(above) == indent {
            start -= 1;
        } else {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            path: "t.yaml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_node_count_is_incremented_in_place() {
        let text = "# dev\nname: dev\nregions:\n  main:\n    nodes: 3   # three for quorum\n    jetstream: true\n";
        let (out, loaded, name) = add_node_plain(&source(text), "main", None).unwrap();
        assert_eq!(out, text.replace("nodes: 3", "nodes: 4"));
        assert_eq!(name, "main-4");
        assert_eq!(loaded.topology.regions[0].nodes.len(), 4);
        assert!(add_node_plain(&source(text), "main", Some("other")).is_err());
        assert!(add_node_plain(&source(text), "west", None).is_err());
    }

    #[test]
    fn a_node_list_gets_an_item_after_its_last_one() {
        let text = "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      # keep me\n      - name: b\n        host: b.example\n\n# trailing\nstreams: {}\n";
        let (out, _, _) = add_node_plain(&source(text), "pods", Some("c")).unwrap();
        assert_eq!(
            out,
            "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      # keep me\n      - name: b\n        host: b.example\n      - name: c\n\n# trailing\nstreams: {}\n"
        );
    }

    #[test]
    fn removing_a_node_changes_only_its_lines_and_keeps_comments() {
        let text = "# dev\nname: dev\nregions:\n  main:\n    nodes: 4   # four\n    jetstream: true\n";
        let (out, loaded, region) = remove_node(&source(text), "main-4").unwrap();
        assert_eq!(out, text.replace("nodes: 4", "nodes: 3"));
        assert_eq!((region.as_str(), loaded.topology.regions[0].nodes.len()), ("main", 3));
        let err = remove_node(&source(text), "main-2").unwrap_err().to_string();
        assert!(err.contains("only its last node `main-4`"), "{err}");
        assert!(
            remove_node(&source(text), "main-9")
                .unwrap_err()
                .to_string()
                .contains("did you mean")
        );

        let list = "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      # b goes with this comment\n      - name: b\n        host: b.example\n      - name: c\n\n# trailing\n";
        let (out, _, _) = remove_node(&source(list), "b").unwrap();
        assert_eq!(
            out,
            "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      - name: c\n\n# trailing\n"
        );
    }

    #[test]
    fn removing_a_node_that_a_stream_needs_is_refused_naming_the_stream() {
        let text = "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  EVENTS: { subjects: [e], replicas: 3 }\n";
        let err = remove_node(&source(text), "main-3").unwrap_err();
        let EditError::Invalid(e) = err else { panic!("{err}") };
        let report = e.to_string();
        assert!(
            report.contains("stream `EVENTS` wants 3 replicas but region `main` has 2 node(s)"),
            "{report}"
        );
    }

    #[test]
    fn removing_a_region_drops_its_block_only() {
        let text = "name: sc\nregions:\n  east:\n    nodes: 3\n  # the west coast\n  west:\n    nodes: 3\n    jetstream: true\naccounts:\n  SYS: { system: true }\n";
        let (out, loaded) = remove_region(&source(text), "west").unwrap();
        assert_eq!(
            out,
            "name: sc\nregions:\n  east:\n    nodes: 3\naccounts:\n  SYS: { system: true }\n"
        );
        assert_eq!(loaded.topology.regions.len(), 1);
        assert!(remove_region(&source(&out), "east").is_err());
    }

    #[test]
    fn a_region_is_appended_after_the_last_region() {
        let text = "name: sc\nregions:\n  east:\n    nodes: 3\n    jetstream: true\n  # the west coast\n  west:\n    nodes: 3\n    jetstream: true\naccounts:\n  SYS: { system: true }\n";
        let (out, loaded) = add_region(&source(text), "south", 3).unwrap();
        assert!(
            out.contains("    jetstream: true\n  south:\n    nodes: 3\n    jetstream: true\naccounts:"),
            "{out}"
        );
        assert!(out.contains("  # the west coast\n"));
        assert_eq!(loaded.topology.regions.len(), 3);
        assert!(add_region(&source(text), "east", 3).is_err());
    }

    #[test]
    fn an_edit_that_breaks_the_topology_is_refused() {
        // Two nodes on one host with the same ports: the new list item clashes.
        let text = "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n";
        assert!(add_node_plain(&source(text), "pods", Some("a")).is_err());
    }

    fn add_node_plain(source: &Source, region: &str, name: Option<&str>) -> Result<(String, Loaded, String), EditError> {
        add_node(source, region, name, &MeshPlace::default())
    }

    #[test]
    fn a_new_mesh_node_takes_the_next_vpn_address_and_needs_an_endpoint() {
        let mesh = "name: t\nwireguard: { network: 10.0.0.0/16 }\nregions:\n  main:\n    nodes:\n      - { name: a, wireguard: { address: 10.0.1.1, endpoint: 192.0.2.1 } }\n      - { name: b, wireguard: { address: 10.0.2.1, endpoint: 192.0.2.2 } }\n";
        let place = MeshPlace {
            endpoint: Some("192.0.2.3".into()),
            address: None,
        };
        let (text, loaded, _) = add_node(&source(mesh), "main", Some("c"), &place).unwrap();
        assert!(
            text.ends_with("      - { name: c, wireguard: { address: 10.0.2.2, endpoint: 192.0.2.3 } }\n"),
            "{text}"
        );
        assert_eq!(loaded.topology.regions[0].nodes[2].host, "10.0.2.2");
        let err = add_node_plain(&source(mesh), "main", Some("c")).unwrap_err().to_string();
        assert!(err.contains("--endpoint"), "{err}");
    }

    #[test]
    fn addresses_go_to_hosts_and_wireguard_endpoints_in_place() {
        let text = "name: t\n# the edge pods\nregions:\n  main:\n    nodes:\n      - name: a   # first\n        tags: [x]\n      - { name: b, host: old.example }\n      - { name: c }\n";
        let addresses: std::collections::BTreeMap<String, String> = [("a", "192.0.2.1"), ("b", "192.0.2.2"), ("c", "192.0.2.3")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let (new, loaded, changed) = set_addresses(&source(text), &addresses).unwrap();
        assert_eq!(changed, ["a", "b", "c"]);
        assert_eq!(
            new,
            "name: t\n# the edge pods\nregions:\n  main:\n    nodes:\n      - name: a   # first\n        host: 192.0.2.1\n        tags: [x]\n      - { name: b, host: 192.0.2.2 }\n      - { name: c, host: 192.0.2.3 }\n"
        );
        let hosts: Vec<&str> = loaded.topology.regions[0].nodes.iter().map(|n| n.host.as_str()).collect();
        assert_eq!(hosts, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);

        let mesh = "name: t\nwireguard: { network: 10.0.0.0/16 }\nregions:\n  main:\n    nodes:\n      - { name: a, wireguard: { address: 10.0.0.1, endpoint: \"198.51.100.1\" } }\n";
        let one: std::collections::BTreeMap<String, String> = [("a".to_string(), "192.0.2.9".to_string())].into();
        let (new, loaded, _) = set_addresses(&source(mesh), &one).unwrap();
        assert!(new.contains("endpoint: 192.0.2.9 }"), "{new}");
        assert_eq!(
            loaded.topology.regions[0].nodes[0].host, "10.0.0.1",
            "peers still dial the VPN address"
        );
    }

    #[test]
    fn addresses_for_counted_or_unknown_nodes_are_refused() {
        let counted = "name: t\nregions:\n  main:\n    nodes: 2\n";
        let one: std::collections::BTreeMap<String, String> = [("main-1".to_string(), "192.0.2.1".to_string())].into();
        let err = set_addresses(&source(counted), &one).unwrap_err().to_string();
        assert!(err.contains("list them by name"), "{err}");
        let listed = "name: t\nregions:\n  main:\n    nodes:\n      - name: a\n";
        let unknown: std::collections::BTreeMap<String, String> = [("zz".to_string(), "192.0.2.1".to_string())].into();
        let err = set_addresses(&source(listed), &unknown).unwrap_err().to_string();
        assert!(err.contains("no node `zz`"), "{err}");
    }
}
