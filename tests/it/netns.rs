//! Test hosts: network namespaces wired to a bridge in a switch namespace, each with its own
//! address. Whatever happens, every process left in them is killed and the namespaces removed.

use std::process::Command;

use crate::support::text;

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {}: {}", args.join(" "), text(&out));
}

pub struct Lan {
    prefix: String,
    switch: String,
    /// The hosts' namespaces, in the order they were added.
    pub hosts: Vec<String>,
    /// Userspace WireGuard interfaces the hosts may run: their control sockets sit in the
    /// directory every namespace shares.
    pub tunnels: Vec<String>,
}

impl Lan {
    /// The switch: namespace `<prefix>-sw` holding the bridge.
    pub fn new(prefix: &str) -> Lan {
        let switch = format!("{prefix}-sw");
        ip(&["netns", "add", &switch]);
        let lan = Lan {
            prefix: prefix.to_string(),
            switch,
            hosts: Vec::new(),
            tunnels: Vec::new(),
        };
        ip(&["-n", &lan.switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan.switch, "link", "set", "br0", "up"]);
        lan
    }

    /// Namespace `<prefix>-<name>` on the switch, `address`/24 on its eth0; returns its name.
    pub fn host(&mut self, name: &str, address: &str) -> String {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns]);
        self.hosts.push(ns.clone());
        let port = format!("p{}", self.hosts.len());
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch,
        ]);
        ip(&["-n", &self.switch, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.switch, "link", "set", &port, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            // Servers and tunnels detach from whatever started them: all that is left goes.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for t in &self.tunnels {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{t}.sock"));
        }
    }
}
