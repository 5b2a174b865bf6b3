//! The ssh target on real hosts: network namespaces joined by a bridge play three hosts, each
//! with its own OpenSSH sshd on its own address and its own base directories, and a fourth
//! namespace is the operator's machine that runs notif-infra. apply brings a UnityPlan-like
//! layout up over SSH (a WireGuard mesh on userspace boringtun, routes over the VPN addresses,
//! TLS, an R3 stream) on hosts the Ansible playbook prepared, a fourth pod added with `add`
//! reaches every host, and destroy leaves nothing running or installed.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::netns::Lan;
use crate::ssh_hosts::{monitoring, ssh_keygen, start_sshd, tools, wait_listening};
use crate::support::{ansible, files_under, project_root, text};

/// The hosts, their sshd processes and the user the playbook creates, removed whatever happens.
struct Hosts {
    sshd: Vec<Child>,
    /// The system user the playbook creates (the hosts share this machine's /etc/passwd).
    user: String,
    /// Dropped after the rest: the processes apply started in the namespaces go with it.
    lan: Lan,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for c in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("userdel").arg(&self.user).output();
        let _ = Command::new("groupdel").arg(&self.user).output();
    }
}

/// notif-infra run on the operator's namespace.
fn notif_infra(op: &str, dir: &Path, args: &[&str]) -> Output {
    // A hung command fails the test instead of holding CI.
    Command::new("timeout")
        .args(["--kill-after=5", "300", "ip", "netns", "exec", op])
        .arg(assert_cmd::cargo::cargo_bin!("notif-infra"))
        .args(args)
        .current_dir(dir)
        .env_remove("NOTIF_INFRA_STATE_DIR")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap()
}

/// notif-infra run on the operator's namespace with a terminal (`script` gives it one).
fn notif_infra_on_terminal(op: &str, dir: &Path, args: &[&str]) -> Output {
    let bin = assert_cmd::cargo::cargo_bin!("notif-infra");
    let command = format!("{} {}", bin.display(), args.join(" "));
    Command::new("timeout")
        .args([
            "--kill-after=5",
            "300",
            "ip",
            "netns",
            "exec",
            op,
            "script",
            "-qec",
            &command,
            "/dev/null",
        ])
        .current_dir(dir)
        .env_remove("NOTIF_INFRA_STATE_DIR")
        .env_remove("SSH_AUTH_SOCK")
        .env("TERM", "xterm")
        .output()
        .unwrap()
}

/// PIDs of processes other than sshd in namespace `ns`.
fn processes_in(ns: &str, sshd_pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|p| *p != sshd_pid.to_string())
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).ok())
        .map(|c| c.replace('\0', " "))
        .filter(|c| !c.contains("sshd"))
        .collect()
}

