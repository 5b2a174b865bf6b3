//! Gateway seeds: each server's config lists a bounded window of every remote region's servers,
//! and nats-server learns the rest by gossip. Proven live on a super-cluster of 4 regions of 5
//! nodes with 2 seeds per remote region: every gateway connection forms on every server, and
//! still does for a server that starts while one of its seeds is down.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{Deployment, alive, nats_server, text};

const REGIONS: [&str; 4] = ["a", "b", "c", "d"];

/// The remote regions a server's monitoring endpoint shows an outbound gateway to (none while
/// it does not answer yet).
fn outbound(url: &str) -> BTreeSet<String> {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let answer = (|| {
        let mut stream = std::net::TcpStream::connect(host).ok()?;
        write!(stream, "GET /gatewayz HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        serde_json::from_str::<serde_json::Value>(response.split_once("\r\n\r\n")?.1).ok()
    })();
    answer
        .and_then(|g| g["outbound_gateways"].as_object().map(|m| m.keys().cloned().collect()))
        .unwrap_or_default()
}

fn wait_for_every_gateway(d: &Deployment, slots: &[u16], started: Instant) {
    loop {
        let missing: Vec<String> = slots
            .iter()
            .filter_map(|slot| {
                let own = REGIONS[*slot as usize / 5];
                let want: BTreeSet<String> = REGIONS.iter().filter(|r| **r != own).map(|r| r.to_string()).collect();
                let have = outbound(&d.monitor_url(*slot));
                (have != want).then(|| format!("{own}-{}: {have:?}", slot % 5 + 1))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gateways missing after 30 s: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn twenty_servers_with_two_gateway_seeds_per_region_find_every_region_even_with_a_seed_down() {
    let mut d = Deployment::new(std::path::Path::new("gossip.yaml"), "gossip", 20);
    let file = d.dir.path().join("gossip.yaml");
    let regions: String = REGIONS.iter().map(|r| format!("  {r}:\n    nodes: 5\n")).collect();
    std::fs::write(&file, format!("name: gossip\ndefaults:\n  gateway_seeds: 2\nregions:\n{regions}")).unwrap();
    d.topology = file;
    let out = d.cmd("apply").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Each config includes a seed list that names 2 servers of each region, not all 5 (its
    // own region's entry is ignored by nats-server).
    let conf = std::fs::read_to_string(d.state_dir().join("nats/a-1.conf")).unwrap();
    assert!(conf.contains("include \"_gateways-0.conf\""), "{conf}");
    let seeds = std::fs::read_to_string(d.state_dir().join("nats/_gateways-0.conf")).unwrap();
    assert_eq!(seeds.matches("nats://127.0.0.1:").count(), REGIONS.len() * 2, "{seeds}");
    let all: Vec<u16> = (0..20).collect();
    wait_for_every_gateway(&d, &all, Instant::now());

    // b-1 (a seed of a-1 for region b) goes down; a-1 restarts while it is down: its one live
    // seed in b is b-2, and gossip gives it the rest.
    for server in ["b-1", "a-1"] {
        let pid = d.pid(server).unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        while alive(pid) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let a1_conf = std::fs::canonicalize(d.state_dir().join("nats/a-1.conf")).unwrap();
    let mut a1 = std::process::Command::new(nats_server())
        .arg("-c")
        .arg(&a1_conf)
        .current_dir(d.state_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, to show when it does not come up.
    let a1_log = a1
        .stderr
        .take()
        .map(|e| std::thread::spawn(move || std::io::read_to_string(e).unwrap_or_default()));
    let survivors: Vec<u16> = (0..20).filter(|slot| *slot != 5).collect();
    let started = Instant::now();
    if let Err(missing) = std::panic::catch_unwind(|| wait_for_every_gateway(&d, &survivors, started)) {
        let exited = a1.try_wait().unwrap();
        let _ = a1.kill();
        let _ = a1.wait();
        let log = a1_log.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        panic!(
            "{}\nthe hand-started a-1 {}; its log:\n{log}",
            missing.downcast_ref::<String>().map(String::as_str).unwrap_or("gateways missing"),
            exited.map(|s| format!("exited ({s})")).unwrap_or_else(|| "still runs".into())
        );
    }
    eprintln!(
        "a-1 found every region with one of its b seeds down in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // destroy finds the hand-started a-1 by its config, like any server of the deployment.
    let out = d.cmd("destroy").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stopped = Instant::now();
    while a1.try_wait().unwrap().is_none() {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "destroy left the hand-started a-1 running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
