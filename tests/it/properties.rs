//! A property of every topology, not only the shipped ones: random valid topologies (regions,
//! leafnodes, accounts or none, static or operator auth, TLS on any listener, streams,
//! Kubernetes) each render configs that `nats-server -t` accepts, a compose project
//! `docker compose config` accepts, and manifests `kubernetes-validate --strict` accepts. The
//! budget is bounded (NOTIF_INFRA_PROPERTY_CASES, default 24); the seeds are fixed, and
//! NOTIF_INFRA_PROPERTY_SEED starts them elsewhere.

use std::fmt::Write;

use crate::support::{ENV, nats_server, notif_infra, text};

/// xorshift64*: small, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A valid topology drawn from `rng`.
fn topology(case: u64, rng: &mut Rng) -> String {
    let mut y = format!("name: p{case}\n");
    let regions = 1 + rng.below(3) as usize;
    let nodes: Vec<u64> = (0..regions).map(|_| 1 + rng.below(3)).collect();
    let jetstream: Vec<bool> = (0..regions).map(|i| i == 0 || rng.chance(50)).collect();
    let accounts = rng.chance(70);
    let operator = accounts && rng.chance(50);
    y += "regions:\n";
    for i in 0..regions {
        let _ = writeln!(y, "  r{i}:\n    nodes: {}", nodes[i]);
        if jetstream[i] {
            y += "    jetstream: true\n";
        }
    }
    // Gateways and leafnodes together need a system account, which needs accounts.
    let leaves = if accounts || regions == 1 { rng.below(3) as usize } else { 0 };
    if leaves > 0 {
        y += "leafnodes:\n";
        for l in 0..leaves {
            let hub = rng.below(regions as u64);
            let account = if accounts { ", account: APP" } else { "" };
            let _ = writeln!(y, "  l{l}: {{ hub: r{hub}{account} }}");
        }
    }
    let tls: Vec<&str> = ["client", "cluster", "gateway", "leafnode"]
        .into_iter()
        .filter(|_| rng.chance(40))
        .collect();
    if !tls.is_empty() {
        y += "tls:\n";
        for listener in tls {
            let _ = writeln!(y, "  {listener}: true");
        }
    }
    if accounts {
        if operator {
            y += "operator:\n  name: op\n";
        }
        y += "accounts:\n";
        y += "  SYS: { system: true }\n";
        y += "  APP:\n    jetstream: true\n    users:\n";
        y += if operator {
            "      - user: app\n"
        } else {
            "      - { user: app, password: \"${APP_PASS}\" }\n"
        };
    }
    let streams = rng.below(3);
    if streams > 0 {
        y += "streams:\n";
        for s in 0..streams {
            let replicas = 1 + rng.below(nodes[0]);
            let account = if accounts { "account: APP, " } else { "" };
            let _ = writeln!(y, "  S{s}: {{ {account}subjects: [\"s{s}.>\"], replicas: {replicas} }}");
        }
    }
    if rng.chance(50) {
        let _ = writeln!(y, "kubernetes: {{ namespace: p{case} }}");
    }
    y
}

#[test]
fn random_valid_topologies_render_what_each_validator_accepts() {
    let cases: u64 = std::env::var("NOTIF_INFRA_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let first: u64 = std::env::var("NOTIF_INFRA_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut manifests = Vec::new();
    for case in first..first + cases {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ case.wrapping_mul(0x1000_0000_01B3));
        let yaml = topology(case, &mut rng);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let out = notif_infra(dir.path())
            .arg("render")
            .arg(&file)
            .args(["--out", "out"])
            .output()
            .unwrap();
        assert!(out.status.success(), "case {case} does not render:\n{yaml}\n{}", text(&out));
        let tree = dir.path().join("out");

        for conf in std::fs::read_dir(tree.join("nats")).unwrap().flatten().map(|e| e.path()) {
            if conf.file_name().unwrap().to_string_lossy().starts_with('_') {
                continue;
            }
            // Certificates and creds sit under /etc/nats on the hosts; here, in the output tree.
            let local = conf.with_extension("local.conf");
            let text_of = std::fs::read_to_string(&conf)
                .unwrap()
                .replace("\"/etc/nats/", &format!("\"{}/", tree.display()));
            std::fs::write(&local, text_of).unwrap();
            let check = std::process::Command::new(nats_server())
                .arg("-t")
                .arg("-c")
                .arg(&local)
                .envs(ENV.iter().copied())
                .output()
                .unwrap();
            assert!(check.status.success(), "case {case}, {}:\n{yaml}\n{}", conf.display(), text(&check));
        }
        let project = tree.join("compose/docker-compose.yml");
        if project.is_file() {
            let check = std::process::Command::new(crate::compose::compose_binary())
                .current_dir(&tree)
                .args(["-f", "compose/docker-compose.yml", "config", "-q"])
                .envs(ENV.iter().copied())
                .output()
                .unwrap();
            assert!(check.status.success(), "case {case}, compose:\n{yaml}\n{}", text(&check));
        }
        let k8s = tree.join("k8s");
        if k8s.is_dir() {
            manifests.extend(
                crate::support::files_under(&k8s)
                    .into_iter()
                    .map(|entry| std::fs::read_to_string(entry).unwrap()),
            );
        }
    }
    // One validator run for every case's manifests (its start-up is the slow part).
    let all = tempfile::tempdir().unwrap();
    let files: Vec<std::path::PathBuf> = manifests
        .iter()
        .enumerate()
        .map(|(i, content)| {
            let path = all.path().join(format!("{i}.yaml"));
            std::fs::write(&path, content).unwrap();
            path
        })
        .collect();
    if !files.is_empty() {
        crate::kubernetes::kubernetes_validate(&files);
    }
}
