//! WireGuard: rendered wg-quick configs pass `wg`'s own parser, keys match `wg pubkey`, adding a
//! host changes every other host's peers; and a real mesh of network namespaces joined by veth
//! links, with userspace WireGuard (boringtun) configured from the rendered files, carries the
//! NATS routes between the hosts' VPN addresses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{Lan, ip};
use crate::support::{nats_server, notif_infra, project_root, render_into, text, topology};

fn tool(name: &str) -> PathBuf {
    let p = project_root().join(".tools/bin").join(name);
    assert!(p.is_file(), "{name} is not installed: run `bash scripts/install-test-tools.sh`");
    p
}

/// `wg-quick strip F | unshare -n wg setconf`: a file wg accepts fails only at creating the
/// interface (there is none in a fresh namespace); a file it rejects fails at parsing.
fn wg_parse(conf: &Path) -> Result<(), String> {
    let stripped = Command::new(tool("wg-quick"))
        .arg("strip")
        .arg(conf)
        .env("PATH", format!("{}:/usr/bin:/bin", tool("wg").parent().unwrap().display()))
        .output()
        .unwrap();
    if !stripped.status.success() {
        return Err(format!("wg-quick strip: {}", text(&stripped)));
    }
    let mut setconf = Command::new("unshare")
        .args(["-n"])
        .arg(tool("wg"))
        .args(["setconf", "wgcheck0", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    setconf.stdin.take().unwrap().write_all(&stripped.stdout).unwrap();
    let out = setconf.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    if said.contains("Unable to modify interface") && !said.contains("parsing error") {
        Ok(())
    } else {
        Err(said)
    }
}

#[test]
fn rendered_mesh_configs_pass_wg_and_a_new_host_reaches_every_peer_list() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unityplan.yaml");
    std::fs::copy(topology("unityplan"), &file).unwrap();
    let out = dir.path().join("out");
    render_into(&file, &out);
    let hosts = ["service-nats-dk", "service-nats-no", "service-nats-se"];
    for host in hosts {
        let conf = out.join(format!("wireguard/{host}.conf"));
        wg_parse(&conf).unwrap_or_else(|e| panic!("{host}: wg rejected the config: {e}"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777, 0o600);
        // The public key each peer is given is what `wg pubkey` derives from the host's key.
        let private = std::fs::read(out.join(format!("auth/wireguard/{host}.key"))).unwrap();
        let mut pubkey = Command::new(tool("wg"))
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        pubkey.stdin.take().unwrap().write_all(&private).unwrap();
        let public = String::from_utf8(pubkey.wait_with_output().unwrap().stdout).unwrap();
        for peer in hosts.iter().filter(|p| **p != host) {
            let peer_conf = std::fs::read_to_string(out.join(format!("wireguard/{peer}.conf"))).unwrap();
            assert!(
                peer_conf.contains(&format!("# {host}\n[Peer]\nPublicKey = {}", public.trim())),
                "{peer} does not know {host} by its key"
            );
        }
    }
    let before: Vec<String> = hosts
        .iter()
        .map(|h| std::fs::read_to_string(out.join(format!("auth/wireguard/{h}.key"))).unwrap())
        .collect();

    // A fourth host: every existing host gains it as a peer, and keeps its own key.
    let added = notif_infra(dir.path())
        .args(["add", "node"])
        .arg(&file)
        .args([
            "unityplan-global",
            "service-nats-fi",
            "--endpoint",
            "203.0.113.14",
            "--vpn-address",
            "10.0.4.1",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    // What the new host changes, before anything is written: every other host's peers.
    let dk_before = std::fs::read_to_string(out.join("wireguard/service-nats-dk.conf")).unwrap();
    let dry = notif_infra(dir.path())
        .arg("render")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry));
    let shown = text(&dry);
    for host in hosts {
        assert!(shown.contains(&format!("~ wireguard/{host}.conf")), "{shown}");
        assert!(shown.contains(&format!("~ nats/{host}.conf")), "{shown}");
    }
    assert!(
        shown.contains("+# service-nats-fi") && shown.contains("+AllowedIPs = 10.0.4.1/32"),
        "{shown}"
    );
    assert!(shown.contains("+ wireguard/service-nats-fi.conf"), "{shown}");
    for key in &before {
        assert!(!shown.contains(key.trim()), "a private key was shown");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("wireguard/service-nats-dk.conf")).unwrap(),
        dk_before
    );
    render_into(&file, &out);
    for (host, key) in hosts.iter().zip(&before) {
        let conf = std::fs::read_to_string(out.join(format!("wireguard/{host}.conf"))).unwrap();
        assert!(
            conf.contains("# service-nats-fi\n[Peer]") && conf.contains("AllowedIPs = 10.0.4.1/32"),
            "{host}"
        );
        assert_eq!(
            &std::fs::read_to_string(out.join(format!("auth/wireguard/{host}.key"))).unwrap(),
            key
        );
    }
    wg_parse(&out.join("wireguard/service-nats-fi.conf")).unwrap();
}

/// Namespaces, tunnels and servers of the mesh test, removed whatever happens.
struct Mesh {
    children: Vec<Child>,
    /// Dropped after the rest.
    lan: Lan,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `/routez` of the server in `ns`, asked from inside the namespace.
fn routez(ns: &str) -> Option<serde_json::Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg("import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8222/routez', timeout=1).read().decode())")
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn a_mesh_of_network_namespaces_carries_the_routes_over_wireguard() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let hosts = 3;
    let public = |i: usize| format!("172.31.251.{}", i + 1);
    let vpn = |i: usize| format!("10.77.0.{}", i + 1);
    let nodes: String = (0..hosts)
        .map(|i| {
            format!(
                "      - {{ name: h{i}, wireguard: {{ address: {}, endpoint: {} }} }}\n",
                vpn(i),
                public(i)
            )
        })
        .collect();
    let yaml = format!(
        "name: mesh\ndefaults:\n  jetstream: {{ store_dir: {} }}\nwireguard:\n  network: 10.77.0.0/16\n  preshared_keys: true\nregions:\n  mesh:\n    jetstream: true\n    nodes:\n{nodes}",
        dir.path().join("js").display()
    );
    let file = dir.path().join("mesh.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    render_into(&file, &out);

    // A switch namespace with a bridge stands for the network between the hosts.
    let mut mesh = Mesh {
        children: Vec::new(),
        lan: Lan::new(&format!("ni{id}")),
    };
    for i in 0..hosts {
        let ns = mesh.lan.host(&format!("h{i}"), &public(i));
        // Each host's interface has a name of its own: the userspace control socket path is
        // shared by every namespace.
        let wg_if = format!("wg{id}h{i}");
        mesh.lan.tunnels.push(wg_if.clone());
        let log = dir.path().join(format!("boringtun-{i}.log"));
        mesh.children.push(
            Command::new("ip")
                .args(["netns", "exec", &ns])
                .arg(tool("boringtun-cli"))
                .args(["--foreground", "--disable-drop-privileges", "--log"])
                .arg(&log)
                .arg(&wg_if)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    for i in 0..hosts {
        let (ns, wg_if) = (&mesh.lan.hosts[i], &mesh.lan.tunnels[i]);
        let stripped = Command::new(tool("wg-quick"))
            .arg("strip")
            .arg(out.join(format!("wireguard/h{i}.conf")))
            .env("PATH", format!("{}:/usr/bin:/bin", tool("wg").parent().unwrap().display()))
            .output()
            .unwrap();
        let stripped_file = dir.path().join(format!("h{i}.wg"));
        std::fs::write(&stripped_file, &stripped.stdout).unwrap();
        let started = Instant::now();
        // boringtun creates its control socket shortly after start.
        loop {
            let set = Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(tool("wg"))
                .args(["setconf", wg_if])
                .arg(&stripped_file)
                .output()
                .unwrap();
            if set.status.success() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "wg setconf {wg_if}: {}", text(&set));
            std::thread::sleep(Duration::from_millis(50));
        }
        ip(&["-n", ns, "addr", "add", &format!("{}/16", vpn(i)), "dev", wg_if]);
        ip(&["-n", ns, "link", "set", wg_if, "up"]);
    }
    for i in 0..hosts {
        let ns = &mesh.lan.hosts[i];
        let log = std::fs::File::create(dir.path().join(format!("nats-{i}.log"))).unwrap();
        mesh.children.push(
            Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(nats_server())
                .arg("-c")
                .arg(out.join(format!("nats/h{i}.conf")))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    // Every server routes to both others, and every route's peer is a VPN address.
    let started = Instant::now();

    loop {
        let last: Vec<_> = (0..hosts).map(|i| routez(&mesh.lan.hosts[i])).collect();
        let formed = last.iter().enumerate().all(|(i, r)| {
            let Some(r) = r else { return false };
            let mut peers: Vec<String> = r["routes"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["ip"].as_str().map(String::from)).collect())
                .unwrap_or_default();
            peers.sort();
            peers.dedup();
            let expected: Vec<String> = (0..hosts).filter(|j| *j != i).map(vpn).collect();
            peers == expected
        });
        if formed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "routes did not form over WireGuard: {last:#?}\n{}",
            std::fs::read_to_string(dir.path().join("nats-0.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The VPN addresses live only on the tunnel interfaces, so the routes crossed them: their
    // packet counters show the traffic both ways.
    for i in 0..hosts {
        let shown = Command::new("ip")
            .args(["-n", &mesh.lan.hosts[i], "-s", "-j", "link", "show", "dev", &mesh.lan.tunnels[i]])
            .output()
            .unwrap();
        let link: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap_or_default();
        let stats = &link[0]["stats64"];
        let (rx, tx) = (
            stats["rx"]["packets"].as_u64().unwrap_or(0),
            stats["tx"]["packets"].as_u64().unwrap_or(0),
        );
        assert!(rx > 0 && tx > 0, "h{i}: no traffic through {}: {link}", mesh.lan.tunnels[i]);
    }
    drop(mesh);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&format!("ni{id}-")),
        "namespaces left behind"
    );
}