#[test]
fn apply_over_ssh_brings_up_a_wireguard_mesh_grows_by_a_pod_and_destroys_cleanly() {
    let id = std::process::id() % 100_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = |i: usize| format!("172.31.252.{}", i + 1);
    let vpn = |i: usize| format!("10.78.0.{}", i + 1);
    let interface = |i: usize| format!("wg{id}s{i}");
    let mut hosts = Hosts {
        sshd: Vec::new(),
        user: format!("nats{id}"),
        lan: Lan::new(&format!("ns{id}")),
    };
    hosts.lan.tunnels = (0..4).map(interface).chain(["wg0".to_string()]).collect();
    // Hosts 0..3 (the fourth joins later) and the operator at .100.
    let mut names: Vec<String> = (0..4).map(|i| hosts.lan.host(&format!("h{i}"), &public(i))).collect();
    names.push(hosts.lan.host("op", "172.31.252.100"));
    let op = names.pop().unwrap();

    // sshd on every host, the operator's key authorized, StrictModes off for the temp dirs.
    std::fs::create_dir_all("/run/sshd").unwrap();
    ssh_keygen(&d.join("id_ed25519"));
    std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
    let mut sshd_pids = Vec::new();
    for (i, ns) in names.iter().enumerate() {
        let host_dir = d.join(format!("h{i}"));
        std::fs::create_dir_all(&host_dir).unwrap();
        ssh_keygen(&host_dir.join("ssh_host_ed25519_key"));
        let child = start_sshd(ns, &host_dir, &public(i), d);
        sshd_pids.push(child.id());
        hosts.sshd.push(child);
    }
    for (i, ns) in names.iter().enumerate() {
        wait_listening(ns, &public(i), &d.join(format!("h{i}")));
    }

    let pods: String = (0..3)
        .map(|i| {
            let base = d.join(format!("h{i}"));
            format!(
                "      - name: pod-{i}\n        wireguard: {{ address: {}, endpoint: {}, interface: {} }}\n        ssh: {{ config_dir: {}, data_dir: {}, log_dir: {} }}\n",
                vpn(i),
                public(i),
                interface(i),
                base.join("etc").display(),
                base.join("data").display(),
                base.join("log").display()
            )
        })
        .collect();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", tools().join("bin").display());
    let yaml = format!(
        "name: unity\ntls:\n  client: true\n  cluster: {{ verify: true }}\nwireguard:\n  network: 10.78.0.0/16\n  preshared_keys: true\nssh:\n  user: root\n  key: {key}\n  known_hosts: {known}\n  nats_server: {nats}\n  config_dir: {shared}/etc\n  data_dir: {shared}/data\n  log_dir: {shared}/log\n  env:\n    PATH: \"{path}\"\n    WG_QUICK_USERSPACE_IMPLEMENTATION: boringtun-cli\n    WG_SUDO: \"true\"\n    WG_LOG_FILE: {wglog}\nregions:\n  unity:\n    jetstream: true\n    nodes:\n{pods}streams:\n  EVENTS:\n    subjects: [\"events.>\"]\n    replicas: 3\n",
        key = d.join("id_ed25519").display(),
        known = d.join("known_hosts").display(),
        nats = d.join("bin/nats-server").display(),
        shared = d.join("shared").display(),
        wglog = d.join("boringtun.log").display(),
    );
    let file = d.join("unity.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file_arg = file.to_str().unwrap();
    let ssh_args = |cmd: &'static str| vec![cmd, file_arg, "--target", "ssh"];

    // Unknown host keys: refused by name, nothing installed on any host.
    let refused = notif_infra(&op, d, &ssh_args("apply"));
    assert!(!refused.status.success(), "{}", text(&refused));
    let said = text(&refused);
    assert!(
        said.contains("is not in") && said.contains("--accept-new-host-keys") && said.contains("pod-0"),
        "{said}"
    );
    assert!(!d.join("h0/etc").exists(), "files were written despite the refusal");
    // The hosts are prepared by the playbook in ansible/, from the inventory render writes:
    // plan records the host keys it is told to accept, Ansible checks them against that file.
    let mut args = ssh_args("plan");
    args.push("--accept-new-host-keys");
    let planned = notif_infra(&op, d, &args);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let rendered = notif_infra(&op, d, &["render", file_arg]);
    assert!(rendered.status.success(), "{}", text(&rendered));
    let playbook = |d: &Path, forks: &str| {
        ansible("ansible-playbook", d, Some(&op))
            .args(["--forks", forks])
            .arg("-i")
            .arg(d.join("out/unity/ansible/inventory.yml"))
            .arg(project_root().join("ansible/playbook.yml"))
            .args(["-e", &format!("nats_host_user={}", hosts.user)])
            .args(["-e", &format!("ansible_remote_tmp={}", d.join("remote-tmp").display())])
            // The ssh masters live in the operator's namespace, which the test empties at the end.
            .env("ANSIBLE_SSH_ARGS", "-o ControlMaster=auto -o ControlPersist=30s")
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", d.join("cp"))
            .env("ANSIBLE_PIPELINING", "True")
            .env("ANSIBLE_GATHER_SUBSET", "min")
            .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
            .output()
            .unwrap()
    };
    let t0 = Instant::now();
    // These hosts share one /etc/passwd: creating the user on all three at once would race, so
    // the first run goes host by host; the second, which changes nothing, runs them together.
    let prepared = playbook(d, "1");
    eprintln!("playbook: {:.1} s", t0.elapsed().as_secs_f64());
    let said = text(&prepared);
    assert!(prepared.status.success(), "{said}");
    assert!(said.contains("failed=0") && !said.contains("unreachable=1"), "{said}");
    let t0 = Instant::now();
    let second = playbook(d, "3");
    eprintln!("playbook again: {:.1} s", t0.elapsed().as_secs_f64());
    let again = text(&second);
    assert!(second.status.success(), "{again}");
    assert_eq!(again.matches("changed=0").count(), 3, "a second run changes nothing: {again}");
    use std::os::unix::fs::MetadataExt;
    let uid = String::from_utf8(Command::new("id").args(["-u", &hosts.user]).output().unwrap().stdout).unwrap();
    for (i, ns) in names.iter().enumerate().take(3) {
        let etc = std::fs::metadata(d.join(format!("h{i}/etc"))).unwrap();
        assert_eq!(
            etc.uid().to_string(),
            uid.trim(),
            "host {i}'s config directory belongs to the nats user"
        );
        let rules = Command::new("ip")
            .args(["netns", "exec", ns, "iptables", "-S", "INPUT"])
            .output()
            .unwrap();
        let rules = text(&rules);
        assert!(
            rules.contains("--dport 4222") && rules.contains("notif-infra nats-server"),
            "host {i}: {rules}"
        );
        assert!(
            rules.contains("-p udp") && rules.contains("notif-infra wireguard"),
            "host {i}: {rules}"
        );
    }
    assert!(d.join("bin/nats-server").is_file(), "the playbook installed the binary apply runs");

    let started = Instant::now();
    let env_file = d.join("ci.env");
    let mut args = ssh_args("apply");
    args.extend(["--accept-new-host-keys", "--env-file", env_file.to_str().unwrap()]);
    let applied = notif_infra(&op, d, &args);
    let said = text(&applied);
    assert!(applied.status.success(), "{said}\n{}", host_logs(d));
    // What later CI steps need: the hosts' client URLs as this machine reaches them.
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env.lines()
            .any(|l| l.starts_with("NATS_URL=") && l.contains(&format!("{}:4222", public(0)))),
        "{env}"
    );
    // Without a terminal each host's steps are lines naming the host.
    for i in 0..3 {
        for step in ["connected to root@", "wrote ", "WireGuard up from ", "started", "answering"] {
            assert!(said.contains(&format!("pod-{i}: {step}")), "pod-{i}: {step}: {said}");
        }
    }
    eprintln!("apply over ssh to verified: {:.1} s", started.elapsed().as_secs_f64());
    assert!(crate::support::leaked_secrets(&said).is_empty(), "{said}");
    // Each host holds its own files, secrets 0600, never the CA key.
    use std::os::unix::fs::PermissionsExt;
    for i in 0..3 {
        let etc = d.join(format!("h{i}/etc"));
        let mode = |p: &str| std::fs::metadata(etc.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&format!("pki/pod-{i}-key.pem")), 0o600);
        assert_eq!(mode(&format!("wireguard/{}.conf", interface(i))), 0o600);
        assert_eq!(mode(&format!("nats/pod-{i}.conf")), 0o644);
        assert!(!etc.join("pki/ca-key.pem").exists());
        let others = (0..3)
            .filter(|j| *j != i)
            .any(|j| etc.join(format!("pki/pod-{j}-key.pem")).exists());
        assert!(!others, "host {i} got another server's key");
    }
    // The routes run between VPN addresses, through the tunnels.
    let routes = monitoring(&op, &public(0), "/routez");
    let mut peers: Vec<String> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ip"].as_str().map(String::from))
        .collect();
    peers.sort();
    peers.dedup();
    assert_eq!(peers, vec![vpn(1), vpn(2)], "{routes}");

    // Nothing changed: plan says so (exit 0) after reading every host.
    let planned = notif_infra(&op, d, &ssh_args("plan"));
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));

    // A fourth pod: every host's WireGuard peers and routes change, and it comes up.
    let added = notif_infra(
        &op,
        d,
        &[
            "add",
            "node",
            file_arg,
            "unity",
            "pod-3",
            "--endpoint",
            &public(3),
            "--vpn-address",
            &vpn(3),
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    // The new host's key is unknown until accepted.
    let planned = notif_infra(&op, d, &ssh_args("plan"));
    assert!(text(&planned).contains("host pod-3 (172.31.252.4) is not in"), "{}", text(&planned));
    let mut plan_args = ssh_args("plan");
    plan_args.push("--accept-new-host-keys");
    let planned = notif_infra(&op, d, &plan_args);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    let shown = text(&planned);
    for i in 0..3 {
        assert!(shown.contains(&format!("pod-{i}/wireguard/{}.conf", interface(i))), "{shown}");
        assert!(shown.contains(&format!("pod-{i}/nats/pod-{i}.conf")), "{shown}");
    }
    assert!(shown.contains("pod-3/nats/pod-3.conf"), "{shown}");
    // On a terminal, a row per host keeps its latest step.
    let grown = notif_infra_on_terminal(&op, d, &args);
    let drawn = text(&grown);
    assert!(grown.status.success(), "{drawn}\n{}", host_logs(d));
    assert!(drawn.contains("\u{1b}[1mpod-3\u{1b}[0m answering"), "no row for pod-3: {drawn:?}");
    assert!(!drawn.contains("pod-3: answering"), "rows, not lines, on a terminal: {drawn:?}");
    for i in 0..3 {
        let wg = std::fs::read_to_string(d.join(format!("h{i}/etc/wireguard/{}.conf", interface(i)))).unwrap();
        assert!(wg.contains(&format!("AllowedIPs = {}/32", vpn(3))), "host {i}: {wg}");
    }
    let verified = notif_infra(&op, d, &ssh_args("verify"));
    assert!(verified.status.success(), "{}", text(&verified));

    // A host that cannot be reached: named, after the retries, and nothing changed anywhere.
    hosts.sshd[1].kill().unwrap();
    hosts.sshd[1].wait().unwrap();
    let before = std::fs::read_to_string(d.join("h0/etc/nats/pod-0.conf")).unwrap();
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("replicas: 3", "replicas: 3\n    max_age: 1d"),
    )
    .unwrap();
    let cut_off = notif_infra(&op, d, &ssh_args("apply"));
    let said = text(&cut_off);
    assert_eq!(cut_off.status.code(), Some(1), "{said}");
    assert!(
        said.contains("host pod-1 (172.31.252.2:22) is unreachable after 3 attempts") && said.contains("nothing was changed on any host"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(d.join("h0/etc/nats/pod-0.conf")).unwrap(), before);
    let child = start_sshd(&names[1], &d.join("h1"), &public(1), d);
    sshd_pids[1] = child.id();
    hosts.sshd[1] = child;
    wait_listening(&names[1], &public(1), &d.join("h1"));

    // destroy: no server or tunnel left on any host, nothing of apply's left in their directories.
    let destroyed = notif_infra(&op, d, &ssh_args("destroy"));
    for (i, ns) in names.iter().enumerate() {
        // A userspace tunnel exits on its own once its interface is deleted: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = processes_in(ns, sshd_pids[i]);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            left = processes_in(ns, sshd_pids[i]);
        }
        assert!(left.is_empty(), "host {i} still runs {left:?}\n{}", text(&destroyed));
    }
    for base in ["h0/etc", "h1/etc", "h2/etc", "shared/etc"] {
        let left: Vec<_> = files_under(&d.join(base));
        assert!(left.is_empty(), "{base} still holds {left:?}");
    }
    assert!(!d.join("h0/data/jetstream/pod-0").exists());
    drop(hosts);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&format!("ns{id}-")),
        "namespaces left behind"
    );
}

fn host_logs(d: &Path) -> String {
    let mut all = String::new();
    for i in 0..4 {
        for log in [format!("h{i}/log/pod-{i}.log"), format!("h{i}/sshd.log")] {
            if let Ok(t) = std::fs::read_to_string(d.join(&log)) {
                let lines: Vec<&str> = t.lines().collect();
                all += &format!("--- {log}\n{}\n", lines[lines.len().saturating_sub(15)..].join("\n"));
            }
        }
    }
    all
}
