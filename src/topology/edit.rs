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

/// Adds a node to `region`: `nodes: N` becomes `N+1` (the node is `<region>-<N+1>`), a node list
/// gets a new item after its last one. Returns the new text and what it validates to.
pub fn add_node(source: &Source, region: &str, name: Option<&str>) -> Result<(String, Loaded, String), EditError> {
    let file = schema(source)?;
    let Some((_, spec)) = file.regions.iter().find(|(k, _)| k.value == region) else {
        let names: Vec<&str> = file.regions.keys().map(|k| k.value.as_str()).collect();
        return Err(refused(source, format!("no region `{region}` (regions: {})", names.join(", "))));
    };
    let mut lines: Vec<String> = source.text.lines().map(str::to_string).collect();
    let at = loc(&spec.nodes);
    let new_name = match &spec.nodes.value {
        NodesSpec::Count(n) => {
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
            let new_item = if flow {
                format!("{}- {{ name: {name} }}", " ".repeat(dash))
            } else {
                format!("{}- name: {name}", " ".repeat(dash))
            };
            lines.insert(end, new_item);
            name.to_string()
        }
    };
    let (text, loaded) = finish(source, lines)?;
    Ok((text, loaded, new_name))
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
        let (out, loaded, name) = add_node(&source(text), "main", None).unwrap();
        assert_eq!(out, text.replace("nodes: 3", "nodes: 4"));
        assert_eq!(name, "main-4");
        assert_eq!(loaded.topology.regions[0].nodes.len(), 4);
        assert!(add_node(&source(text), "main", Some("other")).is_err());
        assert!(add_node(&source(text), "west", None).is_err());
    }

    #[test]
    fn a_node_list_gets_an_item_after_its_last_one() {
        let text = "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      # keep me\n      - name: b\n        host: b.example\n\n# trailing\nstreams: {}\n";
        let (out, _, _) = add_node(&source(text), "pods", Some("c")).unwrap();
        assert_eq!(
            out,
            "name: p\nregions:\n  pods:\n    nodes:\n      - name: a\n        tags: [x]\n      # keep me\n      - name: b\n        host: b.example\n      - name: c\n\n# trailing\nstreams: {}\n"
        );
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
        assert!(add_node(&source(text), "pods", Some("a")).is_err());
    }
}
