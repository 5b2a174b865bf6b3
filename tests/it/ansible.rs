//! Ansible: the inventory render writes for every shipped topology is what ansible-inventory
//! reads (a group per region, every server a host with its variables), and the playbook in
//! `ansible/` passes ansible-playbook's syntax check and ansible-lint's strict production profile.

use std::process::Command;

use crate::support::{ansible, project_root, render_into, text, topology};

#[test]
fn rendered_inventories_are_what_ansible_reads() {
    for &(name, _) in notif_infra::ops::EXAMPLES {
        let t = notif_infra::ops::load(&topology(name)).unwrap().topology;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        render_into(&topology(name), &out);
        let inventory = out.join("ansible/inventory.yml");
        let listed = ansible("ansible-inventory", dir.path(), None)
            .arg("-i")
            .arg(&inventory)
            .arg("--list")
            .output()
            .unwrap();
        assert!(listed.status.success(), "{name}: {}", text(&listed));
        let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        for region in &t.regions {
            let group = region.name.replace('-', "_");
            let hosts: Vec<&str> = v[&group]["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
            let nodes: Vec<&str> = region.nodes.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(hosts, nodes, "{name}: group {group}");
            for node in &region.nodes {
                let vars = &v["_meta"]["hostvars"][&node.name];
                assert_eq!(vars["nats_host_server_name"], node.name.as_str());
                assert_eq!(vars["nats_host_ports"]["cluster"], node.ports.cluster);
                assert_eq!(vars["nats_host_config_dir"], node.ssh.config_dir.as_str());
                assert_eq!(vars["nats_host_binary"], node.ssh.nats_server.as_str());
                match &node.wireguard {
                    Some(wg) => {
                        assert_eq!(
                            vars["ansible_host"],
                            wg.endpoint.as_str(),
                            "{name}: a mesh host is reached at its endpoint"
                        );
                        assert_eq!(vars["nats_host_vpn_address"], wg.address.to_string());
                    }
                    None => assert_eq!(vars["ansible_host"], node.host.as_str()),
                }
            }
        }
        let check = ansible("ansible-playbook", dir.path(), None)
            .arg("--syntax-check")
            .arg("-i")
            .arg(&inventory)
            .arg(project_root().join("ansible/playbook.yml"))
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {}", text(&check));
    }
}

#[test]
fn the_playbook_passes_ansible_lint_strict() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ansible");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(project_root().join("ansible"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let lint = ansible("ansible-lint", dir.path(), None)
        .args(["--offline", "--strict", "--nocolor", "."])
        .current_dir(&copy)
        .output()
        .unwrap();
    assert!(lint.status.success(), "ansible-lint: {}", text(&lint));
    assert!(text(&lint).contains("0 failure(s), 0 warning(s)"), "{}", text(&lint));
}
